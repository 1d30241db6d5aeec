"""Every registered method trains on every backbone it declares, one short epoch on the toy corpus, through the
CLI, and records the table's metrics. No list to keep up to date: the methods come from the catalog, so a
method that is registered but cannot train fails here. What each method computes is tested in its own file."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.methods.catalog import catalog

SHORT = ["--set", "epochs=1", "--set", "train_limit=128", "--set", "dev_limit=64", "--set", "test_limit=64",
         "--set", "num_threads=1", "--set", "faithfulness=true"]


def _methods(backbone: str) -> list[str]:
    return [name for name, info in catalog().items() if backbone in info.backbones]


@pytest.mark.parametrize("backbone", ["gru", "transformer"])
def test_every_method_trains_and_records_the_table_metrics(backbone, tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    methods = _methods(backbone)
    assert methods, f"no method declares the {backbone} backbone"
    extra = ["--set", f"backbone={backbone}"] + (["--set", "local_mlm_steps=0"] if backbone == "transformer" else [])
    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "--methods", ",".join(methods), "--datasets", "toy", "--seeds", "1",
                                 "--profile", "smoke", *SHORT, *extra, "--results", str(out)])
    assert r.exit_code == 0, r.output
    seen = set()
    for path in out.glob("runs/toy/*/*.json"):
        rec = json.loads(path.read_text())
        seen.add(rec["method"])
        assert rec["status"] == "finished", (rec["method"], rec.get("error"), rec.get("traceback", "")[-2000:])
        m = rec["metrics"]
        acc = m.get("Acc", m.get("classifier_acc"))
        assert acc is not None and 0.0 <= acc <= 100.0, rec["method"]
        assert 0.0 < m["S"] <= 100.0 and not math.isnan(m["F1"]), (rec["method"], m["S"], m["F1"])
        assert rec["backbone"]["backbone"] == backbone
    assert set(methods) <= seen
