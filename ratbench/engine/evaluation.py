"""Evaluation passes: accuracy, sparsity and agreement with the human rationale, and the faithfulness
metrics of the selected model (docs/metrics.md). Every pass runs in inference mode with a sampling
generator re-seeded from `eval_seed`, so the same model always gets the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ratbench.data.batching import Batch
from ratbench.metrics import (
    AOPC_BINS,
    Accuracy,
    TokenOverlap,
    aopc,
    auprc,
    auprc_spans,
    iou_f1,
    iou_f1_spans,
    token_prf_spans,
    topk_select,
)
from ratbench.metrics import spans as mask_runs

EVAL_BATCH = 256


def document_words(values: torch.Tensor, batch: Batch) -> list[np.ndarray]:
    """Per example, `values` (B, L) at its document words in order, as far as they were kept: the selectable
    positions themselves, or for sub-word pieces each word's maximum over its pieces (`to_words`)."""
    if batch.word_index is not None:
        rows = to_words(values.float() * batch.mask, batch).cpu().numpy()
        keep = batch.word_mask.cpu().numpy() > 0.5
    else:
        rows = values.float().cpu().numpy()
        keep = batch.mask.cpu().numpy() > 0.5
    return [row[k] for row, k in zip(rows, keep)]


def full_length(ev: Any, values: np.ndarray) -> np.ndarray:
    """Values over an example's kept words -> over all its document words (0 on words truncation cut)."""
    if len(values) > ev.words:
        raise ValueError(f"example {ev.example} has {len(values)} selectable words, its documents {ev.words}")
    out = np.zeros(ev.words)
    out[: len(values)] = values
    return out


class DocumentRows:
    """Selections and soft scores over each example's documents, keyed as ERASER's scorer keys them: one instance
    per (example, document) of every example with gold evidence (the others are left out of rationale metrics).

    Words cut by truncation are unselected with score 0, and the evidence on them counts as missed: the metrics
    are against all of the test evidence, as given (spans are neither merged nor clipped)."""

    def __init__(self) -> None:
        self.hard: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.soft: dict[tuple[int, int], list[float]] = {}
        self.gold: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def __bool__(self) -> bool:
        return bool(self.soft)

    def add(self, batch: Batch, selection: torch.Tensor, scores: torch.Tensor) -> None:
        for ev, sel, score in zip(batch.evidence, document_words(selection, batch), document_words(scores, batch)):
            if not ev.has_gold:
                continue
            full_sel, full_score = full_length(ev, sel), full_length(ev, score)
            for d, (a, b) in enumerate(ev.documents):
                self.hard[(ev.example, d)] = mask_runs(full_sel[a:b])
                self.soft[(ev.example, d)] = full_score[a:b].tolist()
            for d, start, end in ev.spans:
                self.gold.setdefault((ev.example, d), []).append((start, end))

    def metrics(self, iou_threshold: float = 0.5) -> dict[str, float]:
        """Token P/R/F1 (micro, macro), IOU P/R/F1 and AUPRC / average precision, fractions, as ERASER's scorer."""
        out: dict[str, float] = {}
        hard = {k: v for k, v in self.hard.items() if v}
        for prefix, m in (("token", token_prf_spans(hard, self.gold)),
                          ("iou", iou_f1_spans(hard, self.gold, iou_threshold))):
            out.update({f"{prefix}_p": m["P"], f"{prefix}_r": m["R"], f"{prefix}_f1": m["F1"],
                        f"{prefix}_p_macro": m["P_macro"], f"{prefix}_r_macro": m["R_macro"],
                        f"{prefix}_f1_macro": m["F1_macro"]})
        soft = auprc_spans(self.soft, self.gold)
        out.update(auprc=soft["auprc"], average_precision=soft["average_precision"])
        return out


