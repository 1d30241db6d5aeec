"""`ratbench score`: score rationales produced by any code, read in the ERASER benchmark's JSONL formats.

Gold: an ERASER annotation file (`test.jsonl`: `annotation_id`, `classification`, `evidences` = groups of
`{docid, start_token, end_token, start_sentence, end_sentence, ...}`), with the documents in `docs/` or
`docs.jsonl` beside it (or `--docs`). Predictions: one object per annotation with `rationales` = `[{docid,
hard_rationale_predictions: [{start_token, end_token}], soft_rationale_predictions: [one score per token],
soft_sentence_predictions: [one score per sentence]}]`, `classification`, `classification_scores`,
`comprehensiveness_classification_scores`, `sufficiency_classification_scores` and optionally
`thresholded_scores` (per AOPC bin).

The numbers follow ERASER's scoring script (`rationale_benchmark/metrics.py`) unless `DEFINITIONS` marks them
as ratbench's own: every gold evidence span and every predicted span is scored as given (touching or
overlapping spans are not merged), each (annotation, document) pair is one scored instance, and every gold
annotation counts, predicted or not. docs/scoring.md has the definitions and the differences.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ratbench.errors import DataFormatError, RatbenchError
from ratbench.metrics.faithfulness import AOPC_BINS, aopc
from ratbench.metrics.plausibility import auprc_spans, iou_f1_spans, span_prf, token_prf_spans

ERASER = "ERASER script"
RATBENCH = "ratbench"


@dataclass(frozen=True)
class Definition:
    keys: tuple[str, ...]
    source: str  # ERASER: equals what ERASER's script prints; RATBENCH: ratbench's own number
    text: str


DEFINITIONS: dict[str, Definition] = {
    "token P/R/F1 (micro)": Definition(
        ("token_p", "token_r", "token_f1"), ERASER,
        "token_prf.instance_micro: the tokens of each (annotation, document) pair's spans as a set, counts pooled "
        "over every gold annotation and every prediction"),
    "token P/R/F1 (macro)": Definition(
        ("token_p_macro", "token_r_macro", "token_f1_macro"), ERASER,
        "token_prf.instance_macro: P, R and F1 per (annotation, document) pair with a gold or a predicted token, "
        "averaged (F1 = mean of the per-pair F1)"),
    "span exact match (micro)": Definition(
        ("rationale_p", "rationale_r", "rationale_f1"), ERASER,
        "rationale_prf.instance_micro: a predicted span counts only if a gold span has the same start and end"),
    "span exact match (macro)": Definition(
        ("rationale_p_macro", "rationale_r_macro", "rationale_f1_macro"), ERASER,
        "rationale_prf.instance_macro, averaged like the token macro"),
    "IOU (micro)": Definition(
        ("iou_p", "iou_r", "iou_f1"), ERASER,
        "iou_scores micro: a predicted span matches when its best IOU with a gold span of its pair is >= the "
        "threshold; P = matched / predicted spans, R = matched predicted / gold spans"),
    "IOU (macro)": Definition(
        ("iou_p_macro", "iou_r_macro", "iou_f1_macro"), ERASER,
        "iou_scores macro: P averaged over pairs with a prediction, R over pairs with gold, F1 of the two"),
    "sparsity": Definition(
        ("sparsity",), RATBENCH,
        "ratbench's: predicted tokens / document tokens, pooled over the predicted (annotation, document) "
        "pairs (needs the documents)"),
    "soft token scores": Definition(
        ("auprc", "average_precision", "roc_auc"), ERASER,
        "token_soft_metrics: per predicted pair, area under the precision-recall curve (trapezoid) averaged over "
        "all pairs (no gold token: 0.5, as with current scikit-learn); AP and ROC AUC skip pairs whose gold is "
        "all 0 or all 1"),
    "auprc (two-class pairs)": Definition(
        ("auprc_two_class",), RATBENCH,
        "ratbench's: the same AUPRC averaged over pairs whose gold has both classes only (as `ratbench run` "
        "reports auprc)"),
    "soft sentence scores": Definition(
        ("sentence_auprc", "sentence_average_precision", "sentence_roc_auc"), ERASER,
        "sentence_soft_metrics: the soft token scores' definitions on soft_sentence_predictions against the "
        "evidences' sentence ranges"),
    "accuracy": Definition(
        ("accuracy",), ERASER, "classification_scores.accuracy, over every gold annotation"),
    "class P/R/F1": Definition(
        ("class_p_macro", "class_r_macro", "class_f1_macro", "class_f1_weighted"), ERASER,
        "classification_scores.prf (scikit-learn classification_report): macro and support-weighted averages "
        "over the gold labels; per label in --format json"),
    "comprehensiveness": Definition(
        ("comprehensiveness",), ERASER, "mean of p(c|x) - p(c|x without r), c = the predicted class"),
    "sufficiency": Definition(
        ("sufficiency",), ERASER, "mean of p(c|x) - p(c|r), c = the predicted class"),
    "entropy and KL": Definition(
        ("comprehensiveness_entropy", "comprehensiveness_kl", "sufficiency_entropy", "sufficiency_kl"), ERASER,
        "mean of H(p(.|x)) - H(p(.|x without r)) (resp. r), natural log; KL(p(.|x without r) || p(.|x)) "
        "(resp. r); each distribution normalised to sum 1"),
    "AOPC (ERASER script)": Definition(
        ("comprehensiveness_aopc_eraser_script", "sufficiency_aopc_eraser_script"), ERASER,
        "what the script prints as comprehensiveness_aopc / sufficiency_aopc: sum of the bin means of "
        "`thresholded_scores` / |B|"),
    "AOPC (ratbench)": Definition(
        ("comprehensiveness_aopc", "sufficiency_aopc"), RATBENCH,
        "ratbench's: sum of the bin means / (|B| + 1), as the ERASER paper and UNIREX write it (not the number "
        "ERASER's script prints under the same name)"),
}

Key = tuple[str, str]  # (annotation_id, docid): one scored instance, as ERASER keys them


@dataclass
class Rationale:
    """One `rationales` entry of a prediction."""

    docid: str
    hard: list[tuple[int, int]] = field(default_factory=list)
    soft: list[float] | None = None
    soft_sentences: list[float] | None = None


@dataclass
class Prediction:
    line: int
    row: dict[str, Any]
    rationales: list[Rationale]


@dataclass
class Gold:
    """The gold annotations, keyed by (annotation_id, docid)."""

    rows: dict[str, dict[str, Any]]
    tokens: dict[Key, list[tuple[int, int]]]
    sentences: dict[Key, list[tuple[int, int]]]


def _read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
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
            rows.append((number, obj))
    return rows


def _docs_source(gold_path: Path, docs: Path | None) -> Path | None:
    if docs is not None:
        if not docs.exists():
            raise RatbenchError(f"The documents path {docs} does not exist; pass ERASER's docs/ folder or "
                                "docs.jsonl.")
        return docs
    folder, single = gold_path.parent / "docs", gold_path.parent / "docs.jsonl"
    if folder.is_dir() and single.is_file():
        raise RatbenchError(f"Both {folder} and {single} exist beside {gold_path}; pass --docs with the one to use.")
    return single if single.is_file() else folder if folder.is_dir() else None


def load_documents(gold_path: Path, docs: Path | None, docids: set[str]) -> tuple[dict[str, list[list[str]]],
                                                                                  bool]:
    """The documents as sentences of tokens, tokenised as ERASER's utilities do, and whether a source was found.

    `docs/<docid>`: non-empty lines, split on single spaces, empty tokens dropped. `docs.jsonl`: the document
    split on newlines, each line stripped and split on single spaces, empty strings kept (so a double space
    or an empty line is a token there). Token offsets index the concatenated sentences. Missing docids are
    left out; the caller then takes a document's length from its soft scores."""
    source = _docs_source(gold_path, docs)
    out: dict[str, list[list[str]]] = {}
    if source is None:
        return out, False
    if source.is_dir():
        for docid in sorted(docids):
            path = source / docid
            if path.is_file():
                lines = [ln.strip() for ln in path.read_text(encoding="utf-8").split("\n")]
                out[docid] = [[t for t in ln.split(" ") if t] for ln in lines if ln]
        return out, True
    for number, row in _read_jsonl(source, "documents"):
        if "docid" not in row or not isinstance(row.get("document"), str):
            raise DataFormatError(source, "a line lacks docid or a string document.", line=number,
                                  fix='docs.jsonl holds {"docid": ..., "document": "sentence\\nsentence"} lines.')
        docid = str(row["docid"])
        if docid in docids:
            out[docid] = [ln.strip().split(" ") for ln in row["document"].split("\n")]
    return out, True


