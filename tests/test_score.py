"""`ratbench score` on ERASER-format splits written here: hand-computed cases, and fixtures with touching,
overlapping and duplicated evidence, several annotations per document and several documents per annotation,
checked against the numbers ERASER's own scoring script printed on the same files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.metrics.plausibility import auprc_spans, iou_f1, iou_f1_spans, span_prf, token_prf_spans

runner = CliRunner()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _ev(docid: str, start: int, end: int, sentence: tuple[int, int] = (0, 1)) -> dict:
    return {"docid": docid, "start_token": start, "end_token": end, "start_sentence": sentence[0],
            "end_sentence": sentence[1], "text": ""}


def _ann(ann_id: str, label: str, groups: list[list[dict]], docids: list[str] | None = None) -> dict:
    return {"annotation_id": ann_id, "classification": label, "evidences": groups, "query": "", "query_type": None,
            "docids": docids}


def _rat(docid: str, hard: list[tuple[int, int]], soft: list[float] | None = None,
         sentences: list[float] | None = None) -> dict:
    out: dict = {"docid": docid, "hard_rationale_predictions": [{"start_token": s, "end_token": e} for s, e in hard]}
    if soft is not None:
        out["soft_rationale_predictions"] = soft
    if sentences is not None:
        out["soft_sentence_predictions"] = sentences
    return out


def _score(preds: Path, gold: Path, *extra: str) -> dict:
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold), "--format", "json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _assert_close(out: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(out[key]), key
        else:
            assert out[key] == pytest.approx(value, abs=1e-6), key


# --- a hand-computed split ------------------------------------------------------------------------------------

def write_hand_split(root: Path) -> tuple[Path, Path]:
    (root / "docs").mkdir()
    (root / "docs" / "d1").write_text("a b c d e\nf g h i j\n")  # 10 tokens
    (root / "docs" / "d2").write_text("k l m n o\n")  # 5 tokens
    gold = _jsonl(root / "test.jsonl", [
        _ann("a1", "POS", [[_ev("d1", 2, 5)]]),
        _ann("a2", "NEG", [[_ev("d2", 0, 2)]]),
    ])

    def thresholded(c01, s01, c50, s50):
        return [{"threshold": 0.01, "comprehensiveness_classification_scores": {"POS": c01},
                 "sufficiency_classification_scores": {"POS": s01}},
                {"threshold": 0.5, "comprehensiveness_classification_scores": {"POS": c50},
                 "sufficiency_classification_scores": {"POS": s50}}]

    preds = _jsonl(root / "preds.jsonl", [
        {"annotation_id": "a1", "classification": "POS",
         "rationales": [_rat("d1", [(2, 4)], [0, 0, 0.9, 0.8, 0.1, 0, 0, 0, 0, 0])],
         "classification_scores": {"POS": 0.9, "NEG": 0.1},
         "comprehensiveness_classification_scores": {"POS": 0.3, "NEG": 0.7},
         "sufficiency_classification_scores": {"POS": 0.8, "NEG": 0.2},
         "thresholded_scores": thresholded(0.85, 0.5, 0.2, 0.88)},
        {"annotation_id": "a2", "classification": "POS",
         "rationales": [_rat("d2", [(0, 2), (3, 4)], [0.7, 0.4, 0.1, 0.5, 0.0])],
         "classification_scores": {"POS": 0.6, "NEG": 0.4},
         "comprehensiveness_classification_scores": {"POS": 0.5, "NEG": 0.5},
         "sufficiency_classification_scores": {"POS": 0.4, "NEG": 0.6},
         "thresholded_scores": thresholded(0.55, 0.3, 0.1, 0.58)},
    ])
    return preds, gold


@pytest.fixture
def split(tmp_path) -> tuple[Path, Path]:
    return write_hand_split(tmp_path)


def test_scores_by_hand(split):
    out = _score(*split)
    h = lambda p: -p * math.log(p)  # noqa: E731  (entropy term, natural log)
    expected = {
        # a1: selected {2,3} vs gold {2,3,4}; a2: selected {0,1,3} vs gold {0,1}
        "token_p": 4 / 5, "token_r": 4 / 5, "token_f1": 0.8,
        "token_p_macro": (1 + 2 / 3) / 2, "token_r_macro": (2 / 3 + 1) / 2, "token_f1_macro": 0.8,
        # exact span matches: only [0,2) of a2 -> P 1/3, R 1/2; per pair a1 (0, 0, 0), a2 (1/2, 1, 2/3)
        "rationale_p": 1 / 3, "rationale_r": 1 / 2, "rationale_f1": 0.4,
        "rationale_p_macro": 1 / 4, "rationale_r_macro": 1 / 2, "rationale_f1_macro": 1 / 3,
        "sparsity": 5 / 15,
        # spans: [2,4) vs [2,5) IOU 2/3 matches; [0,2) matches; [3,4) does not -> P 2/3, R 2/2
        "iou_p": 2 / 3, "iou_r": 1.0, "iou_f1": 0.8,
        "iou_p_macro": (1 + 1 / 2) / 2, "iou_r_macro": 1.0, "iou_f1_macro": 2 * 0.75 / 1.75,
        # a1: all gold ranked first -> 1. a2 (gold {0,1}): thresholds .7, .5, .4 give (R, P) = (1/2, 1),
        # (1/2, 1/2), (1, 2/3): trapezoid from (0, 1): 1/2 * 1 + 0 + 1/2 * (1/2 + 2/3) / 2
        "auprc": (1.0 + (0.5 + 0.5 * (0.5 + 2 / 3) / 2)) / 2,
        # AP a2 = 1/2 * 1 + 1/2 * 2/3; ROC a2: gold scores .7, .4 vs others .5, .1, 0: 5 of 6 pairs ordered
        "average_precision": (1 + (0.5 + 1 / 3)) / 2, "roc_auc": (1 + 5 / 6) / 2,
        "accuracy": 0.5,
        # gold POS {a1}, NEG {a2}; both predicted POS: POS P 1/2 R 1 F1 2/3, NEG 0 0 0
        "class_p_macro": 0.25, "class_r_macro": 0.5, "class_f1_macro": 1 / 3, "class_f1_weighted": 1 / 3,
        "comprehensiveness": ((0.9 - 0.3) + (0.6 - 0.5)) / 2,
        "sufficiency": ((0.9 - 0.8) + (0.6 - 0.4)) / 2,
        "comprehensiveness_entropy": ((h(.9) + h(.1) - h(.3) - h(.7)) + (h(.6) + h(.4) - 2 * h(.5))) / 2,
        "comprehensiveness_kl": ((.3 * math.log(.3 / .9) + .7 * math.log(.7 / .1))
                                 + (.5 * math.log(.5 / .6) + .5 * math.log(.5 / .4))) / 2,
        # bins 1 %: comp (.05, .05), suff (.4, .3); 50 %: comp (.7, .5), suff (.02, .02)
        "comprehensiveness_aopc": (0.05 + 0.6) / 3, "comprehensiveness_aopc_eraser_script": (0.05 + 0.6) / 2,
        "sufficiency_aopc": (0.35 + 0.02) / 3, "sufficiency_aopc_eraser_script": (0.35 + 0.02) / 2,
    }
    _assert_close(out, expected)
    assert out["comprehensiveness_aopc_points"] == pytest.approx([0.05, 0.6])
    assert out["classification_report"]["POS"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})
    assert "differ from ERASER's default" in out["aopc_note"]


def test_touching_gold_evidences_are_matched_one_by_one(tmp_path):
    """Three touching evidences [0,2) [2,4) [4,6) and a prediction [0,6): a mask would merge the gold into one
    span [0,6) (IOU 1, a match); as given, each IOU is 2/6 < 0.5, so nothing matches. The second prediction
    [7,8) against gold [7,9) has IOU 1/2 and matches; a second annotation on the same document keeps its own
    gold ([6,7)) and its prediction [6,7) matches exactly."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d").write_text("a b c d e f g h i j\n")
    gold = _jsonl(tmp_path / "test.jsonl", [
        _ann("q1", "POS", [[_ev("d", 0, 2)], [_ev("d", 2, 4)], [_ev("d", 4, 6), _ev("d", 7, 9)]]),
        _ann("q2", "POS", [[_ev("d", 6, 7)]]),
    ])
    preds = _jsonl(tmp_path / "preds.jsonl", [
        {"annotation_id": "q1", "rationales": [_rat("d", [(0, 6), (7, 8)])]},
        {"annotation_id": "q2", "rationales": [_rat("d", [(6, 7)])]},
    ])
    out = _score(preds, gold)
    # q1: 2 predicted spans, 1 match; 4 gold spans. q2: 1 of 1. Micro P 2/3, R 2/5.
    # Macro P (1/2 + 1) / 2 = 3/4, R (1/4 + 1) / 2 = 5/8.
    _assert_close(out, {"iou_p": 2 / 3, "iou_r": 2 / 5, "iou_f1": 2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5),
                        "iou_p_macro": 3 / 4, "iou_r_macro": 5 / 8, "iou_f1_macro": 2 * .75 * .625 / 1.375})
    # tokens: q1 predicted {0..5, 7} vs gold {0..5, 7, 8}: 7 of 7, 7 of 8; q2 1 of 1
    _assert_close(out, {"token_p": 1.0, "token_r": 8 / 9, "token_p_macro": 1.0, "token_r_macro": (7 / 8 + 1) / 2})
    # with --iou-threshold 0.3 the three [0,6) comparisons (IOU 1/3) match too
    assert _score(preds, gold, "--iou-threshold", "0.3")["iou_p"] == pytest.approx(1.0)


