"""The ERASER dataset family through the CLI: catalog entries, `data fetch` from a server on 127.0.0.1 (success and
every refusal leaving nothing behind), `data import` of archives and folders in both document layouts, and
`data info` against hand counts of the fixtures (tests/fixtures_eraser.py)."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.data.catalog import DATASETS, expand_datasets
from ratbench.data.formats.eraser import PUBLISHED_TASKS
from ratbench.data.loading import load_text_corpus
from tests.fixtures_eraser import (
    FEVER_DOCS,
    ev,
    rec,
    tar_tree,
    task_archive,
    traversal_tar,
    write_task,
    write_task_dir,
)
from tests.httpserver import FixtureServer

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def _cache_files(root):
    """What a failed fetch must not leave: anything but the manifest and the pin store."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name not in ("manifest.json", "pins.json"))


def test_catalog_has_the_seven_tasks_and_the_variants_apart():
    assert expand_datasets("eraser") == [f"eraser-{t.replace('_', '-')}" for t in PUBLISHED_TASKS]
    assert expand_datasets("eraser-variants") == ["eraser-esnli-flat", "eraser-cose-simplified"]
    esnli, cose = DATASETS.get("eraser-esnli"), DATASETS.get("eraser-cose")
    assert esnli.num_classes == 3 and cose.num_classes == 5 and not esnli.balance_train
    assert DATASETS.get("eraser-movies").remote.digest == \
        "sha256:66e18d4e6c9df9e9f5544572b0bfe92a39673f74ecbfc3859b46cedb2f5b2dee"
    assert DATASETS.get("eraser-movies").remote.size == 3_899_487
    assert DATASETS.get("eraser-multirc").remote.size == 1_667_550
    assert DATASETS.get("eraser-fever").remote.digest is None  # recorded on first download
    assert DATASETS.get("eraser-esnli-flat").remote.url.endswith("/esnli.tar.gz")


def test_fetch_places_validates_and_records(tmp_path, server, monkeypatch):
    movies = task_archive(tmp_path / "movies.tar.gz", tmp_path, "movies").read_bytes()
    server.files["movies.tar.gz"] = movies
    server.files["fever.tar.gz"] = task_archive(tmp_path / "fever.tar.gz", tmp_path, "fever").read_bytes()
    server.files["cose.tar.gz"] = task_archive(tmp_path / "cose.tar.gz", tmp_path, "cose").read_bytes()
    monkeypatch.setenv("RATBENCH_MIRROR", server.url)
    monkeypatch.setenv("RATBENCH_EXPECTED_SHA256_ERASER_MOVIES", hashlib.sha256(movies).hexdigest())
    root = tmp_path / "root"
    r = _invoke("data", "fetch", "eraser-movies", "eraser-fever", "eraser-cose", "--data-root", root)
    assert r.exit_code == 0, r.output
    assert "recorded on first download" in r.output  # fever and cose have no published digest
    manifest = json.loads((root / "manifest.json").read_text())
    docs = manifest["eraser/movies/movies/docs"]
    assert docs["files"] == 2 and len(docs["sha256"]) == 64 and docs["source"].endswith("/movies.tar.gz")
    assert "eraser/fever/fever/docs.jsonl" in manifest and "eraser/fever/fever/test.jsonl" in manifest
    assert "eraser/cose/data/cose/train.jsonl" in manifest  # cose unpacks under data/cose/
    assert "eraser/cose/data/cose_simplified/train.jsonl" in manifest  # the variant came along, recorded
    pins = json.loads((root / "pins.json").read_text())
    assert set(pins) == {"eraser/fever.tar.gz", "eraser/cose.tar.gz"}
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.partial"))
    cose = load_text_corpus("eraser-cose", root)
    assert cose.label_names == ["A", "B", "C", "D", "E"] and cose.train.labels == [1]
    assert len(load_text_corpus("eraser-cose-simplified", root).train) == 1
    r = _invoke("data", "list", "--data-root", root)
    assert r.exit_code == 0 and "eraser-movies" in r.output


