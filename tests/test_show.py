"""Checkpoints beside records, and `ratbench show` on a finished run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ratbench.runner as runner
from ratbench.cli.app import app
from ratbench.results.rationales import ExampleView
from tests.toy import toy_corpus, toy_text

TOY = toy_corpus(n_train=300, n_dev=100, n_test=100)
ARGS = ["--datasets", "synth-aroma", "--seeds", "1", "--profile", "smoke", "--set", "hidden_size=16",
        "--set", "epochs=2"]


@pytest.fixture
def trained(tmp_path, monkeypatch):
    class Texts:
        test = toy_text(100, 3)  # the same texts toy_corpus builds its test split from

    monkeypatch.setattr(runner, "_corpus", lambda name, root: TOY)
    monkeypatch.setattr("ratbench.data.prepare.load_corpus", lambda name, root: TOY)
    monkeypatch.setattr("ratbench.data.loading.load_text_corpus", lambda name, root: Texts)
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "rnp", *ARGS, "--results", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_checkpoint_is_saved_and_reproduces_the_recorded_test_metrics(trained, tmp_path):
    from ratbench.engine import Engine
    from ratbench.results.checkpoint import load_model

    rec_path = next(trained.glob("runs/*/rnp/*.json"))
    record = json.loads(rec_path.read_text())
    ckpt = rec_path.with_suffix(".pt")
    assert record["checkpoint"] == ckpt.name and ckpt.exists()
    state = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith("embed.") for k in state)  # frozen vectors are rebuilt, not stored
    method, model, corpus = load_model(record, rec_path, tmp_path)
    engine = Engine(method, corpus, method.config, seed=1, device=torch.device("cpu"))
    engine.model = model
    test = engine.evaluate(engine.test_batches, gold=True)
    assert test["F1"] == pytest.approx(record["metrics"]["F1"])
    assert test["S"] == pytest.approx(record["metrics"]["S"])


def test_show_prints_coloured_examples_and_writes_html(trained, tmp_path):
    html = tmp_path / "view.html"
    r = CliRunner().invoke(app, ["show", "--method", "rnp", "--dataset", "synth-aroma", "--seed", "1", "--n", "3",
                                 "--results", str(trained), "--html", str(html)])
    assert r.exit_code == 0, r.output
    assert r.output.count("test #") == 3 and "F1" in r.output
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("class='ex'") == 3
    assert "<script" not in page  # self-contained and inert
    first = toy_text(100, 3).tokens[0]
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