# --- fixtures scored by ERASER's script --------------------------------------------------------------------------
# Expected values produced by jayded/eraserbenchmark rationale_benchmark/metrics.py at commit
# 36467f1662812cbd4fbdd66879946cd7338e08ec on these fixtures (python 3.11, scikit-learn 1.9.1, scipy 1.17.1,
# numpy 2.4.6), run as `python -m rationale_benchmark.metrics --data_dir DIR --split test --results
# DIR/preds.jsonl --iou_thresholds 0.5 0.25 --score_file scores.json`.

_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)


def _faith(label: str, full: dict, comp: dict, suff: dict, comp_bins: list[float], suff_bins: list[float],
           other: str) -> dict:
    def both(cls_p: float) -> dict:
        return {label: cls_p, other: round(1 - cls_p, 6)}

    entries = [{"threshold": t, "comprehensiveness_classification_scores": both(c),
                "sufficiency_classification_scores": both(s)} for t, c, s in zip(_BINS, comp_bins, suff_bins)]
    return {"classification": label, "classification_scores": full,
            "comprehensiveness_classification_scores": comp, "sufficiency_classification_scores": suff,
            "thresholded_scores": entries[::-1] if label == "NEG" else entries}  # order must not matter


def write_eraser_split(root: Path) -> tuple[Path, Path]:
    """docs/ folder; touching, overlapping and duplicated evidences; two annotations on one document; one
    annotation over two documents; one without evidence; a document predicted with no hard span."""
    docs = root / "docs"
    docs.mkdir()
    (docs / "d1").write_text("a b c d e f g h\ni j k l\n")  # 12 tokens, 2 sentences
    (docs / "d2").write_text("m n o p q\nr s t u v\n")  # 10 tokens
    (docs / "d3").write_text("w x y z\n\n  aa  bb cc  \n")  # 7 tokens (empty line, extra spaces dropped)
    (docs / "d4").write_text("dd ee ff gg hh\n")  # 5 tokens
    (docs / "d5").write_text("ii jj kk ll mm nn\n")  # 6 tokens
    gold = _jsonl(root / "test.jsonl", [
        _ann("adj", "POS", [[_ev("d1", 2, 4)], [_ev("d1", 4, 6)], [_ev("d1", 6, 8)], [_ev("d1", 9, 11, (1, 2))]]),
        _ann("d1:q2", "POS", [[_ev("d1", 0, 2)]], ["d1"]),
        _ann("ovl", "NEG", [[_ev("d2", 0, 3)], [_ev("d2", 1, 5)], [_ev("d2", 0, 3), _ev("d2", 7, 9, (1, 2))]]),
        _ann("two-docs", "POS", [[_ev("d3", 0, 2), _ev("d4", 1, 3)]], ["d3", "d4"]),
        _ann("noev", "NEG", [], ["d5"]),
    ])
    preds = _jsonl(root / "preds.jsonl", [
        {"annotation_id": "adj",
         "rationales": [_rat("d1", [(2, 8), (9, 10), (10, 11)],
                             [0.1, 0.2, 0.9, 0.8, 0.7, 0.7, 0.3, 0.6, 0.2, 0.5, 0.5, 0.0], [0.8, 0.4])],
         **_faith("POS", {"POS": 0.8, "NEG": 0.2}, {"POS": 0.3, "NEG": 0.7}, {"POS": 0.7, "NEG": 0.3},
                  [0.75, 0.6, 0.5, 0.4, 0.2], [0.3, 0.45, 0.55, 0.65, 0.75], "NEG")},
        {"annotation_id": "d1:q2",
         "rationales": [_rat("d1", [(0, 1), (5, 7)], [0.6, 0.6, 0.1, 0.1, 0.2, 0.9, 0.9, 0.3, 0, 0, 0, 0.1],
                             [0.3, 0.3])],
         **_faith("NEG", {"POS": 0.45, "NEG": 0.55}, {"POS": 0.5, "NEG": 0.5}, {"POS": 0.4, "NEG": 0.6},
                  [0.55, 0.5, 0.5, 0.45, 0.4], [0.5, 0.52, 0.53, 0.54, 0.55], "POS")},
        {"annotation_id": "ovl",
         "rationales": [_rat("d2", [(0, 3), (0, 3), (7, 8), (5, 6)], [0.9, 0.3, 0.8, 0.4, 0.4, 0.6, 0.1, 0.7, 0.2, 0],
                             [0.9, 0.2])],
         **_faith("NEG", {"POS": 0.1, "NEG": 0.9}, {"POS": 0.6, "NEG": 0.4}, {"POS": 0.05, "NEG": 0.95},
                  [0.85, 0.7, 0.6, 0.5, 0.3], [0.6, 0.7, 0.8, 0.85, 0.9], "POS")},
        {"annotation_id": "two-docs",
         "rationales": [_rat("d3", [(0, 2)], [0.7, 0.2, 0.6, 0.1, 0.1, 0.3, 0.0], [0.6, 0.1]),
                        _rat("d4", [], [0.1, 0.9, 0.8, 0.2, 0.1], [0.5])],
         **_faith("POS", {"POS": 0.65, "NEG": 0.35}, {"POS": 0.62, "NEG": 0.38}, {"POS": 0.5, "NEG": 0.5},
                  [0.64, 0.6, 0.58, 0.55, 0.5], [0.4, 0.45, 0.5, 0.55, 0.6], "NEG")},
        {"annotation_id": "noev",
         "rationales": [_rat("d5", [(1, 3)], [0.2, 0.8, 0.7, 0.1, 0.1, 0.0], [0.9])],
         **_faith("POS", {"POS": 0.55, "NEG": 0.45}, {"POS": 0.2, "NEG": 0.8}, {"POS": 0.6, "NEG": 0.4},
                  [0.5, 0.4, 0.3, 0.25, 0.2], [0.45, 0.5, 0.5, 0.52, 0.53], "NEG")},
    ])
    return preds, gold


