"""`ratbench check`: the regression rule on hand-made summaries, exit codes, and bad baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.results.check import compare, parse_tolerance

runner = CliRunner()


def _summary(path: Path, cells: dict[tuple[str, str], tuple[float, float]], n: int = 3) -> Path:
    """cells: (method, metric) -> (mean, std), all on one dataset."""
    rows = [{"dataset": "synth-appearance", "method": m, "metric": k, "mean": mean, "std": std, "n": n,
             "config_hash": "abc"} for (m, k), (mean, std) in cells.items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


BASE = {("rnp", "S"): (15.0, 0.5), ("rnp", "Acc"): (80.0, 1.0), ("rnp", "F1"): (40.0, 1.0),
        ("ver", "S"): (15.2, 0.4), ("ver", "Acc"): (81.0, 1.0), ("ver", "F1"): (45.0, 1.5)}


def _check(tmp_path: Path, current: dict, *extra: str, base: dict = BASE, n_cur: int = 3):
    b = _summary(tmp_path / "base.csv", base)
    c = _summary(tmp_path / "cur.csv", current, n=n_cur)
    return runner.invoke(app, ["check", "--baseline", str(b), "--current", str(c), *extra])


def test_unchanged_results_pass(tmp_path):
    res = _check(tmp_path, BASE)
    assert res.exit_code == 0, res.output
    assert "All 6 compared cells hold" in res.output


def test_a_clear_drop_is_a_regression(tmp_path):
    cur = {**BASE, ("rnp", "F1"): (25.0, 1.2)}
    res = _check(tmp_path, cur, "--format", "json")
    assert res.exit_code == 3
    out = json.loads(res.output)
    bad = [c for c in out["cells"] if c["status"] == "regression"]
    assert [(c["method"], c["metric"]) for c in bad] == [("rnp", "F1")]
    assert bad[0]["delta"] == pytest.approx(-15.0) and bad[0]["p_value"] < 0.01


def test_sparsity_drift_counts_in_both_directions(tmp_path):
    res = _check(tmp_path, {**BASE, ("ver", "S"): (25.0, 0.5)})
    assert res.exit_code == 3
    res = _check(tmp_path, {**BASE, ("ver", "S"): (8.0, 0.5)})
    assert res.exit_code == 3


def test_a_gap_the_seeds_explain_is_not_a_regression(tmp_path):
    # 3 points below the baseline, beyond the 1-point tolerance, but the seeds spread by ~6 points
    base = {**BASE, ("rnp", "F1"): (40.0, 6.0)}
    res = _check(tmp_path, {**base, ("rnp", "F1"): (37.0, 6.0)}, "--format", "json", base=base)
    assert res.exit_code == 0
    cell = next(c for c in json.loads(res.output)["cells"] if c["method"] == "rnp" and c["metric"] == "F1")
    assert cell["status"] == "within-spread" and cell["p_value"] > 0.05


def test_single_seed_falls_back_to_the_tolerance(tmp_path):
    cur = {**BASE, ("rnp", "Acc"): (77.5, 0.0)}  # 2.5 below with a 2-point tolerance, one seed
    res = _check(tmp_path, cur, n_cur=1)
    assert res.exit_code == 3
    assert _check(tmp_path, {**BASE, ("rnp", "Acc"): (78.5, 0.0)}, n_cur=1).exit_code == 0


def test_improvements_and_untracked_metrics_never_fail(tmp_path):
    cur = {**BASE, ("rnp", "F1"): (60.0, 1.0), ("rnp", "P"): (1.0, 0.0)}
    assert _check(tmp_path, cur).exit_code == 0


def test_missing_cells_exit_1_and_are_listed(tmp_path):
    cur = {k: v for k, v in BASE.items() if k[0] != "ver"}
    res = _check(tmp_path, cur)
    assert res.exit_code == 1
    assert "synth-appearance/ver/F1" in res.output


def test_tolerance_parsing_and_errors(tmp_path):
    assert parse_tolerance("f1=1.0,s=0.5,acc=2,p=3") == {"F1": 1.0, "S": 0.5, "Acc": 2.0, "P": 3.0}
    res = _check(tmp_path, BASE, "--tolerance", "f1=abc")
    assert res.exit_code == 1 and "Cannot read tolerance 'f1=abc'" in res.output
    assert "Traceback" not in res.output


def test_bad_baseline_files_give_one_paragraph(tmp_path):
    cur = _summary(tmp_path / "cur.csv", BASE)
    odd = tmp_path / "odd.csv"
    odd.write_text("dataset,method,value\nx,y,1\n")
    res = runner.invoke(app, ["check", "--baseline", str(odd), "--current", str(cur)])
    assert res.exit_code == 1 and "lacks the column(s) metric, mean, std, n" in res.output
    res = runner.invoke(app, ["check", "--baseline", str(tmp_path / "nope.csv"), "--current", str(cur)])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_compare_tolerance_boundaries():
    base = pd.DataFrame([{"dataset": "d", "method": "m", "metric": "F1", "mean": 50.0, "std": 0.0, "n": 5}])
    cur = base.assign(mean=49.0)
    assert compare(base, cur, {"F1": 1.0}).cells[0].status == "ok"  # exactly at the tolerance holds
    assert compare(base, cur.assign(mean=48.9), {"F1": 1.0}).cells[0].status == "regression"


def test_filters_restrict_the_comparison(tmp_path):
    cur = {k: v for k, v in BASE.items() if k[0] != "ver"}
    b = _summary(tmp_path / "base.csv", BASE)
    c = _summary(tmp_path / "cur.csv", cur)
    res = runner.invoke(app, ["check", "--baseline", str(b), "--current", str(c), "--methods", "rnp"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["check", "--baseline", str(b), "--current", str(c), "--methods", "rpn"])
    assert res.exit_code == 1 and "Did you mean" in res.output


def test_two_seeds_have_enough_power_for_a_sparsity_drift():
    """The measured case that Welch's t-test let pass (p = 0.053): S 14.9 (1.6) -> 26.3 (0.4), 2 seeds each.
    z = 11.4 / sqrt(1.6^2/2 + 0.4^2/2) = 9.8, two-sided p ~ 1e-22: a regression. A 2-point drift with the
    same spread (z = 1.71, two-sided p = 0.086) is explained by the seeds."""
    def frame(mean: float, std: float) -> pd.DataFrame:
        return pd.DataFrame([{"dataset": "d", "method": "rnp", "metric": "S", "mean": mean, "std": std, "n": 2}])

    tol = parse_tolerance("s=1")
    cell = compare(frame(14.9, 1.6), frame(26.3, 0.4), tol).cells[0]
    assert cell.status == "regression" and cell.p_value < 1e-6
    cell = compare(frame(14.9, 1.6), frame(16.9, 0.4), tol).cells[0]
    assert cell.status == "within-spread" and cell.p_value == pytest.approx(0.0863, abs=1e-3)


def _runs_csv(folder: Path, rows: list[tuple[str, int, float]], env: str = "e1", config_hash: str = "h1") -> Path:
    """A summary.csv with its per-seed runs.csv beside it (method, seed, F1)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame([{"dataset": "synth-appearance", "method": m, "seed": s, "config_hash": config_hash,
                          "status": "finished", "env": env, "metric": "F1", "value": v} for m, s, v in rows])
    runs.to_csv(folder / "runs.csv", index=False)
    summary = runs.groupby(["dataset", "method", "metric"])["value"].agg(mean="mean", std="std", n="count")
    summary.reset_index().assign(config_hash=config_hash).to_csv(folder / "summary.csv", index=False)
    return folder


