"""The project's own regression gate: RNP and VER on synth-appearance against the committed baseline.

This is what `ratbench check` is for in users' CI, applied to ratbench itself (docs/decisions/0006-regression-
gate.md). About 3 minutes on 2 CPU cores; skip it locally with `pytest -m "not gate"`. Two rules:

- exact, where the baseline was made with the same configuration and environment (CPU model and vector
  instructions, torch, threads): training is bitwise reproducible there (10 unchanged reruns gave identical
  records), so any per-seed loss is a regression. The test below shows a 0.1-point F1 loss of RNP failing.
- statistical elsewhere: another CPU takes another trajectory from the same seed, and at eight epochs whether
  RNP's selector takes off varies by trajectory (seeds 1-4 on one CPU once gave test F1 75.8, 66.1, 25.8,
  73.7), so across machines the gate catches a collapse toward random (tolerance 35 F1 points, S 3, Acc 10),
  not small losses.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app

BASELINE = Path(__file__).resolve().parents[1] / "results" / "synth-quick" / "summary.csv"
CROSS_MACHINE_TOLERANCE = "f1=35,s=3,acc=10"
EXACT_DROP = 0.1  # F1 points lost by every RNP seed: the smallest loss this file shows the exact rule failing
SCOPE = ["--datasets", "synth-appearance", "--methods", "rnp,ver", "--format", "json"]


def _check(baseline: Path, current: Path, tolerance: str = CROSS_MACHINE_TOLERANCE) -> tuple[int, dict]:
    r = CliRunner().invoke(app, ["check", "--baseline", str(baseline), "--current", str(current),
                                 "--tolerance", tolerance, *SCOPE])
    assert r.exit_code in (0, 3), r.output
    return r.exit_code, json.loads(r.output)


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory) -> Path:
    """The gate's run with the code as it is: results directory with summary.csv and runs.csv."""
    tmp = tmp_path_factory.mktemp("gate")
    out, data = tmp / "results", tmp / "data"
    runner = CliRunner()
    r = runner.invoke(app, ["run", "--methods", "rnp,ver", "--datasets", "synth-appearance", "--seeds", "1,2",
                            "--profile", "quick", "--jobs", "2", "--set", "num_threads=1",
                            "--data-root", str(data), "--results", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "--results", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _degraded(src: Path, dst: Path, drop: float, other_machine: bool = False) -> Path:
    """A copy of a results directory in which every RNP seed lost `drop` F1 points (what a degraded RNP's
    records would show); `other_machine` blanks the environment fingerprints, as a baseline made elsewhere."""
    dst.mkdir(parents=True)
    runs = pd.read_csv(src / "runs.csv")
    summary = pd.read_csv(src / "summary.csv")
    hit = (runs["method"] == "rnp") & (runs["metric"] == "F1")
    runs.loc[hit, "value"] -= drop
    summary.loc[(summary["method"] == "rnp") & (summary["metric"] == "F1"), "mean"] -= drop
    if other_machine:
        runs["env"] = None
    runs.to_csv(dst / "runs.csv", index=False)
    summary.to_csv(dst / "summary.csv", index=False)
    return dst / "summary.csv"


@pytest.mark.gate
def test_unchanged_code_holds_against_the_committed_baseline(gate_run):
    code, result = _check(BASELINE, gate_run / "summary.csv")
    modes = sorted({c["mode"] for c in result["cells"]})
    # which rule CI applied (exact only on the baseline's machine) shows in the warnings summary
    warnings.warn(f"regression gate compared by the {'/'.join(modes)} rule", stacklevel=1)
    assert code == 0, [c for c in result["cells"] if c["status"] != "ok"]
    assert len(result["cells"]) == 6  # rnp and ver x S, Acc, F1


@pytest.mark.gate
def test_an_rnp_that_lost_a_tenth_of_a_point_fails_on_the_same_machine(gate_run, tmp_path):
    baseline = tmp_path / "baseline"
    shutil.copytree(gate_run, baseline, ignore=shutil.ignore_patterns("runs"))
    assert _check(baseline / "summary.csv", gate_run / "summary.csv")[0] == 0  # identical: holds
    current = _degraded(gate_run, tmp_path / "degraded", EXACT_DROP)
    code, result = _check(baseline / "summary.csv", current)
    bad = [(c["method"], c["metric"], c["mode"]) for c in result["cells"] if c["status"] == "regression"]
    assert code == 3 and bad == [("rnp", "F1", "exact")]


@pytest.mark.gate
def test_across_machines_a_collapse_fails_and_a_small_loss_does_not(gate_run, tmp_path):
    baseline = _degraded(gate_run, tmp_path / "elsewhere", 0.0, other_machine=True)
    code, result = _check(baseline, _degraded(gate_run, tmp_path / "small", 5.0))
    assert code == 0 and {c["mode"] for c in result["cells"]} == {"statistical"}
    code, result = _check(baseline, _degraded(gate_run, tmp_path / "collapse", 40.0))
    bad = [(c["method"], c["metric"]) for c in result["cells"] if c["status"] == "regression"]
    assert code == 3 and bad == [("rnp", "F1")]