def write_eraser_jsonl_split(root: Path) -> tuple[Path, Path]:
    """docs.jsonl (where a double space is an empty token); no classification; an annotation nobody predicted;
    touching and empty predicted spans; a document whose every token is gold."""
    _jsonl(root / "docs.jsonl", [
        {"docid": "x1", "document": "p q r s\nt u  v w"},  # 9 tokens: p q r s t u '' v w
        {"docid": "x2", "document": "aa bb cc dd ee"},
        {"docid": "x3", "document": "ff gg\nhh ii jj"},
    ])
    gold = _jsonl(root / "test.jsonl", [
        _ann("g1", "True", [[_ev("x1", 1, 3), _ev("x1", 3, 4)], [_ev("x1", 5, 9, (1, 2))]]),
        _ann("g2", "False", [[_ev("x2", 0, 5)]]),
        _ann("g3", "True", [[_ev("x3", 2, 4, (1, 2))]]),
        _ann("g4", "False", [[_ev("x1", 0, 1)], [_ev("x1", 0, 1)]]),
    ])
    preds = _jsonl(root / "preds.jsonl", [
        {"annotation_id": "g1",
         "rationales": [_rat("x1", [(1, 2), (2, 3), (3, 3), (5, 9)], [0.1, 0.8, 0.8, 0.3, 0.2, 0.6, 0.0, 0.5, 0.4],
                             [0.4, 0.6])]},
        {"annotation_id": "g2", "rationales": [_rat("x2", [(0, 2), (3, 5)], [0.5, 0.5, 0.5, 0.2, 0.2], [0.7])]},
        {"annotation_id": "g4", "rationales": [_rat("x1", [(0, 1)], [0.3, 0.3, 0.1, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0],
                                                    [0.2, 0.1])]},
    ])
    return preds, gold


