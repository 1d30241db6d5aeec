"""`ratbench report`'s faithfulness and plausibility table (faithfulness.md, nrg.csv): hand-made records, NRG
computed by hand over the compared set, full-text classifiers' accuracy labelled as such, the main table untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.results import aggregate

DATASET = "beer-appearance"
# row means; each metric is recorded as mean - d (seed 1) and mean + d (seed 2)
MEANS = {
    "rnp": {"Acc": 90.0, "comp_aopc": 0.2, "suff_aopc": 0.0, "auprc": 0.6, "F1": 60.0, "iou_f1": 0.3},
    "ver": {"Acc": 92.0, "comp_aopc": 0.3, "suff_aopc": -0.1, "auprc": 0.8, "F1": 80.0, "iou_f1": 0.5},
    "attention": {"classifier_acc": 94.0, "comp_aopc": 0.1, "suff_aopc": 0.1, "auprc": 0.4, "F1": 40.0,
                  "iou_f1": 0.1},
    "dmr": {"Acc": 95.0, "auprc": 0.9, "F1": 80.0, "iou_f1": 0.6},  # no AOPC: not in the NRG set
}
# by hand over {attention, rnp, ver}:
#   comp_aopc: rnp 1/2, ver 1, attention 0; suff_aopc (lower is better): rnp (0.1 - 0)/0.2 = 1/2, ver 1, att 0
#   plausibility (auprc, F1, iou_f1): rnp 1/2, ver 1, attention 0 on each
#   task (Acc; attention: its full-text classifier's 94): rnp 0, ver 1/2, attention 1
#   NRG: rnp (1/2 + 1/2 + 0)/3 = 1/3, ver (1 + 1 + 1/2)/3 = 5/6, attention (0 + 0 + 1)/3 = 1/3
NRG = {"rnp": 1 / 3, "ver": 5 / 6, "attention": 1 / 3}


def _record(root: Path, method: str, seed: int, metrics: dict) -> None:
    rec = {"schema_version": 1, "status": "finished", "dataset": DATASET, "method": method, "seed": seed,
           "profile": "quick", "config": {}, "config_hash": "abc123def0", "device": "cpu", "seeds_requested": [1, 2],
           "versions": {"ratbench": "0.1.0", "torch": "2.13.0"}, "metrics": metrics, "curves": []}
    p = root / "runs" / DATASET / method / f"seed{seed}-abc123def0.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))


def _write(root: Path, means: dict[str, dict[str, float]]) -> None:
    for method, values in means.items():
        for seed, sign in ((1, -1), (2, 1)):
            m = {k: v + sign * (1.0 if k in ("Acc", "classifier_acc", "F1") else 0.01) for k, v in values.items()}
            m.update({"S": 15.0, "P": m["F1"], "R": m["F1"]})
            if "comp_aopc" in values:
                m.update({"comprehensiveness": 2 * m["comp_aopc"], "sufficiency": 2 * m["suff_aopc"],
                          "comp_aopc_eraser_script": 1.2 * m["comp_aopc"],
                          "suff_aopc_eraser_script": 1.2 * m["suff_aopc"]})
            _record(root, method, seed, m)


@pytest.fixture
def results(tmp_path):
    _write(tmp_path, MEANS)
    return tmp_path


def _run(*args):
    r = CliRunner().invoke(app, ["report", *args])
    assert r.exit_code == 0, r.output
    return r


def _rows(md: str) -> dict[str, list[str]]:
    """method -> its cells, from the markdown table (header cells under "method")."""
    out = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


def test_faithfulness_table_nrg_and_its_set_by_hand(results):
    r = _run("--results", str(results))
    md = (results / "faithfulness.md").read_text()
    rows = _rows(md)
    header = rows["method"]
    assert header[:2] == ["Acc ↑", "Acc (full text) ↑"] and header[-2:] == ["NRG ↑", "seeds"]
    col = {name: i for i, name in enumerate(header)}
    # the post-hoc explainer's accuracy is its full-text classifier's, in its own column
    assert rows["attention"][col["Acc ↑"]] == "–" and rows["attention"][col["Acc (full text) ↑"]] == "**94.0 (1.4)**"
    assert rows["rnp"][col["Acc ↑"]] == "90.0 (1.4)" and rows["rnp"][col["Acc (full text) ↑"]] == "–"
    # probabilities and ratios with three decimals; sufficiency: the lowest is the best
    assert rows["ver"][col["suff AOPC ↓"]] == "**-0.100 (0.014)**"
    assert rows["rnp"][col["suff AOPC ↓"]] == "0.000 (0.014)"
    assert rows["ver"][col["comp AOPC (script) ↑"]] == "**0.360 (0.017)**"
    assert rows["ver"][col["AUPRC ↑"]] == "0.800 (0.014)" and rows["dmr"][col["AUPRC ↑"]] == "**0.900 (0.014)**"
    assert rows["rnp"][col["NRG ↑"]] == f"{NRG['rnp']:.3f}" and rows["ver"][col["NRG ↑"]] == f"**{NRG['ver']:.3f}**"
    assert rows["attention"][col["NRG ↑"]] == f"{NRG['attention']:.3f}" and rows["dmr"][col["NRG ↑"]] == "–"
    sentence = "NRG over 3 rows: attention, rnp, ver. Not in the set: dmr (no comp_aopc, suff_aopc)."
    assert sentence in md and sentence in " ".join(r.output.split())
    nrg = pd.read_csv(results / "nrg.csv").set_index("row")
    for row, value in NRG.items():
        assert nrg.loc[row, "nrg"] == pytest.approx(value, abs=1e-6), row
        assert nrg.loc[row, "compared_set"] == "attention;rnp;ver" and bool(nrg.loc[row, "in_set"])
    assert nrg.loc["ver", "nrg_task"] == pytest.approx(0.5, abs=1e-6)
    assert not bool(nrg.loc["dmr", "in_set"]) and nrg.loc["dmr", "excluded"] == "no comp_aopc, suff_aopc"


def test_the_main_table_is_the_same_with_or_without_the_second(results, tmp_path):
    _run("--results", str(results), "--out", str(tmp_path / "with"))
    _run("--results", str(results), "--out", str(tmp_path / "without"), "--no-faithfulness")
    assert (tmp_path / "with" / "table.md").read_text() == (tmp_path / "without" / "table.md").read_text()
    assert (tmp_path / "with" / "summary.csv").read_text() == (tmp_path / "without" / "summary.csv").read_text()
    assert not (tmp_path / "without" / "faithfulness.md").exists() and not (tmp_path / "without" / "nrg.csv").exists()
    main = (tmp_path / "with" / "table.md").read_text()
    assert "NRG" not in main and "| method | S | Acc | P | R | F1 | seeds |" in main


def test_columns_option_and_unknown_columns(results):
    _run("--results", str(results), "--columns", "classifier_acc,suff_aopc,nrg_faithfulness,nrg")
    rows = _rows((results / "faithfulness.md").read_text())
    assert rows["method"] == ["Acc (full text) ↑", "suff AOPC ↓", "NRG faith. ↑", "NRG ↑", "seeds"]
    assert rows["ver"][2] == "**1.000**" and rows["attention"][2] == "0.000"  # faithfulness part, by hand above
    r = CliRunner().invoke(app, ["report", "--results", str(results), "--columns", "Acc,nrgg"])
    assert r.exit_code == 1 and "Unknown --columns" in r.output


def test_an_explained_classifiers_acc_is_labelled_full_text(results, monkeypatch):
    """An explained classifier (UNIREX, REGEX) may record its full-text accuracy as `Acc`: the table moves it."""
    monkeypatch.setattr(aggregate, "full_text_classifier", lambda m: m in ("attention", "regex"))
    _write(results, {"regex": {"Acc": 96.0, "comp_aopc": 0.25, "suff_aopc": 0.05, "auprc": 0.7, "F1": 65.0,
                               "iou_f1": 0.4}})
    _run("--results", str(results))
    rows = _rows((results / "faithfulness.md").read_text())
    col = {name: i for i, name in enumerate(rows["method"])}
    assert rows["regex"][col["Acc ↑"]] == "–" and rows["regex"][col["Acc (full text) ↑"]] == "**96.0 (1.4)**"
    main = _rows((results / "table.md").read_text())
    assert main["regex"][1] == "**96.0 (1.4)**"  # the main table is left as recorded


def test_records_without_faithfulness_get_no_second_table(tmp_path):
    _write(tmp_path, {"rnp": {"Acc": 90.0, "F1": 60.0}})
    r = _run("--results", str(tmp_path), "--format", "md,csv,tex")
    assert not (tmp_path / "faithfulness.md").exists() and "no faithfulness table" in r.output


def test_tex_and_baseline(results):
    _run("--results", str(results), "--format", "md,csv,tex", "--baseline", "rnp")
    tex = (results / "faithfulness.tex").read_text()
    assert r"suff AOPC $\downarrow$" in tex and tex.count("{") == tex.count("}")
    assert "NRG over 3 rows" in tex
    assert "paired t-test vs rnp" in (results / "faithfulness.md").read_text()
