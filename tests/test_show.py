"""Checkpoints beside records, restoring a finished run, and `ratbench show` on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ratbench import api
from ratbench.cli.app import app
from ratbench.data.families.toy import toy_reviews
from ratbench.errors import RatbenchError
from ratbench.models.state import load_trainable_state
from ratbench.results.rationales import ExampleView
from ratbench.results.record import load_record

ARGS = ["--datasets", "toy", "--seeds", "1", "--profile", "smoke", "--set", "hidden_size=16", "--set", "epochs=2"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("RATBENCH_DATA", str(root))
    return root


@pytest.fixture
def trained(tmp_path, data):
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "rnp", *ARGS, "--results", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_checkpoint_holds_what_it_declares_and_a_restored_run_reproduces_its_record(trained, data):
    rec_path = next(trained.glob("runs/*/rnp/*.json"))
    record = load_record(rec_path)
    ckpt = rec_path.with_suffix(".pt")
    assert record.checkpoint == ckpt.name and ckpt.exists()
    state = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith("embed.") for k in state)  # the frozen vectors declare themselves rebuilt
    assert any(k.startswith("selector.") for k in state) and any(k.startswith("predictor.") for k in state)
    run = api.restore(rec_path, data)
    engine = api.build(api.plan(["rnp"], ["toy"], [1], "smoke", {"hidden_size": 16, "epochs": 2}, None, "cpu",
                                data, trained)[0])
    engine.model = run.model
    test = engine.evaluate(engine.test_batches, gold=True)
    for key in ("S", "Acc", "P", "R", "F1"):  # the record's numbers, recomputed from the checkpoint alone
        assert test[key] == record.metrics[key], key
    # strict loading: a state with a key missing, or one the model lacks, is refused
    broken = dict(state)
    broken.pop(next(iter(broken)))
    with pytest.raises(ValueError, match="missing"):
        load_trainable_state(run.model, broken)
    with pytest.raises(ValueError, match="unexpected"):
        load_trainable_state(run.model, {**state, "stray.weight": torch.zeros(1)})
    torch.save(broken, ckpt)
    with pytest.raises(RatbenchError, match="does not match"):
        api.restore(rec_path, data)


def test_show_prints_coloured_examples_and_writes_html(trained, tmp_path):
    html = tmp_path / "view.html"
    r = CliRunner().invoke(app, ["show", "--method", "rnp", "--dataset", "toy", "--seed", "1", "--n", "3",
                                 "--results", str(trained), "--html", str(html)])
    assert r.exit_code == 0, r.output
    assert r.output.count("test #") == 3 and "F1" in r.output
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("class='ex'") == 3
    assert "<script" not in page  # self-contained and inert
    first = toy_reviews(100, 3)[0][0]  # the words of the toy test set's first review
    assert all(tok in page for tok in first[:5])


def test_show_without_a_run_names_the_command_to_train_it(tmp_path):
    r = CliRunner().invoke(app, ["show", "--method", "ver", "--dataset", "synth-aroma", "--results",
                                 str(tmp_path)])
    assert r.exit_code == 1
    assert "ratbench run --methods ver" in r.output


def test_example_view_per_example_scores_by_hand():
    v = ExampleView(0, list("abcdef"), np.array([1, 1, 0, 0, 1, 0]), np.array([0, 1, 1, 0, 1, 0]), 1, 1)
    p, r, f = v.prf()
    assert (p, r) == pytest.approx((200 / 3, 200 / 3))
    assert f == pytest.approx(200 / 3)
    assert [v.token_class(i) for i in range(6)] == ["selected", "both", "gold", None, "both", None]
    empty = ExampleView(0, ["a"], np.array([0]), np.array([0]), 0, 0)
    assert empty.prf() == (0.0, 0.0, 0.0)