def test_every_failed_fetch_says_why_and_leaves_nothing(tmp_path, server, monkeypatch):
    good = task_archive(tmp_path / "fever.tar.gz", tmp_path, "fever").read_bytes()
    server.files["fever.tar.gz"] = good
    server.files["movies.tar.gz"] = task_archive(tmp_path / "movies.tar.gz", tmp_path, "movies").read_bytes()
    server.files["multirc.tar.gz"] = traversal_tar(tmp_path / "bad.tar.gz", "multirc").read_bytes()
    # a BoolQ-like task whose test evidence text is not what its offsets read: refused before anything is placed
    bad = {split: [rec(f"b{i}", "True", [[ev("Example_Town", 0, 2, "Another Town" if split == "test" else
                                            "Example Town")]], "Is it a town ?", ["Example_Town"])]
           for i, split in enumerate(("train", "val", "test"))}
    src = write_task_dir(tmp_path / "badtext" / "boolq", bad, FEVER_DOCS, "docs.jsonl")
    server.files["boolq.tar.gz"] = tar_tree(tmp_path / "boolq.tar.gz", src.parent).read_bytes()
    monkeypatch.setenv("RATBENCH_MIRROR", server.url)
    cases = {
        "wrong digest": ("eraser-fever", {"RATBENCH_EXPECTED_SHA256_ERASER_FEVER": "0" * 64}, "was expected"),
        "pinned size": ("eraser-movies", {}, "3,899,487 bytes"),
        "truncated": ("eraser-fever", {}, "cut short"),
        "404": ("eraser-evidence-inference", {}, "404"),
        "path traversal": ("eraser-multirc", {"RATBENCH_EXPECTED_SHA256_ERASER_MULTIRC": hashlib.sha256(
            server.files["multirc.tar.gz"]).hexdigest()}, "'..' component"),
        "evidence text": ("eraser-boolq", {}, "but its text is"),
    }
    for label, (name, env, expected) in cases.items():
        for key in ("RATBENCH_EXPECTED_SHA256_ERASER_FEVER", "RATBENCH_EXPECTED_SHA256_ERASER_MULTIRC"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        server.truncate = {"fever.tar.gz"} if label == "truncated" else set()
        root = tmp_path / f"root-{label.replace(' ', '-')}"
        r = _invoke("data", "fetch", name, "--data-root", root)
        assert r.exit_code == 1, (label, r.output)
        assert expected in r.output and "Traceback" not in r.output, (label, r.output)
        assert _cache_files(root) == [], (label, _cache_files(root))
        assert not (root / "pins.json").exists() or json.loads((root / "pins.json").read_text()) == {}, label
    assert not (tmp_path / "escaped.txt").exists()


def test_import_archive_and_folders_in_both_layouts(tmp_path):
    root = tmp_path / "root"
    archive = task_archive(tmp_path / "movies.tar.gz", tmp_path, "movies")  # docs/
    r = _invoke("data", "import", "eraser-movies", archive, "--data-root", root)  # a dataset name works too
    assert r.exit_code == 0, r.output
    assert "eraser-movies: test in train" in r.output  # the leakage audit of what was placed
    folder = write_task(tmp_path / "mine", "fever")  # docs.jsonl, a folder named after its task
    r = _invoke("data", "import", "eraser", folder, "--data-root", root)
    assert r.exit_code == 0, r.output
    assert "eraser-fever" in r.output and "eraser-movies" not in r.output
    fever = load_text_corpus("eraser-fever", root)
    assert fever.train.documents[1] == [("Example_Town", 0, 14), ("North_Region", 14, 19)]  # kept distinct
    assert fever.train.queries[0] == ["Example", "Town", "is", "in", "the", "north", "."]
    as_docs = write_task(tmp_path / "again", "fever", layout="docs")  # the same task with docs/ instead
    assert _invoke("data", "import", "eraser", as_docs, "--data-root", root).exit_code == 0
    again = load_text_corpus("eraser-fever", root)
    assert again.train.tokens == fever.train.tokens and again.train.spans == fever.train.spans
    bad = write_task(tmp_path / "bad", "multirc")
    (bad / "test.jsonl").write_text('{"annotation_id": "x"\n')
    r = _invoke("data", "import", "eraser", bad, "--data-root", root)
    assert r.exit_code == 1 and "test.jsonl, line 1" in r.output
    assert not (root / "eraser" / "multirc").exists()
    r = _invoke("data", "import", "eraser", tmp_path / "nothing-here", "--data-root", root)
    assert r.exit_code == 1


def test_info_json_by_hand(tmp_path):
    root = tmp_path / "root"
    assert _invoke("data", "import", "eraser", write_task(tmp_path / "m", "movies"), "--data-root", root).exit_code == 0
    r = _invoke("data", "info", "eraser-movies", "--format", "json", "--data-root", root)
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    train = {s["split"]: s for s in info["splits"]}["train"]
    # negR_000.txt: 10 tokens, evidence tokens {2, 3, 4, 7, 8, 9}; posR_001.txt: 6 tokens, no evidence
    assert train["n"] == 2 and train["class_counts"] == {"NEG": 1, "POS": 1}
    assert train["mean_document_tokens"] == 8.0 and train["examples_without_evidence"] == 1
    assert train["evidence_sparsity_macro"] == pytest.approx(0.6)
    assert "left out of every rationale metric" in info["eraser"]["no_evidence"]
    published = [c for c in info["eraser"]["comparison"] if c["split"] == "train" and c["metric"] == "examples"]
    assert {c["published"] for c in published} == {1600, 1599} and all(c["ours"] == 2 for c in published)
    assert "test_in_train" in info["leakage"]["overlaps"]
    assert any(k.endswith("eraser/movies/movies/docs") for k in info["files"])
    r = _invoke("data", "info", "eraser-movies", "--data-root", root)
    assert r.exit_code == 0 and "no evidence" in r.output and "1600" in r.output
