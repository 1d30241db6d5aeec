"""`ratbench score`: score rationales produced by any code, read in the ERASER benchmark's JSONL formats.

Gold: an ERASER annotation file (`test.jsonl`: `annotation_id`, `classification`, `evidences` = lists of
`{docid, start_token, end_token, ...}`), with the documents in `docs/` or `docs.jsonl` beside it (or
`--docs`). Predictions: one object per annotation with `rationales` = `[{docid, hard_rationale_predictions:
[{start_token, end_token}], soft_rationale_predictions: [one score per token]}]`, `classification`,
`classification_scores`, `comprehensiveness_classification_scores`, `sufficiency_classification_scores`,
and optionally `thresholded_scores` (per AOPC bin). Every number comes from `ratbench.metrics`; `DEFINITIONS`
says which definition each follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ratbench.errors import DataFormatError, RatbenchError

DEFINITIONS = {
    "token_p/r/f1 (micro)": "token overlap pooled over all (annotation, document) pairs, methods.md §12.2",
    "token_p/r/f1 (macro)": "per (annotation, document) P and R averaged; F1 per instance averaged (ERASER "
                            "'instance_macro')",
    "sparsity": "selected tokens / document tokens, pooled (needs document lengths)",
    "iou_f1": "ERASER partial match at IOU >= 0.5; micro numerator = matched predicted spans (ERASER script), "
              "§12.4",
    "auprc": "per-instance area under the precision-recall curve of the soft scores (trapezoid), averaged; "
             "instances whose gold is all 0 or all 1 skipped, §12.4",
    "comprehensiveness": "mean of p(c|x) - p(c|x without r), c = the predicted class, §12.3",
    "sufficiency": "mean of p(c|x) - p(c|r), c = the predicted class, §12.3",
    "aopc": "bins of `thresholded_scores`: sum of bin means / (|B| + 1) (ERASER paper, UNIREX); "
            "`_eraser_script` divides by |B| (quirk A21)",
    "accuracy": "predicted `classification` equals the gold one",
}


@dataclass
class Instance:
    annotation_id: str
    docid: str
    length: int | None
    gold: list[tuple[int, int]]
    hard: list[tuple[int, int]] = field(default_factory=list)
    soft: list[float] | None = None


def _read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise RatbenchError(f"The {what} file {path} does not exist.")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, f"is not valid JSON Lines ({err.msg}).", line=number,
                                      fix=f"The {what} file must hold one JSON object per line.") from None
            if not isinstance(obj, dict):
                raise DataFormatError(path, "holds a JSON value that is not an object.", line=number,
                                      fix=f"The {what} file must hold one JSON object per line.")
            rows.append(obj)
    return rows


def _doc_lengths(gold_path: Path, docs: Path | None) -> dict[str, int]:
    """Whitespace token counts of the documents (ERASER `docs/<docid>` files or `docs.jsonl`), if found."""
    candidates = [docs] if docs else [gold_path.parent / "docs", gold_path.parent / "docs.jsonl"]
    for c in candidates:
        if c is None or not c.exists():
            continue
        if c.is_dir():
            return {p.name: len(p.read_text(encoding="utf-8").split()) for p in c.iterdir() if p.is_file()}
        return {r["docid"]: len(str(r.get("document", "")).split()) for r in _read_jsonl(c, "documents")}
    if docs:
        raise RatbenchError(f"The documents path {docs} does not exist; pass ERASER's docs/ folder or docs.jsonl.")
    return {}


def _span(obj: dict, path: Path, where: str) -> tuple[int, int]:
    try:
        start, end = int(obj["start_token"]), int(obj["end_token"])
    except (KeyError, TypeError, ValueError):
        raise DataFormatError(path, f"{where}: a span without integer start_token/end_token.",
                              fix="Write spans as {\"start_token\": s, \"end_token\": e} (end exclusive).") from None
    if start < 0 or end < start:
        raise DataFormatError(path, f"{where}: span [{start}, {end}) is not a valid range.",
                              fix="start_token must be >= 0 and end_token >= start_token (end exclusive).")
    return start, end


def load_pairs(predictions: Path, gold: Path, docs: Path | None = None) -> tuple[list[Instance], list[dict],
                                                                                    dict[str, dict]]:
    """Join predictions to gold annotations: one Instance per (annotation, document)."""
    gold_rows = _read_jsonl(gold, "gold annotation")
    pred_rows = _read_jsonl(predictions, "predictions")
    lengths = _doc_lengths(gold, docs)
    by_id: dict[str, dict] = {}
    for i, row in enumerate(gold_rows, 1):
        if "annotation_id" not in row or "evidences" not in row:
            raise DataFormatError(gold, "an annotation lacks annotation_id or evidences.", line=i,
                                  fix="Pass an ERASER annotation file such as test.jsonl.")
        by_id[str(row["annotation_id"])] = row
    preds: dict[str, dict] = {}
    for i, row in enumerate(pred_rows, 1):
        if "annotation_id" not in row:
            raise DataFormatError(predictions, "a prediction lacks annotation_id.", line=i,
                                  fix="Every prediction needs the annotation_id of its gold annotation.")
        preds[str(row["annotation_id"])] = row
    unknown = sorted(set(preds) - set(by_id))
    if unknown:
        raise RatbenchError(f"{len(unknown)} prediction(s) in {predictions} have no gold annotation in {gold} "
                            f"(e.g. {unknown[0]!r}); check that both files are the same split.")
    instances: list[Instance] = []
    for ann_id, pred in preds.items():
        ann = by_id[ann_id]
        gold_spans: dict[str, list[tuple[int, int]]] = {}
        for group in ann["evidences"]:
            for ev in group if isinstance(group, list) else [group]:
                gold_spans.setdefault(str(ev["docid"]), []).append(_span(ev, gold, f"annotation {ann_id!r}"))
        for rat in pred.get("rationales", []):
            docid = str(rat.get("docid"))
            hard = [_span(s, predictions, f"prediction {ann_id!r}") for s in rat.get("hard_rationale_predictions", [])]
            soft = rat.get("soft_rationale_predictions")
            length = lengths.get(docid, len(soft) if soft is not None else None)
            if soft is not None and length is not None and len(soft) != length:
                raise DataFormatError(predictions, f"prediction {ann_id!r}: {len(soft)} soft scores for document "
                                      f"{docid!r} of {length} tokens.",
                                      fix="Give one soft_rationale_predictions score per document token.")
            instances.append(Instance(ann_id, docid, length, gold_spans.get(docid, []), hard, soft))
    return instances, pred_rows, by_id


def _masks(instances: list[Instance]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(selected, gold, mask, soft) as (N, L) arrays; without document lengths, L covers every span."""
    def end(inst: Instance) -> int:
        spans = inst.gold + inst.hard
        return inst.length if inst.length is not None else max((e for _, e in spans), default=0)

    width = max((end(i) for i in instances), default=0) or 1
    n = len(instances)
    sel, gold, mask = np.zeros((n, width)), np.zeros((n, width)), np.zeros((n, width))
    soft = np.zeros((n, width)) if all(i.soft is not None for i in instances) else None
    for row, inst in enumerate(instances):
        mask[row, : end(inst)] = 1
        for s, e in inst.gold:
            gold[row, s:e] = 1
        for s, e in inst.hard:
            sel[row, s:e] = 1
        if soft is not None:
            soft[row, : len(inst.soft)] = inst.soft
    return sel, gold, mask, soft


