"""`ratbench run --executor ray` on a local Ray instance gives the records the local executor gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app

ray = pytest.importorskip("ray")
ARGS = ["run", "--methods", "rnp,ver", "--datasets", "toy", "--seeds", "1,2", "--profile", "smoke",
        "--set", "hidden_size=16", "--set", "epochs=2", "--set", "num_threads=1"]
TIMING = {"train_seconds", "eval_seconds"}


def _numbers(results: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(results.glob("runs/*/*/*.json")):
        rec = json.loads(path.read_text())
        curves = [{k: v for k, v in row.items() if k not in TIMING} for row in rec["curves"]]
        out[str(path.relative_to(results))] = {"metrics": rec["metrics"], "curves": curves,
                                               "selected_epoch": rec["selected_epoch"], "status": rec["status"]}
    return out


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    """A local Ray instance whose workers see the same data root: the registered `toy` dataset, prepared by the
    driver before submitting (as on a cluster with a shared --data-root)."""
    root = str(tmp_path / "data")
    monkeypatch.setenv("RATBENCH_DATA", root)
    repo = str(Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": repo, "RATBENCH_DATA": root}})
    yield
    ray.shutdown()


def test_ray_executor_writes_the_same_records_as_the_local_one(tmp_path, local_ray):
    local, via_ray = tmp_path / "local", tmp_path / "ray"
    r = CliRunner().invoke(app, [*ARGS, "--results", str(local)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*ARGS, "--results", str(via_ray), "--executor", "ray"])
    assert r.exit_code == 0, r.output
    a, b = _numbers(local), _numbers(via_ray)
    assert len(a) == 4 and a == b
    assert len(list(via_ray.glob("runs/*/*/*.pt"))) == 4  # checkpoints shipped back with the records
    # resume works the same: nothing left to train
    r = CliRunner().invoke(app, [*ARGS, "--results", str(via_ray), "--executor", "ray"])
    assert r.exit_code == 0 and "0 to train" in r.output