# ERASER's script on write_eraser_split (its --iou_thresholds 0.5 entry; keys renamed to ratbench's)
ERASER_SPLIT = {
    "iou_p": 0.6, "iou_r": 0.6, "iou_f1": 0.6,
    "iou_p_macro": 0.5666666666666667, "iou_r_macro": 0.6333333333333333, "iou_f1_macro": 0.5981481481481481,
    "rationale_p": 0.2, "rationale_r": 0.2, "rationale_f1": 0.20000000000000004,
    "rationale_p_macro": 0.2222222222222222, "rationale_r_macro": 0.2222222222222222,
    "rationale_f1_macro": 0.2222222222222222,
    "token_p": 0.75, "token_r": 0.7142857142857143, "token_f1": 0.7317073170731706,
    "token_p_macro": 0.5222222222222221, "token_r_macro": 0.5119047619047619, "token_f1_macro": 0.5111111111111111,
    "auprc": 0.7262613378684807, "average_precision": 0.8328231292517007, "roc_auc": 0.881904761904762,
    "sentence_auprc": 0.875, "sentence_average_precision": 0.75, "sentence_roc_auc": 0.75,
    "accuracy": 0.6, "class_p_macro": 0.5833333333333333, "class_r_macro": 0.5833333333333333,
    "class_f1_macro": 0.5833333333333333, "class_f1_weighted": 0.6,
    "comprehensiveness": 0.28600000000000003, "sufficiency": 0.020000000000000063,
    "comprehensiveness_entropy": -0.058456007266989164, "comprehensiveness_kl": 0.31966377746603125,
    "sufficiency_entropy": 0.0001319206824442032, "sufficiency_kl": 0.020443324474423513,
    # the script's comprehensiveness_aopc / sufficiency_aopc
    "comprehensiveness_aopc_eraser_script": 0.19720000000000001, "sufficiency_aopc_eraser_script": 0.12240000000000002,
}
ERASER_SPLIT_POINTS = {
    "comprehensiveness_aopc_points": [0.03200000000000003, 0.13000000000000006, 0.19400000000000003, 0.26, 0.37],
    "sufficiency_aopc_points": [0.24000000000000005, 0.166, 0.11400000000000002, 0.06800000000000002,
                                0.02400000000000002],
}
# its --iou_thresholds 0.25 entry (every other number is the same as at 0.5)
ERASER_SPLIT_IOU_025 = {
    "iou_p": 0.7, "iou_r": 0.7, "iou_f1": 0.7,
    "iou_p_macro": 0.6333333333333333, "iou_r_macro": 0.6833333333333333, "iou_f1_macro": 0.6573839662447257,
}
# ERASER's script on write_eraser_jsonl_split (no classification fields, so no classification scores)
ERASER_JSONL_SPLIT = {
    "iou_p": 0.5714285714285714, "iou_r": 0.6666666666666666, "iou_f1": 0.6153846153846153,
    "iou_p_macro": 0.5833333333333334, "iou_r_macro": 0.5, "iou_f1_macro": 0.5384615384615384,
    "rationale_p": 0.2857142857142857, "rationale_r": 0.3333333333333333, "rationale_f1": 0.30769230769230765,
    "rationale_p_macro": 0.3125, "rationale_r_macro": 0.3333333333333333, "rationale_f1_macro": 0.32142857142857145,
    "token_p": 1.0, "token_r": 0.7333333333333333, "token_f1": 0.846153846153846,
    "token_p_macro": 0.75, "token_r_macro": 0.6642857142857143, "token_f1_macro": 0.7029914529914529,
    "auprc": 0.7109788359788359, "average_precision": 0.6507936507936508, "roc_auc": 0.8348214285714286,
    "sentence_auprc": 1.0, "sentence_average_precision": 1.0, "sentence_roc_auc": 1.0,
}
ERASER_JSONL_SPLIT_IOU_025 = {
    "iou_p": 0.8571428571428571, "iou_r": 1.0, "iou_f1": 0.923076923076923,
    "iou_p_macro": 0.9166666666666666, "iou_r_macro": 1.0, "iou_f1_macro": 0.9565217391304348,
}
# ERASER's script on write_hand_split, run with --aopc_thresholds 0.01 0.5 (the split's bins), agrees with
# every hand-computed value of test_scores_by_hand; these are the ones not spelled out there
ERASER_HAND_SPLIT = {
    "sufficiency_entropy": -0.08765972507336983, "sufficiency_kl": 0.0627480146042576,
}