def _prob(scores: dict | None, cls: str) -> float | None:
    if not isinstance(scores, dict) or cls not in scores:
        return None
    return float(scores[cls])


def score(predictions: Path, gold: Path, docs: Path | None = None) -> dict[str, Any]:
    from ratbench.metrics import AOPC_BINS, TokenOverlap, aopc, auprc, iou_f1

    instances, pred_rows, by_id = load_pairs(Path(predictions), Path(gold), Path(docs) if docs else None)
    if not instances:
        raise RatbenchError(f"No rationales to score in {predictions}: no prediction has a `rationales` list.")
    sel, g, mask, soft = _masks(instances)
    overlap = TokenOverlap()
    overlap.update(sel, g, mask)
    tok = overlap.compute()
    out: dict[str, Any] = {
        "n_predictions": len(pred_rows), "n_instances": len(instances),
        "token_p": tok["P"] / 100, "token_r": tok["R"] / 100, "token_f1": tok["F1"] / 100,
        "token_p_macro": tok["P_macro"] / 100, "token_r_macro": tok["R_macro"] / 100,
        "token_f1_macro": tok["F1_macro"] / 100,
    }
    if all(i.length is not None for i in instances):
        out["sparsity"] = tok["S"] / 100
    iou = iou_f1(sel, g, mask)
    out.update(iou_p=iou["P"], iou_r=iou["R"], iou_f1=iou["F1"], iou_f1_macro=iou["F1_macro"])
    if soft is not None:
        pr = auprc(soft, g, mask)
        out.update(auprc=pr["auprc"], average_precision=pr["average_precision"])
    correct, comp, suff = [], [], []
    bins: dict[float, tuple[list[float], list[float]]] = {}
    for pred in pred_rows:
        cls = pred.get("classification")
        if cls is None:
            continue
        correct.append(str(cls) == str(by_id[str(pred["annotation_id"])].get("classification")))
        full = _prob(pred.get("classification_scores"), cls)
        without = _prob(pred.get("comprehensiveness_classification_scores"), cls)
        only = _prob(pred.get("sufficiency_classification_scores"), cls)
        if full is not None and without is not None:
            comp.append(full - without)
        if full is not None and only is not None:
            suff.append(full - only)
        for t in pred.get("thresholded_scores") or []:
            c, s = (_prob(t.get(k), cls) for k in ("comprehensiveness_classification_scores",
                                                    "sufficiency_classification_scores"))
            if full is None or c is None or s is None:
                continue
            lists = bins.setdefault(float(t["threshold"]), ([], []))
            lists[0].append(full - c)
            lists[1].append(full - s)
    if correct:
        out["accuracy"] = float(np.mean(correct))
    if comp:
        out["comprehensiveness"] = float(np.mean(comp))
    if suff:
        out["sufficiency"] = float(np.mean(suff))
    if bins:
        for j, name in enumerate(("comprehensiveness", "sufficiency")):
            a = aopc({k: np.asarray(v[j]) for k, v in sorted(bins.items())})
            out[f"{name}_aopc"] = a["aopc"]
            out[f"{name}_aopc_eraser_script"] = a["aopc_eraser_script"]
        out["aopc_bins"] = sorted(bins)
        if sorted(bins) != list(AOPC_BINS):
            out["aopc_note"] = f"bins {sorted(bins)} differ from ERASER's default {list(AOPC_BINS)}"
    return out