def test_same_environment_compares_each_seed_exactly(tmp_path):
    base = _runs_csv(tmp_path / "base", [("rnp", 1, 70.0), ("rnp", 2, 74.0)])
    same = _runs_csv(tmp_path / "same", [("rnp", 1, 70.0), ("rnp", 2, 74.0)])
    # 0.5 points lower on one seed: far inside any statistical tolerance, but a change on the same machine
    drop = _runs_csv(tmp_path / "drop", [("rnp", 1, 69.5), ("rnp", 2, 74.0)])
    elsewhere = _runs_csv(tmp_path / "elsewhere", [("rnp", 1, 69.5), ("rnp", 2, 74.0)], env="e2")
    args = ["check", "--baseline", str(base), "--tolerance", "f1=5", "--format", "json", "--results"]
    r = CliRunner().invoke(app, [*args, str(same)])
    cell = json.loads(r.output)["cells"][0]
    assert r.exit_code == 0 and cell["mode"] == "exact" and cell["worst_seed_delta"] == 0.0
    r = CliRunner().invoke(app, [*args, str(drop)])
    cell = json.loads(r.output)["cells"][0]
    assert r.exit_code == 3 and cell["mode"] == "exact" and cell["worst_seed_delta"] == pytest.approx(0.5)
    r = CliRunner().invoke(app, [*args, str(elsewhere)])  # another CPU: the statistical rule, a 0.25 mean drop holds
    cell = json.loads(r.output)["cells"][0]
    assert r.exit_code == 0 and cell["mode"] == "statistical"
    r = CliRunner().invoke(app, [*args, str(drop), "--no-exact"])
    assert r.exit_code == 0 and json.loads(r.output)["cells"][0]["mode"] == "statistical"