def test_docs_folder_split_matches_eraser_script(tmp_path):
    preds, gold = write_eraser_split(tmp_path)
    out = _score(preds, gold)
    _assert_close(out, ERASER_SPLIT)
    for key, value in ERASER_SPLIT_POINTS.items():
        assert out[key] == pytest.approx(value, abs=1e-6), key
    _assert_close(_score(preds, gold, "--iou-threshold", "0.25"), ERASER_SPLIT_IOU_025)
    # ratbench's own numbers, from ERASER's: AOPC over |B| + 1 = 6 instead of 5; the two-class AUPRC leaves
    # out (noev, d5), which has no gold token and enters ERASER's mean of 6 pairs with 0.5; sparsity = predicted
    # tokens 8 + 3 + 5 + 2 + 0 + 2 over document tokens 12 + 12 + 10 + 7 + 5 + 6
    _assert_close(out, {
        "comprehensiveness_aopc": ERASER_SPLIT["comprehensiveness_aopc_eraser_script"] * 5 / 6,
        "sufficiency_aopc": ERASER_SPLIT["sufficiency_aopc_eraser_script"] * 5 / 6,
        "auprc_two_class": (6 * ERASER_SPLIT["auprc"] - 0.5) / 5,
        "sparsity": 20 / 52,
    })
    assert (out["n_annotations"], out["n_predictions"], out["n_unpredicted"], out["n_instances"]) == (5, 5, 0, 6)
    assert "aopc_note" not in out  # the five default bins