def _span(obj: Any, path: Path, where: str, first: str = "start_token", last: str = "end_token") -> tuple[int, int]:
    try:
        start, end = int(obj[first]), int(obj[last])
    except (KeyError, TypeError, ValueError):
        raise DataFormatError(path, f"{where}: a span without integer {first}/{last}.",
                              fix=f"Write spans as {{\"{first}\": s, \"{last}\": e}} (end exclusive).") from None
    if start < 0 or end < start:
        raise DataFormatError(path, f"{where}: span [{start}, {end}) is not a valid range.",
                              fix=f"{first} must be >= 0 and {last} >= {first} (end exclusive).")
    return start, end


def load_gold(path: Path) -> Gold:
    rows: dict[str, dict[str, Any]] = {}
    tokens: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    sentences: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    for number, row in _read_jsonl(path, "gold annotation"):
        if "annotation_id" not in row or not isinstance(row.get("evidences"), list):
            raise DataFormatError(path, "an annotation lacks annotation_id or an evidences list.", line=number,
                                  fix="Pass an ERASER annotation file such as test.jsonl.")
        ann_id = str(row["annotation_id"])
        if ann_id in rows:
            raise DataFormatError(path, f"annotation_id {ann_id!r} appears a second time.", line=number,
                                  fix="Each annotation_id may appear once in a split.")
        rows[ann_id] = row
        for group in row["evidences"]:
            for ev in group if isinstance(group, list) else [group]:
                if not isinstance(ev, dict) or "docid" not in ev:
                    raise DataFormatError(path, f"annotation {ann_id!r}: an evidence without docid.", line=number,
                                          fix="Evidences are {docid, start_token, end_token, ...} objects.")
                key = (ann_id, str(ev["docid"]))
                tokens[key].append(_span(ev, path, f"line {number}, annotation {ann_id!r}"))
                # ERASER's Evidence defaults absent sentence offsets to -1, which selects no sentence
                first = ev.get("start_sentence")
                if isinstance(first, int) and first >= 0:
                    sentences[key].append(_span(ev, path, f"line {number}, annotation {ann_id!r}",
                                                "start_sentence", "end_sentence"))
    return Gold(rows, dict(tokens), dict(sentences))


