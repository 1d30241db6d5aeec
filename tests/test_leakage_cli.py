"""The leakage audit end to end: `data import` and `data info` report planted duplicates, a run on the repaired
splits trains without them, and `report` says when a table's test set overlaps its training data."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ratbench.cli.app import app
from tests.fixtures_data import HOTEL_ASPECTS, write_glove

HEAD = "task\tlabel\ttext\n"
HEAD_ANN = "task\tlabel\ttext\trationale\n"
WORDS = ["the", "room", "was", "great", "bad", "staff", "clean", "dirty", ".", "very", "quiet", "loud"]


def _rows(texts: list[tuple[int, str]], aspect: str, annotated: bool = False) -> str:
    lines = []
    for label, text in texts:
        row = f"hotel_{aspect}\t{label}\t{text}"
        if annotated:
            row += "\t" + " ".join("1" if t in ("great", "bad") else "0" for t in text.split())
        lines.append(row + "\n")
    return (HEAD_ANN if annotated else HEAD) + "".join(lines)


def _planted_hotel(base):
    """Train: 8 unique reviews plus a case/spacing variant of test review 0 and a copy of dev review 0.
    Dev: 3 reviews, one of them repeated inside dev. Test: 4 annotated reviews."""
    test = [(1, "the room was great ."), (0, "the room was bad ."), (1, "very quiet room ."), (0, "very loud room .")]
    dev = [(1, "the staff was great ."), (0, "the staff was bad ."), (1, "the staff was great .")]
    train = [(1, f"clean room {i} was great .") for i in range(4)] + [(0, f"dirty room {i} was bad .") for i in
    range(4)]
    train += [(1, "The  Room was GREAT ."), (0, "the staff was great .")]  # test[0] (case, spacing), dev[0]
    oracle, target = base / "data" / "oracle", base / "data" / "target"
    oracle.mkdir(parents=True)
    target.mkdir(parents=True)
    for a in HOTEL_ASPECTS:
        (oracle / f"hotel_{a}.train").write_text(_rows(train, a), encoding="utf-8")
        (oracle / f"hotel_{a}.dev").write_text(_rows(dev, a), encoding="utf-8")
        (target / f"hotel_{a}.train").write_text(_rows(test, a, annotated=True), encoding="utf-8")
    return base


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_audit_reports_planted_duplicates_and_repaired_runs_train_without_them(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    root, res = tmp_path / "root", tmp_path / "res"
    r = _invoke("data", "import", "hotel", _planted_hotel(tmp_path / "h"), "--data-root", root)
    assert r.exit_code == 0, r.output
    assert "hotel-location:" in r.output and "test in train" in r.output.lower()
    info = json.loads(_invoke("data", "info", "hotel-location", "--format", "json", "--data-root", root).output)
    overlaps, splits = info["leakage"]["overlaps"], info["leakage"]["splits"]
    # by hand: train has 5 positives and 5 negatives (balancing keeps all 10), one of them a variant of test[0],
    # one a copy of dev[0]; dev holds dev[0] twice
    repaired = json.loads(_invoke("data", "info", "hotel-location", "--format", "json", "--splits", "repaired",
                                  "--data-root", root).output)
    assert splits["dev"]["duplicates"] == 1  # dev review 0 twice
    assert overlaps["test_in_dev"]["count"] == 0
    assert repaired["leakage"]["overlaps"]["test_in_train"]["count"] == 0
    assert repaired["leakage"]["overlaps"]["dev_in_train"]["count"] == 0
    assert repaired["leakage"]["splits"]["dev"]["duplicates"] == 0
    dev_n = {s["split"]: s["n"] for s in repaired["splits"]}
    assert dev_n == {"train": 8, "dev": 2, "test": 4}  # 10 - 2 leaked = 4 + 4 (balanced); dev 3 - 1 repeat
    published_n = {s["split"]: s["n"] for s in info["splits"]}
    assert published_n == {"train": 10, "dev": 3, "test": 4}  # 5 positives / 5 negatives already balanced

    write_glove(tmp_path / "v.txt", WORDS + [str(i) for i in range(4)], dim=4)
    assert _invoke("data", "import", "vectors", tmp_path / "v.txt", "--name", "hv", "--data-root", root).exit_code == 0
    base = ["run", "--methods", "rnp", "--datasets", "hotel-location", "--seeds", "1", "--profile", "smoke",
            "--set", "vectors=hv", "--set", "epochs=1", "--set", "hidden_size=8", "--data-root", root]
    r = _invoke(*base, "--results", res / "published")
    assert r.exit_code == 0, r.output
    r = _invoke(*base, "--set", "splits=repaired", "--results", res / "repaired")
    assert r.exit_code == 0, r.output
    pub = json.loads(next((res / "published").glob("runs/*/rnp/*.json")).read_text())
    rep = json.loads(next((res / "repaired").glob("runs/*/rnp/*.json")).read_text())
    assert pub["status"] == rep["status"] == "finished"
    assert pub["leakage"]["overlaps"]["test_in_train"]["count"] == 1  # the case/spacing variant of test[0]
    assert pub["leakage"]["overlaps"]["dev_in_train"]["count"] == 2  # dev[0] and its repeat dev[2]
    assert rep["leakage"]["overlaps"]["test_in_train"]["count"] == 0 and rep["n_examples"]["train"] == 8
    assert rep["config"]["splits"] == "repaired" and pub["config_hash"] != rep["config_hash"]
    r = _invoke("report", "--results", res / "published")
    assert r.exit_code == 0 and "1 of 4 test reviews" in r.output and "splits=repaired" in r.output, r.output
    table = (res / "published" / "table.md").read_text()
    assert "Test data seen in training: Hotel-Location: 1 of 4 test reviews (25 %)" in table
    r = _invoke("report", "--results", res / "repaired")
    assert "Test data seen in training" not in (res / "repaired" / "table.md").read_text()
    assert "splits: repaired" in (res / "repaired" / "table.md").read_text()