def test_docs_jsonl_split_matches_eraser_script(tmp_path):
    preds, gold = write_eraser_jsonl_split(tmp_path)
    out = _score(preds, gold)
    _assert_close(out, ERASER_JSONL_SPLIT)
    _assert_close(_score(preds, gold, "--iou-threshold", "0.25"), ERASER_JSONL_SPLIT_IOU_025)
    assert out["n_unpredicted"] == 1 and "accuracy" not in out and "comprehensiveness" not in out
    # tokens selected: g1 6 of 9, g2 4 of 5, g4 1 of 9 (x1 has 9 tokens: the double space is one)
    assert out["sparsity"] == pytest.approx(11 / 23)


def test_hand_split_matches_eraser_script(split):
    _assert_close(_score(*split), ERASER_HAND_SPLIT)


def test_table_output_names_the_definitions_and_sources(tmp_path):
    preds, gold = write_eraser_jsonl_split(tmp_path)
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "iou_f1_macro" in r.output and ">= the threshold (0.5)" in r.output
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in r.output.splitlines()
            if line.startswith("│")}
    assert rows["token_f1"] == rows["auprc"] == "ERASER script"
    assert rows["sparsity"] == rows["auprc_two_class"] == "ratbench"
    assert "1 gold annotation(s) have no prediction" in r.output
    (tmp_path / "hand").mkdir()
    preds, gold = write_hand_split(tmp_path / "hand")
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold)], env={"COLUMNS": "200"})
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in r.output.splitlines()
            if line.startswith("│")}
    assert rows["comprehensiveness_aopc"] == "ratbench"
    assert rows["comprehensiveness_aopc_eraser_script"] == "ERASER script"
    assert "--aopc_thresholds 0.01 0.5" in r.output