def _scores(value: Any, path: Path, line: int, what: str) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise DataFormatError(path, f"{what} is not a list of numbers.", line=line,
                              fix="Give one number per token (per sentence for soft_sentence_predictions).")
    return [float(v) for v in value]


def load_predictions(path: Path, rows: list[tuple[int, dict[str, Any]]], gold: Gold,
                     documents: dict[str, list[list[str]]]) -> list[Prediction]:
    """Parse and check the predictions (`_read_jsonl` rows) as ERASER's `verify_instances` does, with line
    numbers in the errors."""
    preds: list[Prediction] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        if "annotation_id" not in row:
            raise DataFormatError(path, "a prediction lacks annotation_id.", line=number,
                                  fix="Every prediction needs the annotation_id of its gold annotation.")
        ann_id = str(row["annotation_id"])
        if ann_id in seen:
            raise DataFormatError(path, f"annotation_id {ann_id!r} is predicted a second time (first on line "
                                  f"{seen[ann_id]}).", line=number, fix="Give one prediction per annotation.")
        seen[ann_id] = number
        rats: list[Rationale] = []
        for rat in row.get("rationales") or []:
            if not isinstance(rat, dict) or "docid" not in rat:
                raise DataFormatError(path, f"prediction {ann_id!r}: a rationales entry without docid.",
                                      line=number, fix="Each rationales entry is {docid, hard_rationale_"
                                      "predictions, soft_rationale_predictions}.")
            docid = str(rat["docid"])
            if any(r.docid == docid for r in rats):
                raise DataFormatError(path, f"prediction {ann_id!r}: document {docid!r} has two rationales entries.",
                                      line=number, fix="Put all spans of one document in one entry.")
            where = f"prediction {ann_id!r}, document {docid!r}"
            hard = [_span(s, path, f"line {number}, {where}") for s in rat.get("hard_rationale_predictions") or []]
            sentences = documents.get(docid)
            length = None if sentences is None else sum(map(len, sentences))
            if length is not None and hard and max(e for _, e in hard) > length:
                s, e = max(hard, key=lambda x: x[1])
                raise DataFormatError(path, f"{where}: span [{s}, {e}) ends beyond the document's {length} "
                                      "tokens.", line=number,
                                      fix="Token offsets index the flattened document (end exclusive).")
            # identical spans are one span (as in ERASER); sorted, any overlap shows against the furthest reach
            reach: tuple[int, int] | None = None
            for a in sorted({x for x in hard if x[0] < x[1]}):
                if reach is not None and a[0] < reach[1]:
                    raise DataFormatError(path, f"{where}: predicted spans {list(reach)} and {list(a)} overlap.",
                                          line=number, fix="ERASER requires non-overlapping "
                                          "hard_rationale_predictions; merge them into one span.")
                if reach is None or a[1] > reach[1]:
                    reach = a
            soft = rat.get("soft_rationale_predictions")
            soft = None if soft is None else _scores(soft, path, number, f"{where}: soft_rationale_predictions")
            if soft is not None and length is not None and len(soft) != length:
                raise DataFormatError(path, f"prediction {ann_id!r}: {len(soft)} soft scores for document "
                                      f"{docid!r} of {length} tokens.", line=number,
                                      fix="Give one soft_rationale_predictions score per document token.")
            sent = rat.get("soft_sentence_predictions")
            sent = None if sent is None else _scores(sent, path, number, f"{where}: soft_sentence_predictions")
            if sent is not None and sentences is not None and len(sent) != len(sentences):
                raise DataFormatError(path, f"prediction {ann_id!r}: {len(sent)} sentence scores for document "
                                      f"{docid!r} of {len(sentences)} sentences.", line=number,
                                      fix="Give one soft_sentence_predictions score per document sentence.")
            rats.append(Rationale(docid, hard, soft, sent))
        preds.append(Prediction(number, row, rats))
    unknown = [p for p in preds if str(p.row["annotation_id"]) not in gold.rows]
    if unknown:
        raise RatbenchError(f"{len(unknown)} prediction(s) in {path} have no gold annotation (e.g. "
                            f"{unknown[0].row['annotation_id']!r} on line {unknown[0].line}); check that both files "
                            "are the same split.")
    _check_all_or_none(path, preds)
    return preds


