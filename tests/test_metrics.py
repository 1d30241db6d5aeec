"""Metric values on cases computed by hand (counts in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import trapezoid

from ratbench.metrics import (
    Accuracy,
    TokenOverlap,
    aopc,
    auprc,
    class_macro_token_f1,
    comprehensiveness,
    iou_f1,
    nrg,
    spans,
    sufficiency,
    token_prf,
    topk_select,
)

# two examples, length 6; example 0 has 5 real tokens, example 1 has 3
MASK = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
GOLD = np.array([[0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]])
SEL = np.array([[0, 1, 1, 0, 1, 1], [0, 0, 1, 0, 1, 0]])  # selections at padding: (0,5), (1,4)


def test_micro_and_macro_token_prf_by_hand():
    m = token_prf(SEL, GOLD, MASK)
    # real selections: ex0 {1,2,4}, ex1 {2} -> 4 selected; TP = {1,2} = 2; gold = 3 + 1 = 4; real = 8
    assert m["S"] == pytest.approx(100 * 4 / 8)
    assert m["P"] == pytest.approx(50.0) and m["R"] == pytest.approx(50.0) and m["F1"] == pytest.approx(50.0)
    # per example: ex0 P=2/3 R=2/3 F1=2/3; ex1 P=0 R=0 F1=0
    assert m["P_macro"] == pytest.approx(100 * (2 / 3) / 2)
    assert m["F1_macro"] == pytest.approx(100 * (2 / 3) / 2)
    # reference mode also counts the 2 padding selections: S = 6/8, P = 2/6
    assert m["S_ref"] == pytest.approx(75.0) and m["P_ref"] == pytest.approx(100 * 2 / 6)
    # random selection at S = 50 %: expected P = gold share 4/8, R = 50 %
    assert m["P_random"] == pytest.approx(50.0) and m["R_random"] == pytest.approx(50.0)


def test_zero_division_conventions():
    empty = np.zeros_like(SEL)
    m = token_prf(empty, GOLD, MASK)
    assert m["S"] == 0 and m["P"] == 0 and m["R"] == 0 and m["F1"] == 0
    m = token_prf(SEL, np.zeros_like(GOLD), MASK)
    assert m["R"] == 0 and m["F1"] == 0 and m["P"] == 0
    m = token_prf(SEL, GOLD, np.zeros_like(MASK))  # all padding
    assert m["S"] == 0 and m["P"] == 0


def test_accumulator_matches_one_shot_with_different_widths():
    acc = TokenOverlap()
    acc.update(SEL[:1], GOLD[:1], MASK[:1])
    acc.update(SEL[1:, :3], GOLD[1:, :3], MASK[1:, :3])  # a narrower batch
    assert acc.compute()["F1"] == pytest.approx(token_prf(SEL, GOLD, MASK)["F1"])


def test_micro_f1_against_set_implementation():
    rng = np.random.default_rng(0)
    sel, gold = rng.random((20, 30)) < 0.3, rng.random((20, 30)) < 0.2
    lengths = rng.integers(5, 31, 20)
    mask = np.arange(30)[None, :] < lengths[:, None]
    s = {(i, j) for i, j in zip(*np.nonzero(sel & mask))}
    g = {(i, j) for i, j in zip(*np.nonzero(gold & mask))}
    p, r = len(s & g) / len(s), len(s & g) / len(g)
    assert token_prf(sel, gold, mask)["F1"] == pytest.approx(100 * 2 * p * r / (p + r))


def test_accuracy():
    a = Accuracy()
    a.update(np.array([1, 0, 1]), np.array([1, 1, 1]))
    a.update(np.array([0]), np.array([0]))
    assert a.compute() == pytest.approx(75.0)
    assert Accuracy().compute() == 0.0


def test_spans_and_iou_f1():
    assert spans(np.array([1, 1, 0, 1, 0, 1])) == [(0, 2), (3, 4), (5, 6)]
    gold = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 1, 1]])
    # predicted spans: [0,3) IOU 3/4 -> match; [6,8) IOU 0 with both; [9,10) IOU 1/2 with [8,10) -> match
    sel = np.array([[1, 1, 1, 0, 0, 0, 1, 1, 0, 1]])
    m = iou_f1(sel, gold, np.ones_like(gold))
    assert m["P"] == pytest.approx(2 / 3) and m["R"] == pytest.approx(2 / 2)
    assert m["F1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    # at threshold 0.6 the half-overlap span no longer matches
    assert iou_f1(sel, gold, np.ones_like(gold), threshold=0.6)["P"] == pytest.approx(1 / 3)


def test_auprc_by_hand_and_skips():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.5, 0.5, 0.5, 0.5]])
    gold = np.array([[1, 0, 1, 0], [0, 0, 0, 0]])  # second example has no gold: skipped
    m = auprc(scores, gold, np.ones_like(gold))
    # points (recall, precision): (0,1) (0.5,1) (0.5,0.5) (1,2/3) (1,0.5)
    expected = trapezoid([1, 1, 0.5, 2 / 3, 0.5], [0, 0.5, 0.5, 1, 1])
    assert m["auprc"] == pytest.approx(expected) and m["n_scored"] == 1
    # AP = sum over recall steps of precision: 0.5*1 + 0.5*(2/3)
    assert m["average_precision"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_class_macro_token_f1():
    scores = np.array([[1.0, -1.0, 1.0, -1.0]])
    gold = np.array([[1, 1, 0, 0]])
    # selected class: P=1/2 R=1/2 F1=1/2; unselected class: same -> 0.5
    assert class_macro_token_f1(scores, gold, np.ones_like(gold)) == pytest.approx(0.5)


def test_topk_rounding_and_floor():
    scores = np.array([[0.1, 0.9, 0.5, 0.3, 0.0], [0.2, 0.8, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    scores, mask = torch.tensor(scores), torch.tensor(mask, dtype=torch.float32)
    top = topk_select(scores, mask, 0.5)  # round(2.5) = 2 (banker's) ; round(1.0) = 1
    assert top[0].tolist() == [0, 1, 1, 0, 0] and top[1].tolist() == [0, 1, 0, 0, 0]
    assert topk_select(scores, mask, 0.01).sum(1).tolist() == [1, 1]  # at least one token
    assert topk_select(scores, mask, 1.0)[1].tolist() == [1, 1, 0, 0, 0]  # never selects padding


def test_comp_suff_and_aopc_divisors():
    assert comprehensiveness(np.array([0.9, 0.8]), np.array([0.5, 0.8]))["mean"] == pytest.approx(0.2)
    assert sufficiency(np.array([0.9, 0.8]), np.array([0.9, 0.6]))["mean"] == pytest.approx(0.1)
    bins = {0.01: np.array([0.1]), 0.05: np.array([0.2]), 0.1: np.array([0.3]), 0.2: np.array([0.4]),
            0.5: np.array([0.5])}
    out = aopc(bins)
    assert out["aopc"] == pytest.approx(1.5 / 6) and out["aopc_eraser_script"] == pytest.approx(1.5 / 5)


def test_nrg_three_methods():
    table = {
        "a": {"comp_aopc": 0.3, "suff_aopc": 0.1, "auprc": 0.5, "F1": 40.0, "Acc": 80.0},
        "b": {"comp_aopc": 0.1, "suff_aopc": 0.3, "auprc": 0.7, "F1": 60.0, "Acc": 80.0},
        "c": {"comp_aopc": 0.2, "suff_aopc": 0.2, "auprc": 0.6, "F1": 50.0, "Acc": 80.0},
    }
    out = nrg(table)
    # a: faith (1 + 1)/2 = 1, plaus (0 + 0)/2 = 0, task 1 (all equal) -> 2/3
    assert out["a"]["faithfulness"] == pytest.approx(1.0) and out["a"]["plausibility"] == pytest.approx(0.0)
    assert out["a"]["nrg"] == pytest.approx(2 / 3)
    assert out["c"]["nrg"] == pytest.approx((0.5 + 0.5 + 1) / 3)
