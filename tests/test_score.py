"""`ratbench score` on a hand-made ERASER-format split: every number computed by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app

runner = CliRunner()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def split(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d1").write_text("a b c d e\nf g h i j\n")  # 10 tokens
    (tmp_path / "docs" / "d2").write_text("k l m n o\n")  # 5 tokens
    gold = _jsonl(tmp_path / "test.jsonl", [
        {"annotation_id": "a1", "classification": "POS", "query": "", "query_type": None,
         "evidences": [[{"docid": "d1", "start_token": 2, "end_token": 5, "start_sentence": 0,
                         "end_sentence": 1, "text": "c d e"}]]},
        {"annotation_id": "a2", "classification": "NEG", "query": "", "query_type": None,
         "evidences": [[{"docid": "d2", "start_token": 0, "end_token": 2, "start_sentence": 0,
                         "end_sentence": 1, "text": "k l"}]]},
    ])

    def thresholded(c01, s01, c50, s50):
        return [{"threshold": 0.01, "comprehensiveness_classification_scores": {"POS": c01},
                 "sufficiency_classification_scores": {"POS": s01}},
                {"threshold": 0.5, "comprehensiveness_classification_scores": {"POS": c50},
                 "sufficiency_classification_scores": {"POS": s50}}]

    preds = _jsonl(tmp_path / "preds.jsonl", [
        {"annotation_id": "a1", "classification": "POS",
         "rationales": [{"docid": "d1", "hard_rationale_predictions": [{"start_token": 2, "end_token": 4}],
                         "soft_rationale_predictions": [0, 0, 0.9, 0.8, 0.1, 0, 0, 0, 0, 0]}],
         "classification_scores": {"POS": 0.9, "NEG": 0.1},
         "comprehensiveness_classification_scores": {"POS": 0.3, "NEG": 0.7},
         "sufficiency_classification_scores": {"POS": 0.8, "NEG": 0.2},
         "thresholded_scores": thresholded(0.85, 0.5, 0.2, 0.88)},
        {"annotation_id": "a2", "classification": "POS",
         "rationales": [{"docid": "d2", "hard_rationale_predictions": [{"start_token": 0, "end_token": 2},
                                                                      {"start_token": 3, "end_token": 4}],
                         "soft_rationale_predictions": [0.7, 0.4, 0.1, 0.5, 0.0]}],
         "classification_scores": {"POS": 0.6, "NEG": 0.4},
         "comprehensiveness_classification_scores": {"POS": 0.5, "NEG": 0.5},
         "sufficiency_classification_scores": {"POS": 0.4, "NEG": 0.6},
         "thresholded_scores": thresholded(0.55, 0.3, 0.1, 0.58)},
    ])
    return preds, gold


def test_scores_by_hand(split):
    preds, gold = split
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    expected = {
        # a1: selected {2,3} vs gold {2,3,4}; a2: selected {0,1,3} vs gold {0,1}
        "token_p": 4 / 5, "token_r": 4 / 5, "token_f1": 0.8,
        "token_p_macro": (1 + 2 / 3) / 2, "token_r_macro": (2 / 3 + 1) / 2, "token_f1_macro": 0.8,
        "sparsity": 5 / 15,
        # spans: [2,4) vs [2,5) IOU 2/3 matches; [0,2) matches; [3,4) does not -> P 2/3, R 2/2
        "iou_p": 2 / 3, "iou_r": 1.0, "iou_f1": 0.8,
        # a1: all gold ranked first -> 1; a2: 0.5 + 0.5 * (1 + 0.5) / 2 ... see the trapezoid in the docstring
        "auprc": (1.0 + (0.5 + 0.5 * (0.5 + 2 / 3) / 2)) / 2,
        "accuracy": 0.5,
        "comprehensiveness": ((0.9 - 0.3) + (0.6 - 0.5)) / 2,
        "sufficiency": ((0.9 - 0.8) + (0.6 - 0.4)) / 2,
        # bins 1 %: comp (.05, .05), suff (.4, .3); 50 %: comp (.7, .5), suff (.02, .02)
        "comprehensiveness_aopc": (0.05 + 0.6) / 3, "comprehensiveness_aopc_eraser_script": (0.05 + 0.6) / 2,
        "sufficiency_aopc": (0.35 + 0.02) / 3, "sufficiency_aopc_eraser_script": (0.35 + 0.02) / 2,
    }
    for key, value in expected.items():
        assert out[key] == pytest.approx(value), key
    assert "differ from ERASER's default" in out["aopc_note"]


def test_table_output_names_the_definitions(split):
    preds, gold = split
    r = runner.invoke(app, ["score", "--predictions", str(preds), "--gold", str(gold)])
    assert r.exit_code == 0, r.output
    assert "iou_f1" in r.output and "IOU >= 0.5" in r.output and "comprehensiveness" in r.output


def test_bad_prediction_files_name_the_line(split, tmp_path):
    preds, gold = split
    bad = tmp_path / "bad.jsonl"
    bad.write_text(preds.read_text().splitlines()[0] + "\n{not json\n")
    r = runner.invoke(app, ["score", "--predictions", str(bad), "--gold", str(gold)])
    assert r.exit_code == 1 and f"{bad}, line 2" in r.output and "Traceback" not in r.output
    wrong_len = tmp_path / "len.jsonl"
    row = json.loads(preds.read_text().splitlines()[1])
    row["rationales"][0]["soft_rationale_predictions"] = [0.1, 0.2]
    _jsonl(wrong_len, [row])
    r = runner.invoke(app, ["score", "--predictions", str(wrong_len), "--gold", str(gold)])
    assert r.exit_code == 1 and "2 soft scores for document 'd2' of 5 tokens" in r.output
    stray = _jsonl(tmp_path / "stray.jsonl", [{"annotation_id": "zz", "rationales": []}])
    r = runner.invoke(app, ["score", "--predictions", str(stray), "--gold", str(gold)])
    assert r.exit_code == 1 and "no gold annotation" in r.output