def _check_all_or_none(path: Path, preds: list[Prediction]) -> None:
    """ERASER's scorer rejects a file where an optional field is given for some predictions only."""
    def report(name: str, has: list[bool], lines: list[int]) -> None:
        if any(has) and not all(has):
            yes, no = lines[has.index(True)], lines[has.index(False)]
            raise DataFormatError(path, f"{name} is missing here but given on line {yes}.", line=no,
                                  fix=f"Give {name} for every prediction or for none.")

    lines = [p.line for p in preds]
    for name in ("classification", "classification_scores", "comprehensiveness_classification_scores",
                 "sufficiency_classification_scores", "thresholded_scores"):
        report(name, [p.row.get(name) is not None for p in preds], lines)
    rats = [(p.line, r) for p in preds for r in p.rationales]
    report("soft_rationale_predictions", [r.soft is not None for _, r in rats], [n for n, _ in rats])
    report("soft_sentence_predictions", [r.soft_sentences is not None for _, r in rats], [n for n, _ in rats])
    for p in preds:
        needs = [k for k in ("classification_scores", "comprehensiveness_classification_scores",
                             "sufficiency_classification_scores", "thresholded_scores") if p.row.get(k) is not None]
        if needs and p.row.get("classification") is None:
            raise DataFormatError(path, f"{needs[0]} is given without a classification.", line=p.line,
                                  fix="Faithfulness scores are read at the predicted class: give `classification`.")