# --- the span-level metric functions ----------------------------------------------------------------------------

def test_span_functions_score_spans_as_given():
    # gold [0,4) and two touching predictions [0,2) [2,4): each IOU 2/4 = 0.5 matches, so micro R = 2 matched
    # predictions / 1 gold span = 2 (ERASER's numerator); a mask would see one predicted span and R = 1
    m = iou_f1_spans({"k": [(0, 2), (2, 4)]}, {"k": [(0, 4)]})
    assert (m["P"], m["R"]) == (1.0, 2.0)
    ones = np.ones((1, 4))
    assert (iou_f1(ones, ones, ones)["P"], iou_f1(ones, ones, ones)["R"]) == (1.0, 1.0)  # the mask form, unchanged
    # a key predicted without gold counts in the macro P (0 of 1) but not in the macro R; an empty list is no key
    m = iou_f1_spans({"a": [(0, 2)], "b": [(5, 6)], "c": []}, {"a": [(0, 2), (4, 6)], "c": []})
    assert (m["P"], m["R"], m["P_macro"], m["R_macro"]) == (0.5, 0.5, 0.5, 0.5)
    # overlapping gold [0,3) [1,5) is tokens 0..4 once; duplicated predictions count once
    t = token_prf_spans({"a": [(0, 3), (0, 3)]}, {"a": [(0, 3), (1, 5)]})
    assert (t["P"], t["R"]) == (1.0, pytest.approx(3 / 5))
    s = span_prf({"a": [(0, 3), (0, 3)]}, {"a": [(0, 3), (1, 5)], "b": [(0, 1)]})
    # micro: 1 exact of 1 predicted, of 3 gold; macro over a (1, 1/2, 2/3) and b (0, 0, 0)
    assert (s["P"], s["R"]) == (1.0, pytest.approx(1 / 3))
    assert (s["P_macro"], s["R_macro"], s["F1_macro"]) == (0.5, 0.25, pytest.approx(1 / 3))


def test_auprc_spans_by_hand():
    m = auprc_spans({"two": [0.9, 0.1, 0.5, 0.3], "none": [0.2, 0.4], "all": [0.3, 0.1]},
                    {"two": [(2, 3), (3, 4)], "all": [(0, 2)]})
    # "two", gold {2, 3}: ranked .9 (no), .5, .3 (yes), .1 (no) -> (R, P) = (0, 0), (1/2, 1/2), (1, 2/3),
    # (1, 1/2); trapezoid from (0, 1): the step down to (0, 0) has no width, then
    # 1/2 * (0 + 1/2) / 2 + 1/2 * (1/2 + 2/3) / 2 = 1/8 + 7/24 = 5/12;
    # AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12; ROC: gold .5 and .3 beat .1 only -> 2 of 4 pairs
    # "none" (no gold) scores 0.5 and "all" 1.0 in ERASER's mean; AP and ROC skip both
    assert m["auprc"] == pytest.approx((5 / 12 + 0.5 + 1.0) / 3)
    assert m["auprc_two_class"] == pytest.approx(5 / 12)
    assert m["average_precision"] == pytest.approx(7 / 12) and m["roc_auc"] == pytest.approx(0.5)
    assert (m["n_scored"], m["n_two_class"]) == (3, 1)
    with pytest.raises(ValueError, match="outside"):
        auprc_spans({"k": [0.1, 0.2]}, {"k": [(1, 3)]})


