"""`ratbench report` on hand-made records: values computed by hand, failures visible, published numbers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from ratbench.cli.app import app


def _record(root: Path, dataset: str, method: str, seed: int, metrics: dict | None, h: str = "abc123def0",
            status: str = "finished") -> None:
    rec = {"schema_version": 1, "status": status, "dataset": dataset, "method": method, "seed": seed,
           "profile": "quick", "config": {}, "config_hash": h, "device": "cpu", "seeds_requested": [1, 2, 3],
           "versions": {"ratbench": "0.1.0", "torch": "2.13.0"}, "metrics": metrics, "curves": []}
    if status == "failed":
        rec["error"] = "FloatingPointError: training loss became nan"
    p = root / "runs" / dataset / method / f"seed{seed}-{h}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))


def _m(f1: float, s: float = 15.0) -> dict:
    return {"S": s, "Acc": 80.0, "P": f1 + 1, "R": f1 - 1, "F1": f1, "comprehensiveness": 0.1,
            "p_random": 12.0, "r_random": s, "f1_random": 13.3}


RNP_F1 = [60.0, 64.0, 65.0]
VER_F1 = [66.0, 69.0, 72.0]


@pytest.fixture
def results(tmp_path):
    for seed, (a, b) in enumerate(zip(RNP_F1, VER_F1), 1):
        _record(tmp_path, "beer-appearance", "rnp", seed, _m(a))
        _record(tmp_path, "beer-appearance", "ver", seed, _m(b))
    return tmp_path


def _run(*args):
    r = CliRunner().invoke(app, ["report", *args])
    assert r.exit_code == 0, r.output
    return r


def test_summary_values_by_hand(results):
    _run("--results", str(results))
    summary = pd.read_csv(results / "summary.csv")
    assert list(summary.columns[:6]) == ["dataset", "method", "metric", "mean", "std", "n"]
    row = summary[(summary.method == "rnp") & (summary.metric == "F1")].iloc[0]
    assert row["mean"] == pytest.approx(63.0) and row["n"] == 3
    assert row["std"] == pytest.approx(statistics.stdev(RNP_F1))  # ddof = 1: sqrt(7) = 2.6458
    assert row["std"] == pytest.approx(7 ** 0.5)
    runs = pd.read_csv(results / "runs.csv")
    assert len(runs[(runs.metric == "F1")]) == 6
    table = (results / "table.md").read_text()
    assert "### Beer-Appearance" in table
    assert "**69.0 (3.0)**" in table and "63.0 (2.6)" in table  # best F1 bold; S never bold
    assert "**15.0" not in table
    assert "ddof=1" in table
    assert "| random (same S) | – | – | 12.0 | 15.0 | 13.3 | expected |" in table


def test_paired_test_matches_scipy(results):
    _run("--results", str(results), "--baseline", "rnp")
    summary = pd.read_csv(results / "summary.csv")
    p = summary[(summary.method == "ver") & (summary.metric == "F1")]["p_value"].iloc[0]
    assert p == pytest.approx(stats.ttest_rel(VER_F1, RNP_F1).pvalue)
    assert p < 0.05 and "†" in (results / "table.md").read_text()


def test_failed_runs_are_visible_not_averaged(results):
    _record(results, "beer-appearance", "rnp", 3, None, status="failed")  # replaces seed 3
    _run("--results", str(results))
    summary = pd.read_csv(results / "summary.csv")
    row = summary[(summary.method == "rnp") & (summary.metric == "F1")].iloc[0]
    assert row["n"] == 2 and row["n_failed"] == 1 and row["mean"] == pytest.approx(62.0)
    assert "2/3, 1 failed" in (results / "table.md").read_text()


def test_two_configs_are_two_rows(results):
    _record(results, "beer-appearance", "rnp", 1, _m(10.0), h="fff999aaa0")
    _run("--results", str(results))
    table = (results / "table.md").read_text()
    assert "rnp [abc123]" in table and "rnp [fff999]" in table


def test_published_numbers_and_tex(results):
    _run("--results", str(results), "--published", "--format", "md,csv,tex")
    summary = pd.read_csv(results / "summary.csv")
    row = summary[(summary.method == "rnp") & (summary.metric == "F1")].iloc[0]
    assert row["published"] == pytest.approx(66.5)  # VER Table 1, RNP, Beer-Appearance
    assert row["delta"] == pytest.approx(63.0 - 66.5)
    tex = (results / "table.tex").read_text()
    assert tex.count("{") == tex.count("}") and r"\begin{tabular}" in tex and r"\end{tabular}" in tex


def test_no_records_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(app, ["report", "--results", str(tmp_path)])
    assert r.exit_code == 1 and "No run records" in r.output and "ratbench run" in r.output


def test_corrupt_and_future_records_are_skipped_with_a_warning(results):
    bad = results / "runs" / "beer-appearance" / "rnp" / "seed9-deadbeef00.json"
    bad.write_text('{"schema_version": 1, "status": "fini')
    future = results / "runs" / "beer-appearance" / "ver" / "seed9-deadbeef00.json"
    future.write_text(json.dumps({"schema_version": 99, "status": "finished", "dataset": "beer-appearance",
                                  "method": "ver", "seed": 9, "config_hash": "deadbeef00"}))
    r = _run("--results", str(results))
    assert f"Skipping {bad}" in r.output and "not valid JSON" in r.output
    assert f"Skipping {future}" in r.output and "newer than this ratbench" in r.output
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["n"]) == {3}  # the two bad files did not count as seeds


def test_post_hoc_rows_show_no_accuracy_and_rows_follow_table_1(results):
    for seed in (1, 2, 3):
        m = _m(40.0)
        m["classifier_acc"] = m.pop("Acc")  # what the engine records for post-hoc explainers
        _record(results, "beer-appearance", "attention", seed, m)
    _run("--results", str(results))
    table = (results / "table.md").read_text()
    lines = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| method")]
    order = [ln.split("|")[1].strip().strip("*") for ln in lines]
    assert order[:3] == ["attention", "rnp", "ver"]  # Table 1 order, not alphabetical
    attention = lines[0].split("|")
    assert attention[3].strip() == "–"  # Acc column: not applicable
    summary = pd.read_csv(results / "summary.csv")
    assert not ((summary.method == "attention") & (summary.metric == "Acc")).any()


def _v2(root: Path, method: str, seed: int, metrics: dict, published_rule: dict, leak: str | None = None) -> None:
    """A schema-2 record with both selection rules' metrics (and optionally a label leak)."""
    rec = {"schema_version": 2, "status": "finished", "dataset": "beer-appearance", "method": method, "seed": seed,
           "profile": "quick", "config": {}, "config_hash": f"{method}00000", "device": "cpu",
           "seeds_requested": [1, 2], "versions": {"ratbench": "0.1.0", "torch": "2.13.0"}, "metrics": metrics,
           "selections": {"dev_acc_matched_s": {"epoch": 3, "how": "dev_acc_matched_s", "metrics": metrics},
                          "dev_acc": {"epoch": 1, "how": "dev_acc", "metrics": published_rule}},
           "curves": []}
    if leak:
        rec["label_leak"] = leak
    p = root / "runs" / "beer-appearance" / method / f"seed{seed}-{method}00000.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))


