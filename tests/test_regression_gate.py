"""The project's own regression gate: RNP and VER on synth-appearance must hold against the committed baseline.

This is what `ratbench check` is for in users' CI, applied to ratbench itself: a change that degrades either
method on the synthetic corpus fails the test suite (and so .ci/run). About 3 minutes on 2 CPU cores; skip it
locally with `pytest -m "not gate"`. Training is bitwise reproducible on one machine, but another CPU takes
another trajectory from the same seed, and at eight epochs whether the selector "takes off" varies by
trajectory (with the earlier batch-32 quick profile, RNP on synth-appearance, seeds 1-4 on one CPU: test F1
75.8, 66.1, 25.8, 73.7). So the tolerances guard against what breaks a method, not subtle losses: selection
collapsing toward random (F1 ~15, tolerance 35), sparsity off target (3 points), and accuracy falling by more
than 10 points; each only when the seeds' spread does not explain it. The current baseline has RNP at F1
71.8 (1.7) and VER at 75.5 (2.8), so a collapse of either to random (both seeds) fails the gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app

BASELINE = Path(__file__).resolve().parents[1] / "results" / "synth-quick" / "summary.csv"
GATE_TOLERANCE = "f1=35,s=3,acc=10"


@pytest.mark.gate
def test_quick_profile_holds_against_the_committed_baseline(tmp_path):
    runner = CliRunner()
    out, data = tmp_path / "results", tmp_path / "data"
    r = runner.invoke(app, ["run", "--methods", "rnp,ver", "--datasets", "synth-appearance", "--seeds", "1,2",
                            "--profile", "quick", "--jobs", "2", "--set", "num_threads=1",
                            "--data-root", str(data), "--results", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "--results", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["check", "--baseline", str(BASELINE), "--results", str(out), "--datasets",
                            "synth-appearance", "--methods", "rnp,ver", "--tolerance", GATE_TOLERANCE,
                            "--format", "json"])
    result = json.loads(r.output)
    assert r.exit_code == 0, [c for c in result["cells"] if c["status"] != "ok"]
    assert len(result["cells"]) == 6  # rnp and ver x S, Acc, F1