# --- errors ------------------------------------------------------------------------------------------------------

def _fails(preds: Path, gold: Path, *extra: str) -> str:
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold), *extra])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    return r.output


def test_bad_prediction_files_name_the_line(split, tmp_path):
    preds, gold = split
    bad = tmp_path / "bad.jsonl"
    bad.write_text(preds.read_text().splitlines()[0] + "\n{not json\n")
    assert f"{bad}, line 2" in _fails(bad, gold)
    rows = [json.loads(line) for line in preds.read_text().splitlines()]

    def variant(name: str, edit) -> Path:
        changed = json.loads(json.dumps(rows))
        edit(changed)
        return _jsonl(tmp_path / name, changed)

    def short_soft(r):
        r[1]["rationales"][0]["soft_rationale_predictions"] = [0.1, 0.2]

    assert "2 soft scores for document 'd2' of 5 tokens" in _fails(variant("len.jsonl", short_soft), gold)

    def overlapping(r):
        r[1]["rationales"][0]["hard_rationale_predictions"].append({"start_token": 1, "end_token": 3})

    out = _fails(variant("overlap.jsonl", overlapping), gold)
    assert "line 2" in out and "overlap" in out

    def beyond(r):
        r[1]["rationales"][0]["hard_rationale_predictions"] = [{"start_token": 4, "end_token": 6}]

    assert "beyond the document's 5 tokens" in _fails(variant("beyond.jsonl", beyond), gold)

    def twice(r):
        r.append(dict(r[0]))

    assert "line 3" in _fails(variant("twice.jsonl", twice), gold)

    def some_without_suff(r):
        del r[1]["sufficiency_classification_scores"]

    out = _fails(variant("partial.jsonl", some_without_suff), gold)
    assert "line 2" in out and "given on line 1" in out

    def other_bins(r):
        r[1]["thresholded_scores"] = r[1]["thresholded_scores"][:1]

    assert "same AOPC bins" in _fails(variant("bins.jsonl", other_bins), gold)

    def unknown_label(r):
        r[1]["classification"] = "pos"
        r[1]["classification_scores"]["pos"] = 0.5
        r[1]["comprehensiveness_classification_scores"]["pos"] = 0.5
        r[1]["sufficiency_classification_scores"]["pos"] = 0.5

    assert "not one of the gold labels" in _fails(variant("label.jsonl", unknown_label), gold)

    stray = _jsonl(tmp_path / "stray.jsonl", [{"annotation_id": "zz", "rationales": []}])
    assert "no gold annotation" in _fails(stray, gold)
    # ERASER needs a classification for every gold annotation
    assert "have no prediction" in _fails(variant("one.jsonl", lambda r: r.pop()), gold)


def test_documents_are_found_as_eraser_finds_them(tmp_path):
    preds, gold = write_eraser_jsonl_split(tmp_path)
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    rows[0]["rationales"][0]["soft_rationale_predictions"] = rows[0]["rationales"][0]["soft_rationale_predictions"][:8]
    short = _jsonl(tmp_path / "short.jsonl", rows)
    # x1 is "p q r s\nt u  v w": 9 tokens in docs.jsonl, where the double space is an (empty) token
    assert "8 soft scores for document 'x1' of 9 tokens" in _fails(short, gold)
    (tmp_path / "docs").mkdir()
    assert "pass --docs" in _fails(preds, gold)
    assert _score(preds, gold, "--docs", str(tmp_path / "docs.jsonl"))["token_r"] == pytest.approx(
        ERASER_JSONL_SPLIT["token_r"])