def test_selection_rule_is_chosen_and_named_and_label_leaks_are_never_best(tmp_path):
    for seed in (1, 2):
        _v2(tmp_path, "rnp", seed, _m(60.0 + seed), _m(50.0 + seed))
        # DMR choosing its generator with the gold label: the best F1 and Acc, but it used the test labels
        _v2(tmp_path, "dmr", seed, {**_m(90.0), "Acc": 99.0}, _m(88.0), leak="select_by=gold: gold label")
    _run("--results", str(tmp_path))
    table = (tmp_path / "table.md").read_text()
    assert "dev S is within the tolerance of the target (ratbench's rule)" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "**" not in rows["dmr ‡"] and "**61.5 (0.7)**" in rows["rnp"]  # F1 mean of 61, 62 is the best
    assert "‡: label-leaking, never marked best (dmr: select_by=gold: gold label)" in table
    summary = pd.read_csv(tmp_path / "summary.csv")
    f1 = summary[(summary.method == "rnp") & (summary.metric == "F1")].iloc[0]
    assert f1["mean"] == pytest.approx(61.5)
    _run("--results", str(tmp_path), "--out", str(tmp_path / "published"), "--selection", "dev_acc")
    table = (tmp_path / "published" / "table.md").read_text()
    assert "the epoch of best dev accuracy (the published rule)" in table
    f1 = pd.read_csv(tmp_path / "published" / "summary.csv")
    f1 = f1[(f1.method == "rnp") & (f1.metric == "F1")].iloc[0]
    assert f1["mean"] == pytest.approx(51.5)
    r = CliRunner().invoke(app, ["report", "--results", str(tmp_path), "--selection", "test_f1"])
    assert r.exit_code == 1 and "Unknown --selection" in r.output