def class_f1_macro(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the gold labels of each label's F1 (0 when undefined), as ERASER's scorer (scikit-learn's macro
    average over the labels of the gold file); a fraction."""
    f1s = []
    for label in np.unique(truth):
        tp = float(np.sum((predicted == label) & (truth == label)))
        n_pred, n_true = float(np.sum(predicted == label)), float(np.sum(truth == label))
        p, r = (tp / n_pred if n_pred else 0.0), (tp / n_true if n_true else 0.0)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


def to_words(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Piece-level values (B, L) -> word-level (B, W): each word takes the maximum over its pieces (a word is
    selected if any of its pieces is). Positions outside words (specials, query, padding) are dropped."""
    width = batch.word_mask.shape[1]
    index = torch.where(batch.word_index < 0, torch.full_like(batch.word_index, width), batch.word_index)
    out = torch.zeros(values.shape[0], width + 1, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(1, index, values, "amax", include_self=True)[:, :width]


def _levels(z: torch.Tensor, batch: Batch, gold: bool) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(suffix, selection, gold, mask) per level the metrics are reported at: words ("" suffix) and pieces
    ("_subword") when the batch holds sub-word pieces, else the tokens themselves."""
    mask = batch.mask.cpu().numpy()
    g = batch.gold.cpu().numpy() if (gold and batch.gold is not None) else np.zeros_like(mask)
    if batch.word_index is None:
        return [("", z.float().cpu().numpy(), g, mask)]
    words = to_words(z.float() * batch.mask, batch).cpu().numpy()
    wmask = batch.word_mask.cpu().numpy()
    wg = batch.word_gold.cpu().numpy() if (gold and batch.word_gold is not None) else np.zeros_like(wmask)
    return [("", words, wg, wmask), ("_subword", z.float().cpu().numpy(), g, mask)]


def eval_generator(device: torch.device, seed: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


@torch.inference_mode()
def full_text_accuracy(method: Any, model: torch.nn.Module, batches: list[Batch]) -> float:
    """The predictor on the whole text (every real token selected)."""
    model.eval()
    acc = Accuracy()
    for batch in batches:
        logits = method.predict_with(model, batch, torch.ones_like(batch.mask))
        acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
    return acc.compute()


@torch.inference_mode()
def evaluate(method: Any, model: torch.nn.Module, batches: list[Batch], gold: bool, generator: torch.Generator,
             explain: bool = True) -> dict[str, float]:
    """One pass: accuracy, sparsity and (with `gold`) overlap with the human rationale. Without `explain`
    only the classification is computed and rationale metrics are NaN (costly post-hoc explainers)."""
    model.eval()
    # the classifier on its rationale alone, for methods whose prediction reads the full text
    post_hoc = getattr(method, "explains_full_text", method.post_hoc)
    acc, rat_acc = Accuracy(), Accuracy()
    overlaps: dict[str, TokenOverlap] = {}
    # examples with gold evidence only (a split that flags them, ERASER): P/R/F1 skip the others, S does not
    gold_overlaps: dict[str, TokenOverlap] = {}
    flagged = False
    documents = DocumentRows()
    predicted, truth = [], []
    for batch in batches:
        if explain:
            z, logits, scores = method.rationale(model, batch, generator)
        else:
            logits, z = method.classify(model, batch), None
        acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
        if batch.evidence is not None:
            predicted.append(logits.argmax(-1).cpu().numpy())
            truth.append(batch.labels.cpu().numpy())
        if post_hoc and explain:
            on_rationale = method.predict_with(model, batch, z)
            rat_acc.update(on_rationale.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
        if z is not None:
            rows = batch.has_gold.cpu().numpy() > 0.5 if (gold and batch.has_gold is not None) else None
            flagged = flagged or rows is not None
            for suffix, sel, g, mask in _levels(z, batch, gold):
                overlaps.setdefault(suffix, TokenOverlap()).update(sel, g, mask)
                if rows is not None:
                    gold_overlaps.setdefault(suffix, TokenOverlap()).update(sel[rows], g[rows], mask[rows])
            if gold and batch.evidence is not None:
                documents.add(batch, z * batch.mask, scores)
    out = {"Acc": acc.compute()}
    if predicted:  # tasks with several classes: ERASER reports the classification's macro F1
        out["class_f1_macro"] = 100 * class_f1_macro(np.concatenate(predicted), np.concatenate(truth))
    ranked = gold_overlaps if flagged else overlaps
    # the published code's S and P count selected padding, at the level of its tensors (tokens, or pieces)
    ref = overlaps.get("_subword", overlaps.get(""))
    gold_ref = ranked.get("_subword", ranked.get(""))
    for suffix in overlaps or {"": None}:
        ov = overlaps[suffix].compute() if explain and overlaps else dict.fromkeys(TokenOverlap.KEYS, float("nan"))
        ref_ov = ref.compute() if explain and ref is not None else dict.fromkeys(TokenOverlap.KEYS, float("nan"))
        out[f"S{suffix}"] = ov["S"]
        if not suffix:
            out["s_ref"] = ref_ov["S_ref"]
        if gold:
            if flagged:  # a pass without any example with gold gives the "nothing to compare" zeros
                empty = dict.fromkeys(TokenOverlap.KEYS, 0.0)
                ov = ranked[suffix].compute() if suffix in ranked else empty
                ref_ov = gold_ref.compute() if gold_ref is not None else empty
            out.update({f"P{suffix}": ov["P"], f"R{suffix}": ov["R"], f"F1{suffix}": ov["F1"]})
            if not suffix:
                out["p_ref"] = ref_ov["P_ref"]
            out.update({f"p_macro{suffix}": ov["P_macro"], f"r_macro{suffix}": ov["R_macro"],
                        f"f1_macro{suffix}": ov["F1_macro"]})
            out.update({f"p_random{suffix}": ov["P_random"], f"r_random{suffix}": ov["R_random"],
                        f"f1_random{suffix}": ov["F1_random"]})
    if documents and explain:  # evidence as given (ERASER): token P/R/F1 as ERASER's scorer computes them
        tokens = documents.metrics()
        out.update({"P": 100 * tokens["token_p"], "R": 100 * tokens["token_r"], "F1": 100 * tokens["token_f1"],
                    "p_macro": 100 * tokens["token_p_macro"], "r_macro": 100 * tokens["token_r_macro"],
                    "f1_macro": 100 * tokens["token_f1_macro"]})
    if post_hoc and explain:
        out["rationale_acc"] = rat_acc.compute()
    return out


@torch.inference_mode()
def faithfulness(method: Any, model: torch.nn.Module, batches: list[Batch], generator: torch.Generator,
                 collect: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """ERASER comprehensiveness/sufficiency of the hard rationale, their AOPC over top-k% of the selector's
    soft scores, IOU-F1 and AUPRC, and the predictor's full-text accuracy, all from one pass.

    With `collect`, each batch's per-example outputs are appended to it (`ratbench export` writes them in
    ERASER's results format): the class distributions on the full text, without the rationale, on the rationale
    alone and for every AOPC bin, and the hard selection and soft scores over the document words."""
    model.eval()
    comp, suff = [], []
    comp_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
    suff_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
    full_acc = Accuracy()
    spans: list[tuple[torch.Tensor, ...]] = []
    documents = DocumentRows()

    def probs(keep: torch.Tensor, batch: Batch) -> np.ndarray:
        return method.predict_with(model, batch, keep).float().softmax(-1).cpu().numpy()

    for batch in batches:
        z, _, scores = method.rationale(model, batch, generator)
        zm = z * batch.mask
        full_logits = method.predict_with(model, batch, torch.ones_like(batch.mask))
        cls = full_logits.argmax(-1)
        full_acc.update(cls.cpu().numpy(), batch.labels.cpu().numpy())
        rows = np.arange(len(batch))
        c = cls.cpu().numpy()
        dist_full = full_logits.float().softmax(-1).cpu().numpy()
        dist_comp, dist_suff = probs(1.0 - zm, batch), probs(zm, batch)
        p_full = dist_full[rows, c]
        comp.append(p_full - dist_comp[rows, c])
        suff.append(p_full - dist_suff[rows, c])
        bins = {}
        for k in AOPC_BINS:
            top = topk_select(scores, batch.mask, k)
            bins[k] = (probs(1.0 - top, batch), probs(top, batch))
            comp_bins[k].append(p_full - bins[k][0][rows, c])
            suff_bins[k].append(p_full - bins[k][1][rows, c])
        if batch.evidence is not None:  # evidence as given (ERASER): its scorer's spans and AUPRC
            documents.add(batch, zm, scores)
        elif batch.word_index is not None and batch.word_gold is not None:  # spans and AUPRC over words
            spans.append((to_words(zm, batch), batch.word_gold, batch.word_mask,
                          to_words(scores.float() * batch.mask, batch)))
        elif batch.gold is not None:
            spans.append((zm, batch.gold, batch.mask, scores))
        if collect is not None:
            collect.append({"evidence": batch.evidence, "labels": batch.labels.cpu().numpy(), "predicted": c,
                            "full": dist_full, "comprehensiveness": dist_comp, "sufficiency": dist_suff,
                            "bins": bins, "selection": document_words(zm, batch),
                            "scores": document_words(scores, batch)})
    comp_a = aopc({k: np.concatenate(v) for k, v in comp_bins.items()})
    suff_a = aopc({k: np.concatenate(v) for k, v in suff_bins.items()})
    out = {
        "comprehensiveness": float(np.concatenate(comp).mean()),
        "sufficiency": float(np.concatenate(suff).mean()),
        "comp_aopc": comp_a["aopc"],
        "suff_aopc": suff_a["aopc"],
        "comp_aopc_eraser_script": comp_a["aopc_eraser_script"],
        "suff_aopc_eraser_script": suff_a["aopc_eraser_script"],
        "full_text_acc": full_acc.compute(),
    }
    if documents:
        m = documents.metrics()
        out.update(iou_f1=m["iou_f1"], iou_p=m["iou_p"], iou_r=m["iou_r"], auprc=m["auprc"],
                   average_precision=m["average_precision"])
    elif spans and len(spans) == len(batches):
        out.update(span_metrics(spans))
    return out


def span_metrics(spans: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
    """IOU-F1 and AUPRC over the whole test set from per-batch (selection, gold, mask, soft score), padded
    to the longest test example."""
    width = max(t[0].shape[1] for t in spans)
    cols = [np.concatenate([torch.nn.functional.pad(t[i], (0, width - t[i].shape[1])).float().cpu().numpy()
                            for t in spans]) for i in range(4)]
    sel_a, gold_a, mask_a, score_a = cols
    iou = iou_f1(sel_a, gold_a, mask_a)
    pr = auprc(score_a, gold_a, mask_a)
    return {
        "iou_f1": iou["F1"],
        "iou_p": iou["P"],
        "iou_r": iou["R"],
        "auprc": pr["auprc"],
        "average_precision": pr.get("average_precision", float("nan")),
    }
