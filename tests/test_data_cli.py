"""`ratbench data import / info / fetch / list` end to end on fixture files; downloads from 127.0.0.1."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.data.embeddings import corpus_embeddings, read_vectors
from ratbench.errors import DataFormatError
from tests.fixtures_data import beer_line, write_beer_dir, write_glove, write_hotel_tree, write_r2a_zip
from tests.httpserver import FixtureServer

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _beer_fixture(tmp_path):
    # aspect 0 scores: train has 4 positives (0.8, 0.6, 0.9, 1.0), 2 negatives (0.4, 0.2), one middle (0.5)
    train = [beer_line([s, 0.8, 0.8, 0.8, 0.8], " ".join(["w"] * n)) for s, n in
             [(0.8, 10), (0.4, 20), (0.6, 30), (0.5, 40), (0.9, 4), (0.2, 6), (1.0, 8)]]
    dev = [beer_line([s, 0.8, 0.8, 0.8, 0.8], "a b c") for s in (0.8, 0.1, 0.7)]
    long_x = ["t"] * 300
    annotations = [
        {"x": long_x, "y": [0.9, 0.9, 0.9, 0, 0], "0": [[250, 280]], "1": [[0, 1]], "2": []},  # 6 gold in 256
        {"x": list("abcdefghij"), "y": [0.2, 0.9, 0.9, 0, 0], "0": [[0, 4]], "1": [], "2": []},  # 4 gold
        {"x": list("abcd"), "y": [0.9, 0.9, 0.9, 0, 0], "0": [], "1": [[0, 2]], "2": []},  # skipped: empty
    ]
    return write_beer_dir(tmp_path / "lei", train, dev, annotations)


def test_import_beer_and_info_json_by_hand(tmp_path):
    root = tmp_path / "root"
    r = _invoke("data", "import", "beer", _beer_fixture(tmp_path), "--data-root", root)
    assert r.exit_code == 0, r.output
    manifest = json.loads((root / "manifest.json").read_text())
    assert "beer/annotations.json" in manifest and len(manifest["beer/annotations.json"]["sha256"]) == 64
    r = _invoke("data", "info", "beer-appearance", "--format", "json", "--data-root", root)
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    splits = {s["split"]: s for s in info["splits"]}
    assert info["dataset"] == "beer-appearance"
    # train: 4 pos / 2 neg -> balanced 2 / 2; avg_len of the kept two positives depends on the seeded draw
    assert (splits["train"]["n"], splits["train"]["n_pos"], splits["train"]["n_neg"]) == (4, 2, 2)
    import random

    kept = random.Random(20226666).sample([10, 30, 4, 8], 2)
    assert splits["train"]["avg_len"] == pytest.approx((sum(kept) + 20 + 6) / 4)
    assert (splits["dev"]["n"], splits["dev"]["n_pos"], splits["dev"]["n_neg"]) == (3, 2, 1)
    assert splits["dev"]["avg_len"] == 3
    assert (splits["test"]["n"], splits["test"]["n_pos"], splits["test"]["n_neg"]) == (2, 1, 1)
    assert splits["test"]["avg_len"] == pytest.approx((300 + 10) / 2)
    # gold after truncation to 256: (256-250) + 4 = 10 gold of 256 + 10 tokens
    assert splits["test"]["gold_sparsity"] == pytest.approx(100 * 10 / 266)
    assert splits["test"]["gold_sparsity_untruncated"] == pytest.approx(100 * 34 / 310)


def test_import_refuses_bad_files_and_leaves_nothing(tmp_path):
    src = _beer_fixture(tmp_path)
    (src / "annotations.json").write_text('{"x": ["a"], "y": [1,1,1,1,1], "0": [[0, 5]]}\n')
    root = tmp_path / "root"
    r = _invoke("data", "import", "beer", src, "--data-root", root)
    assert r.exit_code == 1 and "annotations.json, line 1" in r.output and "Traceback" not in r.output
    assert not (root / "beer").exists()


@pytest.mark.parametrize("layout", ["zip", "r2a", "flat"])
def test_import_hotel_layouts(tmp_path, layout):
    if layout == "zip":
        src = write_r2a_zip(tmp_path / "data.zip", tmp_path)
    else:
        src = write_hotel_tree(tmp_path / "h", "r2a" if layout == "r2a" else "flat")
    root = tmp_path / "root"
    r = _invoke("data", "import", "hotel", src, "--data-root", root)
    assert r.exit_code == 0, r.output
    info = json.loads(_invoke("data", "info", "hotel-service", "--format", "json", "--data-root", root).output)
    splits = {s["split"]: s for s in info["splits"]}
    assert (splits["train"]["n_pos"], splits["train"]["n_neg"]) == (4, 4)  # 6/4 balanced
    assert splits["dev"]["n"] == 6 and splits["test"]["n"] == 4
    assert splits["test"]["gold_sparsity"] == pytest.approx(100 * 2 / 6)


def test_zip_with_parent_path_is_refused(tmp_path):
    import zipfile

    bad = tmp_path / "data.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil.txt", "x")
    r = _invoke("data", "import", "hotel", bad, "--data-root", tmp_path / "root")
    assert r.exit_code == 1 and "refusing archive member" in r.output


def test_read_vectors_formats_and_errors(tmp_path):
    words = ["the", "cat", "sat"]
    for name, header in (("v.txt", False), ("w2v.txt", True), ("w2v.gz", True)):
        kv = read_vectors(write_glove(tmp_path / name, words, header=header))
        assert kv.index_to_key == words and kv.vector_size == 5
        assert kv["cat"][0] == pytest.approx(0.2)
    p = tmp_path / "bad.txt"
    cases = [
        ("a 1 2 3\nb 1 2\n", "ragged", 2),
        ("a 1 2 3\n\nb 1 2 3\n", "blank line", 2),
        ("a 1 2 3\na 4 5 6\n", "duplicate word", 2),
        ("2 3\na 1 2 3\n", "header announces 2", None),
        ("a 1 2 3\nb 1 x 3\n", "non-numeric", 2),
    ]
    for text, message, line in cases:
        p.write_text(text)
        with pytest.raises(DataFormatError, match=message) as err:
            read_vectors(p)
        if line:
            assert f"line {line}" in str(err.value)
    short = tmp_path / "glove.6B.100d.txt"
    write_glove(short, words)
    with pytest.raises(DataFormatError, match="400000 rows"):
        read_vectors(short)


def test_corpus_embeddings_rows_and_cache(tmp_path, monkeypatch):
    vec = write_glove(tmp_path / "v.txt", ["the", "cat", "sat", "mat"])
    words, matrix = corpus_embeddings(vec, {"mat", "cat", "dog"}, tmp_path / "cache")
    assert words == ["", "cat", "mat"]  # file order, row 0 reserved, OOV 'dog' absent
    assert np.all(matrix[0] == 0) and matrix[1][0] == pytest.approx(0.2) and matrix.dtype == np.float32

    def boom(*a, **k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr("ratbench.data.embeddings.read_vectors", boom)
    words2, matrix2 = corpus_embeddings(vec, {"mat", "cat", "dog"}, tmp_path / "cache")
    assert words2 == words and np.array_equal(matrix, matrix2)


def test_import_glove_txt_zip_gz(tmp_path):
    import zipfile

    src = write_glove(tmp_path / "small.txt", ["a", "b"])
    zpath = tmp_path / "glove.6B.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("glove.6B.50d.txt", "a 1\n")
        zf.writestr("glove.6B.100d.txt", src.read_text())
    root = tmp_path / "root"
    # the Stanford member must have 400,000 rows: a small one is refused and nothing is placed
    r = _invoke("data", "import", "glove", zpath, "--data-root", root)
    assert r.exit_code == 1 and "400000 rows" in r.output
    assert not (root / "glove" / "glove.6B.100d.txt").exists()
    # a file named like gensim's GloVe that is not GloVe 6B-100d: refused, with the way to import it anyway
    gz = write_glove(tmp_path / "glove-wiki-gigaword-100.gz", ["a", "b"], header=True)
    r = _invoke("data", "import", "glove", gz, "--data-root", root)
    assert r.exit_code == 1 and "holds 2 rows of 5 values" in r.output and "data import vectors" in r.output
    assert not (root / "glove").exists() or not any((root / "glove").iterdir())


def test_any_vector_file_becomes_a_named_resource(tmp_path, monkeypatch):
    """What `data import` accepts, a run can select: a named resource for anything that is not GloVe 6B-100d,
    and GloVe 6B-100d content under its canonical name whatever the file is called."""
    root = tmp_path / "root"
    other = write_glove(tmp_path / "glove.840B.300d.txt", ["a", "b", "c"], dim=3)
    r = _invoke("data", "import", "glove", other, "--data-root", root)
    assert r.exit_code == 0, r.output
    assert (root / "vectors" / "glove.840B.300d.txt").exists() and "--set vectors=glove.840B.300d" in r.output
    gz = write_glove(tmp_path / "mine.gz", ["a", "b"], header=True)
    r = _invoke("data", "import", "vectors", gz, "--name", "tiny", "--data-root", root)
    assert r.exit_code == 0 and (root / "vectors" / "tiny.gz").exists(), r.output
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at the terminal's width
    r = _invoke("data", "list", "--data-root", root)
    assert "tiny (vectors)" in r.output and "glove.840B.300d (vectors)" in r.output
    # a renamed copy of GloVe 6B-100d (shape shrunk here so the fixture stays small) lands where runs find it
    monkeypatch.setattr("ratbench.data.vectors.GLOVE_SHAPE", (2, 5))
    renamed = write_glove(tmp_path / "my-glove-copy.txt", ["a", "b"])
    r = _invoke("data", "import", "glove", renamed, "--data-root", root)
    assert r.exit_code == 0 and (root / "glove" / "glove.6B.100d.txt").exists(), r.output


def test_a_run_on_beer_uses_the_vectors_its_setting_names(tmp_path):
    root, res = tmp_path / "root", tmp_path / "res"
    assert _invoke("data", "import", "beer", _beer_fixture(tmp_path), "--data-root", root).exit_code == 0
    args = ["run", "--methods", "rnp", "--datasets", "beer-appearance", "--seeds", "1", "--profile", "smoke",
            "--set", "hidden_size=8", "--set", "epochs=1", "--data-root", root, "--results", res]
    r = _invoke(*args)
    assert r.exit_code == 1 and "GloVe vectors (glove-6b-100d) are not in" in r.output
    write_glove(tmp_path / "w.txt", ["w", "a", "b", "c", "t"], dim=4)
    assert _invoke("data", "import", "vectors", tmp_path / "w.txt", "--name", "fixture-vectors",
                   "--data-root", root).exit_code == 0
    r = _invoke(*args, "--set", "vectors=fixture-vectors")
    assert r.exit_code == 0, r.output
    rec = json.loads(next(res.glob("runs/beer-appearance/rnp/*.json")).read_text())
    assert rec["status"] == "finished", rec.get("error")
    assert rec["vectors"] == "fixture-vectors" and rec["config"]["vectors"] == "fixture-vectors"
    assert any(k.endswith("vectors/fixture-vectors.txt") for k in rec["data"])
    r = _invoke(*args, "--set", "vectors=nope")
    assert r.exit_code == 1 and "No word vectors named 'nope'" in r.output and "fixture-vectors" in r.output


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def _leftovers(root):
    return [p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"]


def test_fetch_hotel_success_and_failures(tmp_path, server, monkeypatch):
    body = write_r2a_zip(tmp_path / "data.zip", tmp_path).read_bytes()
    server.files["data.zip"] = body
    monkeypatch.setenv("RATBENCH_MIRROR", server.url)
    monkeypatch.setenv("RATBENCH_EXPECTED_SHA256_HOTEL", hashlib.sha256(body).hexdigest())
    root = tmp_path / "root"
    r = _invoke("data", "fetch", "hotel", "--data-root", root)
    assert r.exit_code == 0, r.output
    assert (root / "hotel" / "data" / "target" / "hotel_Location.train").exists()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["downloads/data.zip"]["source"].endswith("/data.zip")
    assert not list(root.rglob("*.part"))

    for case in ("checksum", "truncated", "404"):
        root = tmp_path / f"root-{case}"
        server.truncate.clear()
        monkeypatch.setenv("RATBENCH_EXPECTED_SHA256_HOTEL", hashlib.sha256(body).hexdigest())
        if case == "checksum":
            monkeypatch.setenv("RATBENCH_EXPECTED_SHA256_HOTEL", "0" * 64)
        elif case == "truncated":
            server.truncate.add("data.zip")
        else:
            monkeypatch.setenv("RATBENCH_MIRROR", server.url + "/missing")
        r = _invoke("data", "fetch", "hotel", "--data-root", root)
        assert r.exit_code == 1, (case, r.output)
        assert "Traceback" not in r.output
        expected = {"checksum": "was expected", "truncated": "cut short", "404": "404"}[case]
        assert expected in r.output, (case, r.output)
        assert _leftovers(root) == [], case
        monkeypatch.setenv("RATBENCH_MIRROR", server.url)


def test_fetch_beer_explains_and_list_shows_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at the terminal's width
    r = _invoke("data", "fetch", "beer", "--data-root", tmp_path)
    assert r.exit_code == 1 and "ratbench data import beer DIR" in r.output
    r = _invoke("data", "list", "--data-root", tmp_path)
    assert r.exit_code == 0 and "beer-appearance" in r.output and "ratbench data fetch hotel" in r.output
    # how to get a dataset is shown only while it is missing
    assert _invoke("data", "import", "hotel", write_hotel_tree(tmp_path / "h"), "--data-root", tmp_path).exit_code == 0
    r = _invoke("data", "list", "--data-root", tmp_path)
    assert r.exit_code == 0 and "data fetch hotel" not in r.output and "data import beer" in r.output, r.output
