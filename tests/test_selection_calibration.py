"""Model selection and sparsity calibration: the rules by hand on made-up epoch sequences, and, at engine level,
that both read dev and never test (docs/methods.md#shared-pipeline: dev calibration of alpha, model selection)."""

from __future__ import annotations

import pytest
import torch

from ratbench.config import RunConfig
from ratbench.data.corpus import Corpus, Split, build_split
from ratbench.engine import Engine
from ratbench.engine.calibration import SparsityCalibrator
from ratbench.engine.selection import ModelSelector
from ratbench.methods.catalog import method_class
from tests.toy import toy_corpus, toy_text


# == sparsity calibration: alpha <- clip(alpha + gain * (target - dev S) / 100, 0.005, 0.95) =================
def test_calibration_step_by_hand():
    cal = SparsityCalibrator(target=15.0, gain=0.8, enabled=True)
    # dev S 25 %: 0.125 + 0.8 * (15 - 25)/100 = 0.125 - 0.08 = 0.045
    assert cal.update(0.125, 25.0) == pytest.approx(0.045)
    # dev S 5 %: 0.125 + 0.08 = 0.205
    assert cal.update(0.125, 5.0) == pytest.approx(0.205)
    assert cal.update(0.125, 15.0) == pytest.approx(0.125)  # on target: no move
    # gain 0.3, dev S 35 %: 0.2 - 0.3 * 0.2 = 0.14
    assert SparsityCalibrator(15.0, 0.3, True).update(0.2, 35.0) == pytest.approx(0.14)


def test_calibration_clips_to_its_range():
    cal = SparsityCalibrator(target=15.0, gain=0.8, enabled=True)
    assert cal.update(0.01, 100.0) == pytest.approx(0.005)  # 0.01 - 0.68 -> floor 0.005
    assert cal.update(0.9, 0.0) == pytest.approx(0.95)  # 0.9 + 0.12 -> ceiling 0.95
    assert cal.update(0.006, 15.5) == pytest.approx(0.005)  # 0.006 - 0.004 = 0.002 -> 0.005
    assert cal.update(0.5, 0.0) == pytest.approx(0.62)  # inside the range: not clipped


def test_calibration_is_off_without_a_target_or_when_disabled():
    assert SparsityCalibrator(None, 0.8, True).update(0.125, 60.0) == 0.125
    assert SparsityCalibrator(15.0, 0.8, False).update(0.125, 60.0) == 0.125


# == model selection ============================================================================================
def _offer(selector: ModelSelector, epochs: list[tuple[int, float, float]]) -> list[int]:
    """Offer (epoch, dev acc, dev S) in order; returns the epochs at which the state callable was called."""
    calls: list[int] = []
    for epoch, acc, s in epochs:
        def state(epoch=epoch):
            calls.append(epoch)
            return {"epoch": epoch}
        selector.offer(epoch, {"Acc": acc, "S": s}, {"F1": float(epoch)}, state)
    return calls


# target 15 +- 3: eligible epochs are 2 (S 14), 4 (S 18: |18-15| = 3, on the boundary), 5 (S 12)
SEQUENCE = [(1, 80.0, 30.0), (2, 85.0, 14.0), (3, 90.0, 40.0), (4, 85.0, 18.0), (5, 84.0, 12.0), (6, 90.0, 18.01)]


def test_matched_rule_takes_the_first_best_eligible_epoch_and_dev_acc_the_first_best_overall():
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    _offer(sel, SEQUENCE)
    chosen, how = sel.chosen("dev_acc_matched_s")
    # eligible: 2 (85), 4 (85, a tie: the earlier stays), 5 (84); 6 has |18.01 - 15| > 3
    assert (chosen.epoch, how) == (2, "dev_acc_matched_s")
    assert chosen.dev_acc == 85.0 and chosen.dev_S == 14.0 and chosen.test == {"F1": 2.0}
    assert chosen.state == {"epoch": 2}  # the weights of that epoch, not of a later one
    chosen, how = sel.chosen("dev_acc")
    assert (chosen.epoch, how) == (3, "dev_acc")  # 90 at epoch 3 and again at 6: the first wins
    assert chosen.state == {"epoch": 3}
    assert sel.chosen()[0].epoch == 2  # the default rule is the matched one


def test_eligibility_is_within_the_tolerance_inclusive():
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    assert sel.eligible(12.0) and sel.eligible(18.0) and sel.eligible(15.0)
    assert not sel.eligible(11.99) and not sel.eligible(18.01)
    # the boundary epoch wins when it is the best eligible one
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    _offer(sel, [(1, 70.0, 14.0), (2, 75.0, 18.0), (3, 80.0, 18.5)])
    assert sel.chosen("dev_acc_matched_s")[0].epoch == 2 and sel.chosen("dev_acc")[0].epoch == 3


def test_fallback_to_all_epochs_when_none_is_eligible_and_the_how_says_so():
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    _offer(sel, [(1, 70.0, 40.0), (2, 78.0, 35.0), (3, 78.0, 30.0), (4, 75.0, 25.0)])
    chosen, how = sel.chosen("dev_acc_matched_s")
    assert chosen.epoch == 2  # best dev acc over all epochs, first of the tie
    assert how.startswith("dev_acc_matched_s") and "no epoch within tolerance" in how and "all epochs" in how
    assert sel.chosen("dev_acc") == (chosen, "dev_acc")


