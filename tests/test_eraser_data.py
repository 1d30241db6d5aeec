"""ERASER: reader on the published layout, statistics, safe unpacking and fetching from a local server.

Expected values are worked out by hand from the fixture documents in tests/fixtures_eraser.py.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

import numpy as np
import pytest

from ratbench.data.archives import find_task_root, safe_extract_tar, safe_extract_zip
from ratbench.data.formats.eraser import (
    ERASER_TASKS,
    PUBLISHED_TASKS,
    corpus_statistics,
    fetch_eraser_task,
    has_evidence,
    read_eraser_corpus,
    split_document,
)
from ratbench.data.remote import fetch_file
from ratbench.errors import DataFormatError, DownloadError
from tests.fixtures_eraser import (
    FEVER,
    FEVER_DOCS,
    MOVIES,
    MOVIES_DOCS,
    MULTIRC,
    MULTIRC_DOCS,
    ev,
    jsonl,
    rec,
    symlink_tar,
    tar_tree,
    task_archive,
    traversal_tar,
    traversal_zip,
    write_task,
    write_task_dir,
)
from tests.httpserver import FixtureServer


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _mask(n, ones):
    m = np.zeros(n, np.uint8)
    m[list(ones)] = 1
    return m


# --- reader ---------------------------------------------------------------------------------------------------


def test_flattening_drops_empty_lines_and_double_spaces():
    assert split_document("the film  is bad .\n\n really , truly bad !\n") == \
        ["the", "film", "is", "bad", ".", "really", ",", "truly", "bad", "!"]


def test_movies_docs_dir_overlap_adjacent_and_no_evidence(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "movies"), "movies")
    assert c.label_names == ["NEG", "POS"]
    tr = c.train
    assert tr.ids == ["negR_000.txt", "posR_001.txt"]
    assert tr.labels == [0, 1]
    assert tr.tokens[0] == ["the", "film", "is", "bad", ".", "really", ",", "truly", "bad", "!"]
    assert tr.queries is None  # the constant Movies query is dropped
    assert tr.spans[0] == [(2, 4), (3, 5), (7, 9), (9, 10)]  # as given: overlapping and adjacent kept apart
    np.testing.assert_array_equal(tr.gold[0], _mask(10, [2, 3, 4, 7, 8, 9]))
    assert tr.documents[0] == [("negR_000.txt", 0, 10)]
    # the review without evidence is kept, all-zero, flagged and counted
    assert tr.tokens[1] == ["a", "fine", ",", "fine", "movie", "."]
    assert tr.spans[1] == [] and tr.gold[1].tolist() == [0] * 6
    assert has_evidence(tr) == [True, False]
    assert tr.counts["no_evidence"] == 1
    assert (len(c.dev), len(c.test)) == (1, 1) and c.dev.counts["no_evidence"] == 1


def test_multirc_query_is_separate_and_docid_comes_from_annotation_id(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "multirc"), "multirc")
    tr = c.train
    assert tr.labels == [1, 0]  # True, False
    assert tr.queries[0] == ["What", "did", "Mia", "pack", "?", "||", "apples", "and", "a", "map"]
    assert len(tr.tokens[0]) == 15 and "||" not in tr.tokens[0]
    assert tr.documents[0] == [("story-1.txt", 0, 15)]
    assert tr.spans[0] == [(7, 15)]
    np.testing.assert_array_equal(tr.gold[0], _mask(15, range(7, 15)))
    assert tr.spans[1] == [(0, 7), (7, 15)] and int(tr.gold[1].sum()) == 15
    st = corpus_statistics(c, "multirc")["splits"]["train"]
    assert st["mean_query_tokens"] == (10 + 8) / 2  # "What did Mia pack ? || a hat" has 8
    assert st["evidence_sparsity_macro"] == pytest.approx((8 / 15 + 1.0) / 2)  # query not in the denominator


def test_fever_docs_jsonl_and_two_documents(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "fever"), "fever")
    ex = 1  # 900002 refers to two pages
    tr = c.train
    assert tr.ids == ["900001", "900002"] and tr.labels == [1, 0]  # SUPPORTS, REFUTES
    assert tr.documents[ex] == [("Example_Town", 0, 14), ("North_Region", 14, 19)]
    assert tr.tokens[ex][14:] == ["The", "north", "is", "cold", "."]
    assert tr.spans[ex] == [(9, 14), (14, 19)]
    np.testing.assert_array_equal(tr.gold[ex], _mask(19, range(9, 19)))
    assert tr.queries[ex] == ["Example", "Town", "has", "no", "church", "."]


def test_esnli_premise_and_hypothesis_stay_distinct(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "esnli"), "esnli")
    tr = c.train
    assert tr.labels == [0, 2, 1]  # entailment, contradiction, neutral
    assert tr.documents[0] == [("p1_premise", 0, 8), ("p1_hypothesis", 8, 14)]
    assert tr.spans[0] == [(2, 5), (11, 13)]
    np.testing.assert_array_equal(tr.gold[0], _mask(14, [2, 3, 4, 11, 12]))
    assert tr.documents[1] == [("p2_premise", 0, 4), ("p2_hypothesis", 4, 8)] and tr.spans[1] == [(6, 7)]
    assert tr.spans[2] == [] and tr.counts["no_evidence"] == 1


def test_both_document_layouts_read_the_same(tmp_path):
    a = read_eraser_corpus(write_task(tmp_path / "a", "movies", "docs"), "movies")
    b = read_eraser_corpus(write_task(tmp_path / "b", "movies", "docs.jsonl"), "movies")
    assert a.train.tokens == b.train.tokens and a.train.spans == b.train.spans


def test_cose_letters_and_answer_choices(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "cose"), "cose")
    assert c.label_names == ["A", "B", "C", "D", "E"] and c.train.labels == [1]
    assert c.train.tokens[0] == ["Where", "would", "you", "borrow", "a", "book", "?"]
    assert c.train.queries[0] == ["bank", "[sep]", "library", "[sep]", "park", "[sep]", "school", "[sep]", "shop"]
    assert c.train.spans[0] == [(3, 6)]


def _task(tmp_path, splits, docs=MOVIES_DOCS, layout="docs"):
    return write_task_dir(tmp_path / "t", splits, docs, layout)


def _with_train(records):
    return {"train": records, "val": MOVIES["val"], "test": MOVIES["test"]}


@pytest.mark.parametrize("bad, expected", [
    ("not json", "malformed JSON"),
    (json.dumps({k: v for k, v in MOVIES["train"][0].items() if k != "classification"}),
     "missing key 'classification'"),
    (json.dumps({**MOVIES["train"][0], "classification": "MAYBE"}), "unknown label 'MAYBE'"),
    (json.dumps({**MOVIES["train"][0], "evidences": [[ev("other.txt", 0, 1, "the")]]}), "not one of the example's"),
    (json.dumps({**MOVIES["train"][0], "evidences": [[ev("negR_000.txt", 8, 11, "bad ! x")]]}), "ends past"),
    (json.dumps({**MOVIES["train"][0], "evidences": [[ev("negR_000.txt", 0, 2, "the movie")]]}), "reads 'the film'"),
    (json.dumps({**MOVIES["train"][0], "evidences": [[{"docid": "negR_000.txt", "start_token": 0}]]}),
     "missing keys 'end_token', 'text'"),
])
def test_bad_records_name_file_and_line(tmp_path, bad, expected):
    d = _task(tmp_path, _with_train([]))
    (d / "train.jsonl").write_text(jsonl([MOVIES["train"][1]]) + bad + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_eraser_corpus(d, "movies")
    assert expected in str(err.value)
    assert err.value.line == 2 and err.value.path.endswith("train.jsonl")


def test_lenient_text_check_counts_instead(tmp_path):
    wrong = {**MOVIES["train"][0], "evidences": [[ev("negR_000.txt", 0, 2, "the movie")],
                                                 [ev("negR_000.txt", 2, 4, "is  bad")]]}  # second: spacing only
    c = read_eraser_corpus(_task(tmp_path, _with_train([wrong])), "movies", strict=False)
    assert c.train.counts["evidence_text_mismatch"] == 1 and c.train.counts["evidence_text_whitespace"] == 1
    assert c.train.spans[0] == [(0, 2), (2, 4)]  # offsets are canonical


def test_missing_document_is_counted_or_an_error(tmp_path):
    ghost = rec("negR_999.txt", "NEG", [[ev("negR_999.txt", 0, 1, "x")]], "What is the sentiment of this review?")
    d = _task(tmp_path, _with_train([MOVIES["train"][0], ghost]))
    c = read_eraser_corpus(d, "movies")
    assert len(c.train) == 1 and c.train.counts["missing_document"] == 1
    with pytest.raises(DataFormatError, match="negR_999.txt"):
        read_eraser_corpus(d, "movies", missing_documents="error")


def test_example_naming_no_document_is_counted(tmp_path):
    orphan = rec("900009", "SUPPORTS", [], "A claim .", None)  # FEVER lists docids; this one lists none
    d = write_task_dir(tmp_path / "f", {**FEVER, "train": [FEVER["train"][0], orphan]}, FEVER_DOCS, "docs.jsonl")
    c = read_eraser_corpus(d, "fever")
    assert c.train.ids == ["900001"] and c.train.counts["no_docid"] == 1
    with pytest.raises(DataFormatError, match="cannot be identified"):
        read_eraser_corpus(d, "fever", missing_documents="error")


def test_both_document_layouts_at_once_is_an_error(tmp_path):
    d = _task(tmp_path, MOVIES)
    (d / "docs.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="both docs/ and docs.jsonl"):
        read_eraser_corpus(d, "movies")


def test_task_table_is_complete():
    assert set(PUBLISHED_TASKS) == {"movies", "multirc", "fever", "boolq", "evidence_inference", "cose", "esnli"}
    movies, multirc = ERASER_TASKS["movies"], ERASER_TASKS["multirc"]
    assert movies.url == "https://www.eraserbenchmark.com/zipped/movies.tar.gz"
    assert (movies.size, movies.sha256[:8]) == (3_899_487, "66e18d4e")
    assert (multirc.size, multirc.sha256[:8]) == (1_667_550, "7d3364fa")
    assert ERASER_TASKS["fever"].sha256 is None
    assert ERASER_TASKS["esnli_flat"].scored_as == "esnli" and ERASER_TASKS["cose_simplified"].archive == "cose"
    assert all(t.licence and t.citation for t in ERASER_TASKS.values())


def test_statistics_next_to_published(tmp_path):
    c = read_eraser_corpus(write_task(tmp_path, "movies"), "movies")
    st = corpus_statistics(c, "movies")
    tr = st["splits"]["train"]
    assert tr["examples"] == 2 and tr["class_counts"] == {"NEG": 1, "POS": 1}
    assert tr["mean_document_tokens"] == 8.0 and tr["examples_without_evidence"] == 1
    assert tr["evidence_sparsity_macro"] == pytest.approx(0.6)  # 6 of 10 tokens, the other review excluded
    assert st["published"]["train"]["examples"]["value"] == 1600
    assert any(r["metric"] == "examples" and r["published"] == 1600 and r["ours"] == 2 for r in st["comparison"])


# --- archives -------------------------------------------------------------------------------------------------


def test_refused_archives_leave_nothing(tmp_path):
    cases = {"traversal": traversal_tar(tmp_path / "t.tar.gz"),
             "symlink": symlink_tar(tmp_path / "s.tar.gz"),
             "absolute-symlink": symlink_tar(tmp_path / "a.tar.gz", target="/etc")}
    for label, archive in cases.items():
        root = tmp_path / f"out-{label}"
        with pytest.raises(DataFormatError, match="refused"):
            safe_extract_tar(archive, root / "fever")
        assert not root.exists() or _files(root) == [], label
        assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "outside").exists()
    with pytest.raises(DataFormatError, match="refused"):
        safe_extract_zip(traversal_zip(tmp_path / "z.zip"), tmp_path / "zout" / "fever")
    assert not (tmp_path / "zout").exists() or _files(tmp_path / "zout") == []


def test_link_to_dot_then_parent_is_refused(tmp_path):
    archive = tmp_path / "dot.tar"
    with tarfile.open(archive, "w") as tar:
        for name, target in (("x/here", "."), ("x/here/up", "..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    with pytest.raises(DataFormatError, match="through a link"):
        safe_extract_tar(archive, tmp_path / "out")


def test_cose_prefix_and_variants_are_found_explicitly(tmp_path):
    dest = safe_extract_tar(task_archive(tmp_path / "cose.tar.gz", tmp_path, "cose"), tmp_path / "eraser" / "cose")
    assert find_task_root(dest, name="cose") == dest / "data" / "cose"
    assert find_task_root(dest, name="cose_simplified") == dest / "data" / "cose_simplified"
    with pytest.raises(DataFormatError, match="several"):
        find_task_root(dest)
    only = safe_extract_tar(task_archive(tmp_path / "m.tar.gz", tmp_path, "movies"), tmp_path / "m")
    with pytest.raises(DataFormatError, match="no folder named 'cose_simplified'"):
        find_task_root(only, name="cose_simplified")  # never the other task instead


# --- fetching -------------------------------------------------------------------------------------------------


def test_fetch_then_read(tmp_path, server):
    body = task_archive(tmp_path / "movies.tar.gz", tmp_path, "movies").read_bytes()
    server.files["movies.tar.gz"] = body
    root = tmp_path / "root"
    task_dir = fetch_eraser_task("movies", root, url=f"{server.url}/movies.tar.gz",
                                 expected_sha256=hashlib.sha256(body).hexdigest())
    assert task_dir == root / "eraser" / "movies" / "movies"
    c = read_eraser_corpus(task_dir, "movies")
    assert c.train.spans[0] == [(2, 4), (3, 5), (7, 9), (9, 10)] and c.train.labels == [0, 1]
    assert not any(p.endswith((".part", ".partial")) for p in _files(root))
    assert "downloads/movies.tar.gz" not in _files(root)  # the archive is not kept by default

    server.files["cose.tar.gz"] = task_archive(tmp_path / "cose.tar.gz", tmp_path, "cose").read_bytes()
    cose = fetch_eraser_task("cose", root, url=f"{server.url}/cose.tar.gz")
    assert cose == root / "eraser" / "cose" / "data" / "cose"
    assert fetch_eraser_task("cose_simplified", root) == root / "eraser" / "cose" / "data" / "cose_simplified"


def test_fetch_failures_leave_nothing(tmp_path, server, monkeypatch):
    good = task_archive(tmp_path / "fever.tar.gz", tmp_path, "fever").read_bytes()
    server.files["fever.tar.gz"] = good
    server.files["bad-path.tar.gz"] = traversal_tar(tmp_path / "bad.tar.gz").read_bytes()
    server.files["bad-link.tar.gz"] = symlink_tar(tmp_path / "link.tar.gz").read_bytes()
    server.files["movies.tar.gz"] = good  # not the published movies archive: its size and digest differ
    server.files["page.tar.gz"] = b"<!DOCTYPE html><html><body>Moved</body></html>\n"
    cases = {
        "digest": ("fever", "fever.tar.gz", {"expected_sha256": "0" * 64}, "was expected"),
        "pinned size": ("movies", "movies.tar.gz", {}, "3,899,487 bytes"),
        "truncated": ("fever", "fever.tar.gz", {}, "cut short"),
        "404": ("fever", "missing.tar.gz", {}, "404"),
        "traversal": ("fever", "bad-path.tar.gz", {}, "'..' component"),
        "symlink": ("fever", "bad-link.tar.gz", {}, "points outside"),
        "html page": ("fever", "page.tar.gz", {}, "neither a tar nor a zip"),
    }
    for label, (task, name, kw, expected) in cases.items():
        root = tmp_path / f"root-{label.replace(' ', '-')}"
        server.truncate = {"fever.tar.gz"} if label == "truncated" else set()
        with pytest.raises(DownloadError) as err:
            fetch_eraser_task(task, root, url=f"{server.url}/{name}", **kw)
        assert expected in str(err.value), (label, str(err.value))
        assert not root.exists() or _files(root) == [], (label, _files(root))


def test_digest_recorded_on_first_download_then_enforced(tmp_path, server, capsys):
    first = task_archive(tmp_path / "fever.tar.gz", tmp_path, "fever").read_bytes()
    server.files["fever.tar.gz"] = first
    root = tmp_path / "root"
    url = f"{server.url}/fever.tar.gz"
    fetch_eraser_task("fever", root, url=url)
    assert "recorded on first download" in capsys.readouterr().err
    pins = json.loads((root / "pins.json").read_text())
    assert pins["eraser/fever.tar.gz"]["sha256"] == hashlib.sha256(first).hexdigest()
    assert pins["eraser/fever.tar.gz"]["size"] == len(first)

    # the server now serves something else: refused, and the good copy and its pin stay as they were
    changed = FEVER["train"] + [rec("900003", "SUPPORTS", [], "Another claim .", ["North_Region"])]
    src = write_task_dir(tmp_path / "changed" / "fever", {**FEVER, "train": changed}, FEVER_DOCS, "docs.jsonl")
    server.files["fever.tar.gz"] = tar_tree(tmp_path / "changed.tar.gz", src.parent).read_bytes()
    before = _files(root)
    with pytest.raises(DownloadError, match="recorded on first download"):
        fetch_eraser_task("fever", root, url=url, force=True)
    assert _files(root) == before
    assert json.loads((root / "pins.json").read_text()) == pins
    assert len(read_eraser_corpus(root / "eraser" / "fever" / "fever", "fever").train) == 2


def test_fetch_file_checks_pinned_size_and_digest(tmp_path, server):
    server.files["x.bin"] = b"0123456789"
    digest = hashlib.sha256(b"0123456789").hexdigest()
    got = fetch_file(f"{server.url}/x.bin", tmp_path / "d", "x.bin", digest, 10, tmp_path / "pins.json", "x")
    assert got.read_bytes() == b"0123456789" and not (tmp_path / "pins.json").exists()
    with pytest.raises(DownloadError, match="received 10 bytes"):
        fetch_file(f"{server.url}/x.bin", tmp_path / "e", "x.bin", digest, 11, tmp_path / "pins.json", "x")
    assert _files(tmp_path / "e") == []


def test_multirc_fixture_documents_match_offsets():
    toks = split_document(MULTIRC_DOCS["story-1.txt"])
    for group in MULTIRC["train"][0]["evidences"]:
        for e in group:
            assert " ".join(toks[e["start_token"]:e["end_token"]]) == e["text"]
    assert split_document(FEVER_DOCS["Example_Town"])[9:14] == ["It", "has", "a", "church", "."]
