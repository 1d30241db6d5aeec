"""Finished runs' test predictions in ERASER's results format (`ratbench export --format eraser`).

One JSON object per test annotation, as ERASER's scorer (`rationale_benchmark/metrics.py`) and `ratbench score`
read them:
- `rationales`: per document of the example, `hard_rationale_predictions` (the maximal runs of the selected
  words, `{start_token, end_token}`, end exclusive, document-local) and `soft_rationale_predictions` (the
  method's soft score of every document token; words a transformer's truncation cut get 0 and are unselected);
- `classification` and `classification_scores`: the predictor on the full text, the reference point of
  comprehensiveness and sufficiency (ratbench's `full_text_acc` is this classification's accuracy);
- `comprehensiveness_classification_scores` / `sufficiency_classification_scores`: the class distribution
  without the hard rationale / on it alone; `thresholded_scores`: the same for the top-k% of the soft scores,
  one entry per AOPC bin.
Examples without gold evidence get an empty `rationales` list by default, so ERASER's scorer leaves them out of
its rationale metrics as ratbench does (`unannotated="include"` writes their rationales too; the scorer then
counts every token selected there as a false positive). Nothing here imports torch: the engine computes the
numbers (`engine.evaluation.faithfulness(..., collect=...)`), this module only writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ratbench.atomic import write_text
from ratbench.data.corpus import TextSplit
from ratbench.errors import RatbenchError
from ratbench.metrics import spans as mask_runs

UNANNOTATED = ("omit", "include")


def _distribution(p: np.ndarray, labels: list[str]) -> dict[str, float]:
    return {label: float(v) for label, v in zip(labels, p)}


def eraser_rows(collected: list[dict[str, Any]], text: TextSplit, labels: list[str],
                unannotated: str = "omit") -> list[dict[str, Any]]:
    """ERASER results rows from the per-batch outputs `faithfulness(..., collect=...)` gathered, in test-file order.

    `text` is the test split as read (its `ids` and `documents` name annotations and documents); each batch's
    evidence says which of its examples each row is."""
    if unannotated not in UNANNOTATED:
        raise RatbenchError(f"unannotated must be one of {', '.join(UNANNOTATED)}, got {unannotated!r}.")
    if text.ids is None or text.documents is None:
        raise RatbenchError("An ERASER export needs the test split's annotation ids and documents (an ERASER task).")
    rows: list[tuple[int, dict[str, Any]]] = []
    for batch in collected:
        if batch["evidence"] is None:
            raise RatbenchError("The test batches carry no evidence: only ERASER tasks can be exported.")
        for i, ev in enumerate(batch["evidence"]):
            example = ev.example
            sel, score = np.zeros(ev.words), np.zeros(ev.words)
            kept = batch["selection"][i]
            sel[: len(kept)] = kept
            score[: len(kept)] = batch["scores"][i]
            rationales = []
            if ev.has_gold or unannotated == "include":
                for (docid, _, _), (a, b) in zip(text.documents[example], ev.documents):
                    rationales.append({
                        "docid": docid,
                        "hard_rationale_predictions": [{"start_token": s, "end_token": e}
                                                       for s, e in mask_runs(sel[a:b])],
                        "soft_rationale_predictions": [float(v) for v in score[a:b]],
                    })
            bins = [{"threshold": float(k),
                     "comprehensiveness_classification_scores": _distribution(comp[i], labels),
                     "sufficiency_classification_scores": _distribution(suff[i], labels)}
                    for k, (comp, suff) in sorted(batch["bins"].items())]
            rows.append((example, {
                "annotation_id": text.ids[example],
                "rationales": rationales,
                "classification": labels[int(batch["predicted"][i])],
                "classification_scores": _distribution(batch["full"][i], labels),
                "comprehensiveness_classification_scores": _distribution(batch["comprehensiveness"][i], labels),
                "sufficiency_classification_scores": _distribution(batch["sufficiency"][i], labels),
                "thresholded_scores": bins,
            }))
    return [row for _, row in sorted(rows, key=lambda t: t[0])]


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def annotation_ids(path: Path) -> list[str]:
    """The annotation ids of an ERASER split file, in order."""
    with open(path, encoding="utf-8") as fh:
        return [str(json.loads(line)["annotation_id"]) for line in fh if line.strip()]


def gold_subset(path: Path, keep: set[str]) -> str:
    """The lines of an ERASER split file whose annotation is in `keep`, verbatim."""
    with open(path, encoding="utf-8") as fh:
        return "".join(line for line in fh if line.strip() and str(json.loads(line)["annotation_id"]) in keep)


def write_export(predictions: Path, rows: list[dict[str, Any]], test_file: Path) -> Path | None:
    """Write the predictions, and beside them `<name>.gold.jsonl` when they cover only part of `test_file` (a
    `test_limit` run, or annotations whose document is missing): ERASER's scorer needs a prediction for every
    annotation of the gold file. Returns the gold subset's path, or None when the whole test file applies."""
    write_text(predictions, jsonl(rows))
    ours = [r["annotation_id"] for r in rows]
    if ours == annotation_ids(test_file):
        return None
    gold = predictions.with_name(predictions.name.removesuffix(".jsonl") + ".gold.jsonl")
    write_text(gold, gold_subset(test_file, set(ours)))
    return gold