@pytest.mark.parametrize("target,restrict", [(15.0, False), (None, True), (None, False)])
def test_without_restriction_the_rules_coincide(target, restrict):
    sel = ModelSelector(target=target, tolerance=3.0, restrict=restrict)
    _offer(sel, SEQUENCE)
    assert sel.eligible(99.0)
    matched, how = sel.chosen("dev_acc_matched_s")
    assert matched.epoch == 3 == sel.chosen("dev_acc")[0].epoch  # plain first best dev acc
    assert how == "dev_acc_matched_s"  # nothing fell back


def test_state_is_copied_only_when_an_epoch_becomes_a_best_one():
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    calls = _offer(sel, SEQUENCE)
    # 1: first of all (best overall); 2: best eligible and best overall (one copy for both); 3: best overall;
    # 4: ties 2 (eligible) and trails 3; 5: trails both; 6: not eligible, ties 3
    assert calls == [1, 2, 3]
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    assert _offer(sel, [(1, 60.0, 15.0), (2, 60.0, 15.0), (3, 59.0, 15.0), (4, 61.0, 15.0)]) == [1, 4]


def test_selector_errors():
    sel = ModelSelector(target=15.0, tolerance=3.0, restrict=True)
    with pytest.raises(RuntimeError, match="no epoch"):
        sel.chosen()
    _offer(sel, SEQUENCE[:1])
    with pytest.raises(ValueError, match="unknown selection rule"):
        sel.chosen("test_acc")


# == engine level: calibration and selection read dev, never test ===============================================
TOY = toy_corpus(n_train=300, n_dev=100, n_test=100)
SETTINGS = dict(epochs=3, batch_size=32, lr=5e-3, hidden_size=16, alpha=0.15, target_sparsity=15.0,
                calibration_gain=0.8, faithfulness=False)


def _with_test(test: Split) -> Corpus:
    return Corpus(TOY.name, TOY.train, TOY.dev, test, TOY.words, TOY.vectors)


def _fit(corpus: Corpus, **kw):
    cfg = RunConfig(**{**SETTINGS, **kw})
    return Engine(method_class("rnp")(cfg), corpus, cfg, seed=1, device=torch.device("cpu")).fit()


@pytest.fixture(scope="module")
def base_run():
    return _fit(TOY)


def test_alpha_follows_the_calibration_rule_on_dev_s(base_run):
    rows = base_run.curves
    alpha = 0.15
    for row in rows:  # each epoch trains at the alpha computed from the previous epoch's dev S
        assert row["alpha"] == pytest.approx(alpha, abs=1e-12)
        alpha = min(max(alpha + 0.8 * (15.0 - row["dev_S"]) / 100.0, 0.005), 0.95)
    assert base_run.final_alpha == pytest.approx(alpha, abs=1e-12)
    assert len({r["alpha"] for r in rows}) == len(rows)  # it did move every epoch (dev S never exactly 15)


def _dev_side(result) -> dict:
    """Everything a run derives from training and dev: must not depend on the test split."""
    curves = [{k: r[k] for k in ("epoch", "alpha", "train_loss", "train_acc", "train_S", "dev_acc", "dev_S")}
              for r in result.curves]
    selections = {rule: (s["epoch"], s["how"], s["metrics"]["dev_acc"], s["metrics"]["dev_S"])
                  for rule, s in result.selections.items()}
    return {"curves": curves, "selected": result.selected_epoch, "selections": selections,
            "final_alpha": result.final_alpha}


def test_calibration_and_selection_never_read_the_test_split(base_run):
    # (a) flipped test labels: anything reading test accuracy (selection on test Acc) would change.
    # (b) other test reviews altogether: anything reading test S (calibration on test sparsity) would change.
    flipped = Split(TOY.test.ids, TOY.test.offsets, 1 - TOY.test.labels, TOY.test.gold)
    other = build_split(toy_text(100, seed=4), {w: i for i, w in enumerate(TOY.words) if i})
    runs = {"flipped": _fit(_with_test(flipped)), "other": _fit(_with_test(other))}
    for run in runs.values():
        assert _dev_side(run) == _dev_side(base_run)
    # the variants did change the test side, so the comparison is not vacuous: flipping every label turns each
    # right prediction wrong (Acc -> 100 - Acc), and other reviews give another test S
    for a, b in zip(base_run.curves, runs["flipped"].curves):
        assert b["test_acc"] == pytest.approx(100.0 - a["test_acc"])
    assert [r["test_S"] for r in runs["other"].curves] != [r["test_S"] for r in base_run.curves]


def test_calibrate_none_keeps_alpha_and_the_rules_coincide():
    run = _fit(TOY, calibrate="none", epochs=2)
    assert [r["alpha"] for r in run.curves] == [0.15, 0.15] and run.final_alpha == 0.15
    rules = {rule: s["epoch"] for rule, s in run.selections.items()}
    assert rules["dev_acc_matched_s"] == rules["dev_acc"] == run.selected_epoch
    # without calibration no epoch is filtered: the first epoch with the best dev accuracy
    best = max(r["dev_acc"] for r in run.curves)
    assert run.selected_epoch == next(r["epoch"] for r in run.curves if r["dev_acc"] == best)
    assert run.metrics["dev_acc"] == best
