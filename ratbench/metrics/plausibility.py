"""Agreement of selected tokens with human rationales: token P/R/F1, IOU-F1, AUPRC (docs/scoring.md).

Inputs are padded (batch, length) arrays with a real-token mask; lengths may differ between updates.
Conventions (documented because papers differ): micro values pool counts over the whole set; a ratio whose
denominator is zero is 0.0 (no selection -> P = 0; no gold -> R = 0; P = R = 0 -> F1 = 0). Macro values average
per-example P/R/F1 with the same convention per example.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if (p + r) else 0.0


class TokenOverlap:
    """Accumulates S, P, R, F1 (micro, macro) and the reference-code S/P that count selected padding."""

    higher_is_better = {"S": None, "P": True, "R": True, "F1": True}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.selected = self.real = self.tp = self.gold = self.selected_ref = 0.0
        self.per_p: list[np.ndarray] = []
        self.per_r: list[np.ndarray] = []

    def update(self, selected: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> None:
        """`selected` as sampled (padding selections included; they count only in S_ref and P_ref)."""
        raw = (np.asarray(selected) > 0.5).astype(np.float64)
        m = (np.asarray(mask) > 0.5).astype(np.float64)
        g = (np.asarray(gold) > 0.5).astype(np.float64) * m
        sel = raw * m
        tp = (sel * g).sum(1)
        n_sel, n_gold = sel.sum(1), g.sum(1)
        self.selected += n_sel.sum()
        self.real += m.sum()
        self.tp += tp.sum()
        self.gold += n_gold.sum()
        self.selected_ref += raw.sum()
        self.per_p.append(np.divide(tp, n_sel, out=np.zeros_like(tp), where=n_sel > 0))
        self.per_r.append(np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0))

    KEYS = ("S", "P", "R", "F1", "P_macro", "R_macro", "F1_macro", "S_ref", "P_ref", "F1_ref",
            "P_random", "R_random", "F1_random")

    def compute(self) -> dict[str, float]:
        p, r = _ratio(self.tp, self.selected), _ratio(self.tp, self.gold)
        per_p = np.concatenate(self.per_p) if self.per_p else np.zeros(0)
        per_r = np.concatenate(self.per_r) if self.per_r else np.zeros(0)
        per_f = np.divide(2 * per_p * per_r, per_p + per_r, out=np.zeros_like(per_p), where=(per_p + per_r) > 0)
        p_ref = _ratio(self.tp, self.selected_ref)
        return {
            "S": 100 * _ratio(self.selected, self.real),
            "P": 100 * p,
            "R": 100 * r,
            "F1": 100 * _f1(p, r),
            "P_macro": 100 * _mean(per_p),
            "R_macro": 100 * _mean(per_r),
            "F1_macro": 100 * _mean(per_f),
            "S_ref": 100 * _ratio(self.selected_ref, self.real),
            "P_ref": 100 * p_ref,
            "F1_ref": 100 * _f1(p_ref, r),
            # what uniform random selection at the same sparsity would score in expectation
            "P_random": 100 * _ratio(self.gold, self.real),
            "R_random": 100 * _ratio(self.selected, self.real),
            "F1_random": 100 * _f1(_ratio(self.gold, self.real), _ratio(self.selected, self.real)),
        }


def token_prf(selected: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    acc = TokenOverlap()
    acc.update(selected, gold, mask)
    return acc.compute()


def spans(row: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of ones as [start, end) pairs."""
    x = np.concatenate([[0], (np.asarray(row) > 0.5).astype(np.int8), [0]])
    d = np.diff(x)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def iou_f1(selected: np.ndarray, gold: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """ERASER-style partial-match F1 on masks: a predicted span matches if its best IOU with a gold span is
    >= threshold.

    Micro: P = matched predicted / predicted spans, R = matched predicted / gold spans (ERASER's numerator).
    Macro: per-example P and R averaged, F1 of the averages. Values are fractions in [0, 1]. Spans are the
    maximal runs of a mask, so touching gold evidences merge into one span, and the macro averages run over
    every example (one without predicted spans counts P = 0); for ERASER's span files use `iou_f1_spans`.
    """
    sel = (np.asarray(selected) > 0.5) & (np.asarray(mask) > 0.5)
    g = (np.asarray(gold) > 0.5) & (np.asarray(mask) > 0.5)
    n_pred = n_gold = n_match = 0
    ps, rs = [], []
    for srow, grow in zip(sel, g):
        ps_, gs_ = spans(srow), spans(grow)
        match = sum(1 for s in ps_ if gs_ and max(_iou(s, t) for t in gs_) >= threshold)
        n_pred, n_gold, n_match = n_pred + len(ps_), n_gold + len(gs_), n_match + match
        ps.append(_ratio(match, len(ps_)))
        rs.append(_ratio(match, len(gs_)))
    p, r = _ratio(n_match, n_pred), _ratio(n_match, n_gold)
    mp, mr = (float(np.mean(ps)) if ps else 0.0), (float(np.mean(rs)) if rs else 0.0)
    return {"P": p, "R": r, "F1": _f1(p, r), "P_macro": mp, "R_macro": mr, "F1_macro": _f1(mp, mr)}


def _pr_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold, highest first (plus the (0, 1) start)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return np.r_[1.0, precision], np.r_[0.0, recall]


def auprc(scores: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Per-example area under the precision-recall curve of soft token scores (trapezoid over recall),
    and average precision (step-wise sum of precision x recall increments); averaged over examples.
    Examples whose real-token gold is all 0 or all 1 are skipped (ERASER's script skips them only for average
    precision and ROC AUC; `auprc_spans` gives both forms)."""
    areas, aps = [], []
    for srow, grow, mrow in zip(np.asarray(scores), np.asarray(gold), np.asarray(mask)):
        real = mrow > 0.5
        y = (grow[real] > 0.5).astype(np.float64)
        if y.size == 0 or y.sum() in (0, y.size):
            continue
        precision, recall = _pr_curve(np.asarray(srow[real], np.float64), y)
        areas.append(float(np.trapezoid(precision, recall)))
        aps.append(float(np.sum(np.diff(recall) * precision[1:])))
    return {
        "auprc": float(np.mean(areas)) if areas else float("nan"),
        "average_precision": float(np.mean(aps)) if aps else float("nan"),
        "n_scored": len(areas),
    }


def class_macro_token_f1(scores: np.ndarray, gold: np.ndarray, mask: np.ndarray, threshold: float = 0.0) -> float:
    """UNIREX-style: binarise scores at `threshold`, per example the mean of the F1 of 'selected' and of
    'not selected' over real tokens, averaged over examples (fraction)."""
    out = []
    for srow, grow, mrow in zip(np.asarray(scores), np.asarray(gold), np.asarray(mask)):
        real = mrow > 0.5
        pred, y = srow[real] > threshold, grow[real] > 0.5
        f = []
        for cls in (True, False):
            tp = float(np.sum((pred == cls) & (y == cls)))
            f.append(_f1(_ratio(tp, np.sum(pred == cls)), _ratio(tp, np.sum(y == cls))))
        out.append(sum(f) / 2)
    return float(np.mean(out)) if out else 0.0


# --- span-level scoring ---------------------------------------------------------------------------------------
# ERASER's gold evidences are spans, several per (annotation, document), which may touch or overlap. The mask
# functions above turn a mask into maximal runs, which merges touching evidences; the functions below score
# every span as given, keyed by whatever identifies one scored document (ERASER: (annotation_id, docid)).
# Spans are [start, end) token (or sentence) offsets; duplicate spans within a key count once, and a key whose
# span list is empty is the same as a missing key. All values are fractions in [0, 1]; see docs/scoring.md.

Span = tuple[int, int]


def _span_sets(spans_per_key: Mapping[Hashable, Iterable[Span]]) -> dict[Hashable, set[Span]]:
    out = {k: {(int(s), int(e)) for s, e in v} for k, v in spans_per_key.items()}
    return {k: v for k, v in out.items() if v}


def _token_sets(spans_per_key: Mapping[Hashable, Iterable[Span]]) -> dict[Hashable, set[int]]:
    out = {k: {t for s, e in v for t in range(int(s), int(e))} for k, v in spans_per_key.items()}
    return {k: v for k, v in out.items() if v}


def _set_prf(pred: dict[Hashable, set], gold: dict[Hashable, set]) -> dict[str, float]:
    """Micro P/R/F1 over all units; macro = per-key P, R and F1 averaged over the keys with a unit in either."""
    tp = sum(len(pred[k] & gold[k]) for k in pred.keys() & gold.keys())
    n_pred, n_gold = sum(map(len, pred.values())), sum(map(len, gold.values()))
    p, r = _ratio(tp, n_pred), _ratio(tp, n_gold)
    ps, rs, fs = [], [], []
    for k in pred.keys() | gold.keys():
        hit = len(pred.get(k, set()) & gold.get(k, set()))
        kp, kr = _ratio(hit, len(pred.get(k, ()))), _ratio(hit, len(gold.get(k, ())))
        ps.append(kp)
        rs.append(kr)
        fs.append(_f1(kp, kr))
    return {"P": p, "R": r, "F1": _f1(p, r), "P_macro": _mean(np.asarray(ps)), "R_macro": _mean(np.asarray(rs)),
            "F1_macro": _mean(np.asarray(fs))}


def token_prf_spans(pred: Mapping[Hashable, Iterable[Span]], gold: Mapping[Hashable, Iterable[Span]]
                    ) -> dict[str, float]:
    """Token P/R/F1 from spans: each key's spans become a token set (overlaps count a token once).

    Micro pools the counts over all keys; macro averages per-key P, R and F1 over the keys that have a gold or a
    predicted token (a key with gold but no prediction scores 0; a key with neither is not counted), as ERASER's
    `token_prf.instance_macro`. `F1_macro` is the mean of per-key F1, not the F1 of the means."""
    return _set_prf(_token_sets(pred), _token_sets(gold))


def span_prf(pred: Mapping[Hashable, Iterable[Span]], gold: Mapping[Hashable, Iterable[Span]]) -> dict[str, float]:
    """Exact-match span P/R/F1 (a predicted span counts only if a gold span has the same start and end), micro and
    macro as in `token_prf_spans` (ERASER's `rationale_prf`)."""
    return _set_prf(_span_sets(pred), _span_sets(gold))


def _span_iou(a: Span, b: Span) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def iou_f1_spans(pred: Mapping[Hashable, Iterable[Span]], gold: Mapping[Hashable, Iterable[Span]],
                 threshold: float = 0.5) -> dict[str, float]:
    """ERASER partial match on spans as given: a predicted span matches when its best IOU with a gold span of
    the same key is >= threshold (a predicted span with no gold in its key has best IOU 0).

    Micro: P = matched predicted / predicted spans, R = matched predicted / gold spans (ERASER's numerator, so R
    can exceed 1 when several predictions match one gold span). Macro: P averaged over the keys with a
    prediction, R over the keys with gold, `F1_macro` = F1 of those two averages."""
    p_sets, g_sets = _span_sets(pred), _span_sets(gold)
    matched = {k: sum(1 for p in ps if max((_span_iou(p, t) for t in g_sets.get(k, ())), default=0.0) >= threshold)
               for k, ps in p_sets.items()}
    n_match = sum(matched.values())
    n_pred, n_gold = sum(map(len, p_sets.values())), sum(map(len, g_sets.values()))
    p, r = _ratio(n_match, n_pred), _ratio(n_match, n_gold)
    mp = float(np.mean([matched[k] / len(v) for k, v in p_sets.items()])) if p_sets else 0.0
    mr = float(np.mean([matched.get(k, 0) / len(v) for k, v in g_sets.items()])) if g_sets else 0.0
    return {"P": p, "R": r, "F1": _f1(p, r), "P_macro": mp, "R_macro": mr, "F1_macro": _f1(mp, mr)}


def _roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Trapezoid area under the ROC curve, one point per distinct score (ties form one step)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return float(np.trapezoid(np.r_[0.0, tp / y.sum()], np.r_[0.0, fp / (len(y) - y.sum())]))


def auprc_spans(scores: Mapping[Hashable, Sequence[float]], gold: Mapping[Hashable, Iterable[Span]]
                ) -> dict[str, float]:
    """Soft scores per key (one per token, or per sentence) against the key's gold spans (missing key: no gold).

    `auprc`: per key, the trapezoid area under the precision-recall curve, averaged over **every** key, as
    ERASER's script does. A key without gold tokens gets 0.5 and one whose tokens are all gold gets 1.0, what
    the script prints with current scikit-learn (precision 0 at recall 1, resp. precision 1 throughout).
    `auprc_two_class`: the same average over the keys whose gold has both classes only (what the mask-based
    `auprc` reports). `average_precision` and `roc_auc` skip the single-class keys, as ERASER does; nan when
    no key is left."""
    areas, two_class, aps, rocs = [], [], [], []
    for key, row in scores.items():
        s = np.asarray(row, np.float64)
        y = np.zeros(len(s))
        for start, end in gold.get(key, ()):
            if start < 0 or end > len(s):
                raise ValueError(f"gold span [{start}, {end}) of {key!r} lies outside its {len(s)} scores")
            y[start:end] = 1.0
        positives = y.sum()
        if positives == 0:
            areas.append(0.5)
            continue
        if positives == len(y):
            areas.append(1.0)
            continue
        precision, recall = _pr_curve(s, y)
        area = float(np.trapezoid(precision, recall))
        areas.append(area)
        two_class.append(area)
        aps.append(float(np.sum(np.diff(recall) * precision[1:])))
        rocs.append(_roc_auc(s, y))
    nan = float("nan")
    return {
        "auprc": float(np.mean(areas)) if areas else nan,
        "auprc_two_class": float(np.mean(two_class)) if two_class else nan,
        "average_precision": float(np.mean(aps)) if aps else nan,
        "roc_auc": float(np.mean(rocs)) if rocs else nan,
        "n_scored": len(areas),
        "n_two_class": len(two_class),
    }