def _distribution(pred: Prediction, path: Path, name: str, where: dict | None = None) -> dict[str, float]:
    value = (pred.row if where is None else where).get(name)
    if not isinstance(value, dict) or not all(isinstance(v, int | float) for v in value.values()):
        raise DataFormatError(path, f"{name} is not an object of class -> probability.", line=pred.line,
                              fix='Write it as {"LABEL": p, ...} with every class label.')
    cls = pred.row["classification"]
    if cls not in value:
        raise DataFormatError(path, f"{name} has no entry for the predicted class {cls!r}.", line=pred.line,
                              fix="Give a probability for every class label, the predicted one included.")
    return {str(k): float(v) for k, v in value.items()}


def _entropy(p: list[float]) -> float:
    """Shannon entropy (natural log) of p normalised to sum 1, 0 log 0 = 0."""
    a = np.asarray(p, np.float64)
    a = a / a.sum()
    nz = a[a > 0]
    return float(-(nz * np.log(nz)).sum())


def _kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) of the two normalised distributions; inf where p > 0 and q = 0."""
    a, b = np.asarray(p, np.float64), np.asarray(q, np.float64)
    a, b = a / a.sum(), b / b.sum()
    total = 0.0
    for x, y in zip(a, b):
        if x > 0:
            total += x * math.log(x / y) if y > 0 else math.inf
    return total


def _class_report(truth: list[str], predicted: list[str], labels: list[str]) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support, with macro and support-weighted averages (a ratio with a
    zero denominator is 0, as scikit-learn reports it)."""
    report: dict[str, Any] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        n_pred, support = predicted.count(label), truth.count(label)
        prec, rec = (tp / n_pred if n_pred else 0.0), (tp / support if support else 0.0)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        report[label] = {"precision": prec, "recall": rec, "f1-score": f1, "support": support}
    rows = [report[label] for label in labels]
    total = sum(r["support"] for r in rows)
    for name, weights in (("macro avg", [1.0] * len(rows)), ("weighted avg", [r["support"] for r in rows])):
        norm = sum(weights)
        report[name] = {m: sum(w * r[m] for w, r in zip(weights, rows)) / norm
                        for m in ("precision", "recall", "f1-score")}
        report[name]["support"] = total
    return report


