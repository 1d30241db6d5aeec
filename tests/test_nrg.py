"""NRG over a report's rows (ratbench/results/nrg.py): hand-computed values on a hand-made table, the
lower-is-better flip of sufficiency, which rows enter the compared set, and the task accuracy each row brings."""

from __future__ import annotations

import pandas as pd
import pytest

from ratbench.results import aggregate
from ratbench.results.nrg import NRG_GROUPS, TASK_ACC, nrg_over

# three rows; every metric of the three desiderata (suff_aopc is lower-is-better)
TABLE = {
    "a": {"comp_aopc": 0.30, "suff_aopc": 0.05, "auprc": 0.5, "F1": 40.0, "iou_f1": 0.2, TASK_ACC: 90.0},
    "b": {"comp_aopc": 0.20, "suff_aopc": -0.05, "auprc": 0.9, "F1": 60.0, "iou_f1": 0.1, TASK_ACC: 80.0},
    "c": {"comp_aopc": 0.10, "suff_aopc": 0.15, "auprc": 0.7, "F1": 50.0, "iou_f1": 0.3, TASK_ACC: 85.0},
}
# by hand, per metric (min-max over a, b, c):
#   comp_aopc (higher better): a 1, b 1/2, c 0
#   suff_aopc (lower better):  (max - v) / (max - min) = (0.15 - v) / 0.2 -> a 1/2, b 1, c 0
#   faithfulness: a 3/4, b 3/4, c 0
#   auprc: a 0, b 1, c 1/2;  F1: a 0, b 1, c 1/2;  iou_f1: a 1/2, b 0, c 1
#   plausibility: a 1/6, b 2/3, c 2/3
#   task: a 1, b 0, c 1/2
#   nrg: a (3/4 + 1/6 + 1)/3 = 23/36, b (3/4 + 2/3 + 0)/3 = 17/36, c (0 + 2/3 + 1/2)/3 = 14/36
EXPECTED = {"a": 23 / 36, "b": 17 / 36, "c": 14 / 36}


def test_nrg_of_a_hand_made_table():
    out = nrg_over(TABLE)
    assert out.compared == ["a", "b", "c"] and out.excluded == {}
    for row, value in EXPECTED.items():
        assert out.scores[row]["nrg"] == pytest.approx(value), row
    assert out.scores["a"]["nrg_faithfulness"] == pytest.approx(3 / 4)
    assert out.scores["c"]["nrg_faithfulness"] == pytest.approx(0.0)
    assert out.scores["b"]["nrg_plausibility"] == pytest.approx(2 / 3)
    assert out.scores["c"]["nrg_task"] == pytest.approx(1 / 2)
    assert out.sentence() == "NRG over 3 rows: a, b, c."


def test_sufficiency_is_flipped():
    # b has the lowest (best) sufficiency: were it read as higher-is-better, b's faithfulness would be 1/4
    out = nrg_over(TABLE)
    assert out.scores["b"]["nrg_faithfulness"] == pytest.approx((1 / 2 + 1) / 2)
    # lowering c's sufficiency below b's makes c the best on it: c's faithfulness rises from 0 to 1/2
    table = {r: dict(v) for r, v in TABLE.items()}
    table["c"]["suff_aopc"] = -0.10
    assert nrg_over(table).scores["c"]["nrg_faithfulness"] == pytest.approx(0.5)


def test_the_set_decides_the_value_and_incomplete_or_leaking_rows_are_left_out():
    table = {**TABLE, "d": {k: v for k, v in TABLE["a"].items() if k != "iou_f1"},
             "e": {**TABLE["a"], "comp_aopc": float("nan")}}
    out = nrg_over(table, leaking={"c"})
    assert out.compared == ["a", "b"]
    assert out.excluded == {"c": "label-leaking", "d": "no iou_f1", "e": "no comp_aopc"}
    # over {a, b} alone: faith a (1 + 0)/2, b (0 + 1)/2; plaus a (0+0+1)/3, b (1+1+0)/3; task a 1, b 0
    assert out.scores["a"]["nrg"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    assert out.scores["b"]["nrg"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert "d" not in out.scores and "c" not in out.scores
    assert out.sentence() == ("NRG over 2 rows: a, b. Not in the set: c (label-leaking); d (no iou_f1); "
                              "e (no comp_aopc).")


def test_one_row_has_no_nrg_and_equal_values_score_one():
    single = nrg_over({"a": TABLE["a"]})
    assert single.scores == {} and single.sentence().startswith("NRG: not computed")
    same = nrg_over({"a": TABLE["a"], "b": dict(TABLE["a"])})
    assert same.scores["a"]["nrg"] == pytest.approx(1.0) and same.scores["b"]["nrg"] == pytest.approx(1.0)


def test_groups_follow_the_unirex_desiderata():
    assert NRG_GROUPS == {"faithfulness": ["comp_aopc", "suff_aopc"], "plausibility": ["auprc", "F1", "iou_f1"],
                          "task": [TASK_ACC]}


def _runs(rows):
    return pd.DataFrame([{"dataset": "d", "row": r, "method": m, "seed": s, "status": "finished", "metric": k,
                          "value": v} for r, m, s, k, v in rows])


def test_task_accuracy_is_the_rationale_acc_else_the_full_text_classifiers(monkeypatch):
    full_text = {"attention", "regexlike"}
    monkeypatch.setattr(aggregate, "full_text_classifier", lambda m: m in full_text)
    runs = _runs([
        ("rnp", "rnp", 1, "Acc", 91.0), ("rnp", "rnp", 1, "full_text_acc", 95.0),
        ("attention", "attention", 1, "classifier_acc", 93.0), ("attention", "attention", 1, "full_text_acc", 93.0),
        ("regexlike", "regexlike", 1, "Acc", 97.0),  # an explained classifier that recorded its accuracy as Acc
        ("both", "regexlike", 2, "Acc", 96.0), ("both", "regexlike", 2, "classifier_acc", 95.0),
    ])
    out = aggregate.faithfulness_runs(runs)
    got = {(r.row, r.metric): r.value for r in out.itertuples()}
    assert got[("rnp", "Acc")] == 91.0 and got[("rnp", TASK_ACC)] == 91.0
    assert got[("attention", TASK_ACC)] == 93.0 and ("attention", "Acc") not in got
    assert got[("regexlike", "classifier_acc")] == 97.0 and ("regexlike", "Acc") not in got
    assert got[("regexlike", TASK_ACC)] == 97.0
    # a full-text classifier that recorded both keeps its classifier_acc; its Acc is not shown as a rationale's
    assert got[("both", "classifier_acc")] == 95.0 and ("both", "Acc") not in got and got[("both", TASK_ACC)] == 95.0
    assert len(out[out["metric"] == TASK_ACC]) == 4