def _classification(preds: list[Prediction], gold: Gold, path: Path, gold_path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_id = {str(p.row["annotation_id"]): p for p in preds}
    missing = [a for a in gold.rows if a not in by_id]
    if missing:
        raise RatbenchError(f"{len(missing)} gold annotation(s) in {gold_path} have no prediction in {path} (e.g. "
                            f"{missing[0]!r}); ERASER's scorer needs a classification for every annotation of the "
                            "split. Predict them all, or pass a --gold file with only the predicted annotations.")
    truth = []
    for ann_id, row in gold.rows.items():
        if not isinstance(row.get("classification"), str):
            raise DataFormatError(gold_path, f"annotation {ann_id!r} has no string classification.",
                                  fix="Score classifications against a split that has gold labels.")
        truth.append(row["classification"])
    labels = sorted(set(truth))
    predicted = []
    for ann_id in gold.rows:
        pred = by_id[ann_id]
        cls = pred.row["classification"]
        if not isinstance(cls, str) or cls not in labels:
            raise DataFormatError(path, f"classification {cls!r} is not one of the gold labels {labels}.",
                                  line=pred.line, fix="Use the gold file's label strings.")
        predicted.append(cls)
    out["accuracy"] = float(np.mean([t == p for t, p in zip(truth, predicted)]))
    report = _class_report(truth, predicted, labels)
    out["classification_report"] = report
    out.update(class_p_macro=report["macro avg"]["precision"], class_r_macro=report["macro avg"]["recall"],
               class_f1_macro=report["macro avg"]["f1-score"], class_f1_weighted=report["weighted avg"]["f1-score"])

    # faithfulness runs over the predictions (ERASER's `instances`), c = the predicted class
    full = [_distribution(p, path, "classification_scores") for p in preds]
    for name, key in (("comprehensiveness", "comprehensiveness_classification_scores"),
                      ("sufficiency", "sufficiency_classification_scores")):
        if preds[0].row.get(key) is None:
            continue
        deltas, entropies, kls = [], [], []
        for p, f in zip(preds, full):
            other = _distribution(p, path, key)
            cls = p.row["classification"]
            deltas.append(f[cls] - other[cls])
            entropies.append(_entropy(list(f.values())) - _entropy(list(other.values())))
            absent = [k for k in f if k not in other]
            if absent:
                raise DataFormatError(path, f"{key} has no entry for class {absent[0]!r}.", line=p.line,
                                      fix="Give the same class labels as classification_scores.")
            kls.append(_kl([other[k] for k in f], list(f.values())))
        out[name] = float(np.mean(deltas))
        out[f"{name}_entropy"] = float(np.mean(entropies))
        out[f"{name}_kl"] = float(np.mean(kls))
    if preds[0].row.get("thresholded_scores") is not None:
        out.update(_aopc(preds, full, path))
    return out


def _aopc(preds: list[Prediction], full: list[dict[str, float]], path: Path) -> dict[str, Any]:
    bins: dict[float, tuple[list[float], list[float]]] = {}
    first: list[float] | None = None
    for p, f in zip(preds, full):
        entries = p.row["thresholded_scores"]
        if not isinstance(entries, list) or not all(isinstance(t, dict) and "threshold" in t for t in entries):
            raise DataFormatError(path, "thresholded_scores is not a list of {threshold, ...} objects.", line=p.line,
                                  fix="Write one {threshold, comprehensiveness_classification_scores, "
                                  "sufficiency_classification_scores} object per AOPC bin.")
        thresholds = sorted(float(t["threshold"]) for t in entries)
        if len(set(thresholds)) != len(thresholds):
            raise DataFormatError(path, "thresholded_scores gives a threshold twice.", line=p.line,
                                  fix="Give each AOPC bin once.")
        if first is None:
            first = thresholds
        elif thresholds != first:
            raise DataFormatError(path, f"thresholded_scores has the bins {thresholds}, the first prediction "
                                  f"{first}.", line=p.line, fix="Give every prediction the same AOPC bins.")
        cls = p.row["classification"]
        for t in entries:
            comp = _distribution(p, path, "comprehensiveness_classification_scores", t)
            suff = _distribution(p, path, "sufficiency_classification_scores", t)
            lists = bins.setdefault(float(t["threshold"]), ([], []))
            lists[0].append(f[cls] - comp[cls])
            lists[1].append(f[cls] - suff[cls])
    out: dict[str, Any] = {"aopc_bins": sorted(bins)}
    for j, name in enumerate(("comprehensiveness", "sufficiency")):
        per_bin = {k: np.asarray(v[j]) for k, v in sorted(bins.items())}
        a = aopc(per_bin)
        out[f"{name}_aopc"] = a["aopc"]
        out[f"{name}_aopc_eraser_script"] = a["aopc_eraser_script"]
        out[f"{name}_aopc_points"] = [float(v.mean()) for v in per_bin.values()]
    if sorted(bins) != list(AOPC_BINS):
        out["aopc_note"] = (f"bins {sorted(bins)} differ from ERASER's default --aopc_thresholds "
                            f"{list(AOPC_BINS)}; the *_aopc_eraser_script values are what its script prints when run "
                            f"with --aopc_thresholds {' '.join(map(str, sorted(bins)))}")
    return out


def _gold_within(key: Key, spans: dict[Key, list[tuple[int, int]]], length: int, gold_path: Path,
                 unit: str) -> None:
    for start, end in spans.get(key, []):
        if end > length:
            raise DataFormatError(gold_path, f"annotation {key[0]!r}: evidence [{start}, {end}) ends beyond document "
                                  f"{key[1]!r} of {length} {unit}.", fix="Check that --docs holds this split's "
                                  "documents; offsets index the flattened document (end exclusive).")


def score(predictions: Path, gold: Path, docs: Path | None = None, iou_threshold: float = 0.5) -> dict[str, Any]:
    """Every number of `DEFINITIONS` that the files allow, plus counts; a user error raises RatbenchError."""
    predictions, gold_path = Path(predictions), Path(gold)
    g = load_gold(gold_path)
    rows = _read_jsonl(predictions, "predictions")
    docids = {d for _, d in g.tokens}
    pred_docids = {str(rat["docid"]) for _, row in rows for rat in row.get("rationales") or []
                   if isinstance(rat, dict) and "docid" in rat}
    documents, found = load_documents(gold_path, Path(docs) if docs else None, docids | pred_docids)
    preds = load_predictions(predictions, rows, g, documents)
    if not preds:
        raise RatbenchError(f"No predictions to score in {predictions}.")

    predicted_ids = {str(p.row["annotation_id"]) for p in preds}
    entries = [((str(p.row["annotation_id"]), r.docid), r) for p in preds for r in p.rationales]
    out: dict[str, Any] = {
        "n_predictions": len(preds), "n_annotations": len(g.rows),
        "n_unpredicted": sum(a not in predicted_ids for a in g.rows),
        "n_instances": len(set(g.tokens) | {k for k, _ in entries}),
        "iou_threshold": iou_threshold, "documents_found": found,
    }
    if found:
        out["n_documents_missing"] = len((docids | pred_docids) - set(documents))

    hard = {k: r.hard for k, r in entries if r.hard}
    if hard:  # ERASER skips rationale scoring when there is no hard prediction
        for prefix, m in (("token", token_prf_spans(hard, g.tokens)), ("rationale", span_prf(hard, g.tokens)),
                          ("iou", iou_f1_spans(hard, g.tokens, iou_threshold))):
            out.update({f"{prefix}_p": m["P"], f"{prefix}_r": m["R"], f"{prefix}_f1": m["F1"],
                        f"{prefix}_p_macro": m["P_macro"], f"{prefix}_r_macro": m["R_macro"],
                        f"{prefix}_f1_macro": m["F1_macro"]})
    lengths = {d: sum(map(len, s)) for d, s in documents.items()}
    if entries and all(r.docid in lengths for _, r in entries):
        selected = sum(len({t for s, e in r.hard for t in range(s, e)}) for _, r in entries)
        out["sparsity"] = selected / max(1, sum(lengths[r.docid] for _, r in entries))

    soft = {k: r.soft for k, r in entries if r.soft is not None}
    if soft:
        for k, s in soft.items():
            _gold_within(k, g.tokens, len(s), gold_path, "tokens")
        m = auprc_spans(soft, g.tokens)
        out.update(auprc=m["auprc"], average_precision=m["average_precision"], roc_auc=m["roc_auc"],
                   auprc_two_class=m["auprc_two_class"])
    sent = {k: r.soft_sentences for k, r in entries if r.soft_sentences is not None}
    if sent:
        for k, s in sent.items():
            _gold_within(k, g.sentences, len(s), gold_path, "sentences")
        m = auprc_spans(sent, g.sentences)
        out.update(sentence_auprc=m["auprc"], sentence_average_precision=m["average_precision"],
                   sentence_roc_auc=m["roc_auc"])
    if preds[0].row.get("classification") is not None:
        out.update(_classification(preds, g, predictions, gold_path))
    return out
