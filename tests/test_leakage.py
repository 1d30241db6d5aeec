"""Leakage audit and repair: planted duplicates (case, spacing, cross-split, within-split), hand-counted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ratbench.data.corpus import METADATA_FIELDS, TextCorpus, TextSplit
from ratbench.data.formats.beer import read_beer_annotations, read_beer_reviews
from ratbench.data.formats.hotel import read_hotel_tsv
from ratbench.data.leakage import (
    PER_EXAMPLE_FIELDS,
    audit,
    corpus_fingerprints,
    example_key,
    fingerprint,
    normalise,
    repair,
    subset_split,
)


def _mask(i: int, n: int) -> np.ndarray:
    # a different pattern per example, so a misaligned gold mask is visible
    return np.array([(j + i) % 2 for j in range(n)], np.uint8)


def _split(texts: list[str], labels: list[int], prefix: str) -> TextSplit:
    tokens = [t.split() for t in texts]
    return TextSplit(tokens=tokens, labels=labels, gold=[_mask(i, len(t)) for i, t in enumerate(tokens)],
                     source=prefix, counts={"rows": len(texts)}, ids=[f"{prefix}{i}" for i in range(len(texts))])


TRAIN = [
    "Great Beer",  # 0
    "nice head .",  # 1  = dev 0
    "great  beer",  # 2  repeat of 0 (case, spacing)
    "smells of pine",  # 3
    "GREAT BEER",  # 4  repeat of 0, other label
    "thin body",  # 5
    "the room was clean",  # 6  = dev 1
    "pours gold",  # 7  = test 0, dev 4
    "Smells  OF pine",  # 8  repeat of 3
]
TRAIN_Y = [1, 1, 1, 1, 0, 0, 1, 1, 1]
DEV = [
    "nice head .",  # 0  in train
    "The room was  clean",  # 1  in train
    "dark pour",  # 2  in test
    "dark pour",  # 3  repeat of 2, in test
    "Pours Gold",  # 4  in train and in test
    "great view",  # 5
    "Great  View",  # 6  repeat of 5
]
DEV_Y = [1, 0, 0, 0, 1, 1, 1]  # dev 1 has a label train does not give that text
TEST = [
    "pours gold",  # 0  in train (7) and dev (4)
    "great beer",  # 1  in train (0, 2, 4)
    "unique test text",  # 2
    "DARK pour",  # 3  in dev (2, 3)
    "pours  gold",  # 4  repeat of 0
]
TEST_Y = [1, 1, 0, 0, 1]


@pytest.fixture
def corpus() -> TextCorpus:
    return TextCorpus("planted", _split(TRAIN, TRAIN_Y, "tr"), _split(DEV, DEV_Y, "dv"), _split(TEST, TEST_Y, "te"),
                      files={"a": "sha"}, label_names=["neg", "pos"])


def test_normalise_collapses_case_and_whitespace() -> None:
    assert normalise(["Great", "Beer"]) == "great beer"
    assert normalise("great  beer".split()) == "great beer"
    assert normalise(["great ", "", " beer\t"]) == "great beer"  # whitespace inside tokens, empty token
    assert normalise([]) == ""
    assert fingerprint(["GREAT", "beer"]) == fingerprint(["great", "beer"])
    assert fingerprint(["great", "beer"]) != fingerprint(["great", "beers"])


def test_query_is_part_of_identity() -> None:
    assert example_key(["the", "passage"], ["Is", "it"]) == "is it\nthe passage"
    assert fingerprint(["the", "passage"], ["q1"]) != fingerprint(["the", "passage"], ["q2"])
    # the query/text boundary matters: "a b" + "c" is not "a" + "b c"
    assert fingerprint(["c"], ["a", "b"]) != fingerprint(["b", "c"], ["a"])


def test_audit_within_split_counts(corpus: TextCorpus) -> None:
    r = audit(corpus)
    tr, dv, te = r.splits["train"], r.splits["dev"], r.splits["test"]
    assert (tr.n, tr.n_unique, tr.duplicates, tr.label_conflicts) == (9, 6, 3, 1)  # repeats 2, 4, 8; 4 flips
    assert tr.examples == [(2, 0), (4, 0), (8, 3)]
    assert (dv.n, dv.n_unique, dv.duplicates, dv.label_conflicts) == (7, 5, 2, 0)
    assert dv.examples == [(3, 2), (6, 5)]
    assert (te.n, te.n_unique, te.duplicates) == (5, 4, 1)
    assert te.examples == [(4, 0)]


def test_audit_cross_split_counts(corpus: TextCorpus) -> None:
    r = audit(corpus)
    dev_tr, te_tr, te_dv = r.overlap("dev", "train"), r.overlap("test", "train"), r.overlap("test", "dev")
    # dev 0, 1, 4 are in train
    assert (dev_tr.n, dev_tr.count, dev_tr.distinct, dev_tr.label_conflicts) == (7, 3, 3, 1)
    assert dev_tr.percent == pytest.approx(300 / 7)
    assert dev_tr.examples == [(0, 1), (1, 6), (4, 7)]
    # test 0, 1, 4 are in train ("pours gold" twice, "great beer" once); label 1 is among train's labels
    assert (te_tr.count, te_tr.distinct, te_tr.label_conflicts) == (3, 2, 0)
    assert te_tr.examples == [(0, 7), (1, 0), (4, 7)]
    # test 0, 3, 4 are in dev; "dark pour" has label 0 in dev and in test
    assert (te_dv.count, te_dv.distinct, te_dv.label_conflicts) == (3, 2, 0)
    assert te_dv.examples == [(0, 4), (3, 2), (4, 4)]
    assert r.test_seen == 4  # test 0, 1, 3, 4
    assert r.test_seen_percent == pytest.approx(80.0)
    assert not r.clean
    assert r.identity == "text"


def test_precomputed_digests(corpus: TextCorpus) -> None:
    digests = corpus_fingerprints(corpus)
    assert [len(digests[k]) for k in ("train", "dev", "test")] == [9, 7, 5]
    assert audit(corpus, digests=digests).overlap("dev", "train").count == 3
    assert repair(corpus, digests=digests)[1].splits["train"].kept.tolist() == [3, 5]
    with pytest.raises(ValueError, match="digests for dev do not match"):
        audit(corpus, digests={**digests, "dev": digests["dev"][:2]})


def test_audit_k_limits_examples(corpus: TextCorpus) -> None:
    r = audit(corpus, k=1)
    assert r.overlap("dev", "train").examples == [(0, 1)]
    assert r.overlap("dev", "train").count == 3
    assert r.splits["train"].examples == [(2, 0)]


def test_report_json_and_summary(corpus: TextCorpus) -> None:
    r = audit(corpus)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["corpus"] == "planted"
    assert d["clean"] is False
    assert d["test_seen"] == 4
    assert set(d["overlaps"]) == {"dev_in_train", "test_in_train", "test_in_dev"}
    assert d["overlaps"]["dev_in_train"] == {"split": "dev", "in": "train", "n": 7, "count": 3, "percent": 42.857,
                                             "distinct": 3, "label_conflicts": 1,
                                             "examples": [[0, 1], [1, 6], [4, 7]]}
    assert d["splits"]["train"]["duplicates"] == 3
    assert d["splits"]["train"]["percent"] == pytest.approx(33.333)
    lines = r.summary()
    assert len(lines) == 6
    assert lines[0].startswith("dev in train: 3 of 7 dev examples (42.9 %)")
    assert "test[0] = train[7]" in lines[1]
    assert lines[3] == "train: 3 of 9 examples repeat an earlier train example (33.3 %), 1 with a different label"


def test_repair_policy_and_counts(corpus: TextCorpus) -> None:
    fixed, log = repair(corpus)
    assert fixed.test is corpus.test
    assert log.splits["test"].n_dropped == 0
    # dev: 2, 3, 4 are in test (3 is also a repeat: test wins), 6 repeats 5 -> keep 0, 1, 5
    assert log.splits["dev"].kept.tolist() == [0, 1, 5]
    assert log.splits["dev"].dropped == {"seen_in_test": 3, "repeated_in_split": 1}
    # train: 0, 2, 4, 7 in test; 1, 6 in dev; 8 repeats 3 -> keep 3, 5
    assert log.splits["train"].kept.tolist() == [3, 5]
    assert log.splits["train"].dropped == {"seen_in_test": 4, "seen_in_dev": 2, "repeated_in_split": 1}
    assert log.total_dropped == 11
    assert fixed.train.counts == {"rows": 9, "dropped_seen_in_test": 4, "dropped_seen_in_dev": 2,
                                  "dropped_repeated_in_split": 1, "repaired_from": 9}
    assert fixed.dev.counts == {"rows": 7, "dropped_seen_in_test": 3, "dropped_repeated_in_split": 1,
                                "repaired_from": 7}
    assert corpus.train.counts == {"rows": 9}  # the input is not modified
    assert (fixed.name, fixed.files, fixed.label_names) == ("planted", {"a": "sha"}, ["neg", "pos"])
    after = audit(fixed)
    assert after.clean
    assert after.splits["train"].duplicates == 0 and after.splits["dev"].duplicates == 0
    assert after.splits["test"].duplicates == 1  # test keeps its repeat


def test_repair_keeps_fields_aligned(corpus: TextCorpus) -> None:
    fixed, _ = repair(corpus)
    assert fixed.train.tokens == [["smells", "of", "pine"], ["thin", "body"]]
    assert fixed.train.labels == [1, 0]
    assert fixed.train.ids == ["tr3", "tr5"]
    assert [g.tolist() for g in fixed.train.gold] == [[1, 0, 1], [1, 0]]  # _mask(3, 3), _mask(5, 2)
    assert fixed.dev.tokens == [["nice", "head", "."], ["The", "room", "was", "clean"], ["great", "view"]]
    assert fixed.dev.labels == [1, 0, 1]
    assert fixed.dev.ids == ["dv0", "dv1", "dv5"]
    assert [g.tolist() for g in fixed.dev.gold] == [[0, 1, 0], [1, 0, 1, 0], [1, 0]]  # _mask(0|1|5, .)
    for split in fixed.splits().values():
        assert all(len(g) == len(t) for g, t in zip(split.gold, split.tokens))


def test_repair_without_dropping_repeats(corpus: TextCorpus) -> None:
    fixed, log = repair(corpus, drop_repeats=False)
    assert log.splits["dev"].kept.tolist() == [0, 1, 5, 6]
    assert log.splits["dev"].dropped == {"seen_in_test": 3}
    assert log.splits["train"].kept.tolist() == [3, 5, 8]
    assert log.splits["train"].dropped == {"seen_in_test": 4, "seen_in_dev": 2}
    assert "dropped_repeated_in_split" not in fixed.train.counts
    after = audit(fixed)
    assert after.clean
    assert (after.splits["train"].duplicates, after.splits["dev"].duplicates) == (1, 1)


def test_repair_log_json_and_balance_warning() -> None:
    # a balanced train (2 / 2) that loses one positive to test
    train = _split(["a b", "c d", "e f", "g h"], [1, 1, 0, 0], "tr")
    dev = _split(["x y"], [1], "dv")
    test = _split(["A  B"], [1], "te")
    fixed, log = repair(TextCorpus("bal", train, dev, test))
    assert fixed.train.labels == [1, 0, 0]
    d = json.loads(json.dumps(log.to_dict()))
    assert d["total_dropped"] == 1
    assert d["splits"]["train"]["classes_before"] == {"0": 2, "1": 2}
    assert d["splits"]["train"]["classes_after"] == {"0": 2, "1": 1}
    assert d["splits"]["train"]["dropped"] == {"seen_in_test": 1, "seen_in_dev": 0, "repeated_in_split": 0}
    lines = log.summary()
    assert lines[0] == "test: kept 1 of 1"
    assert lines[1] == "dev: kept 1 of 1"
    assert lines[2] == "train: kept 3 of 4 (dropped 1 seen in test); no longer class-balanced: class 0: 2, class 1: 1"


def test_query_tasks() -> None:
    def qsplit(pairs: list[tuple[str, str]], prefix: str) -> TextSplit:
        s = _split([t for _, t in pairs], [0] * len(pairs), prefix)
        spans = [[(0, 1)] for _ in pairs]
        docs = [[(f"{prefix}doc{i}", 0, len(t.split()))] for i, (_, t) in enumerate(pairs)]
        return dataclasses.replace(s, queries=[q.split() for q, _ in pairs], spans=spans, documents=docs)

    passage = "the cat sat on the mat"
    train = qsplit([("is it a cat ?", passage), ("is it a dog ?", passage), ("where ?", "in paris")], "tr")
    dev = qsplit([("Is it a DOG ?", passage)], "dv")  # = train 1 (query + text)
    test = qsplit([("is it a cow ?", passage), ("WHERE ?", "in  Paris")], "te")  # test 1 = train 2
    corpus = TextCorpus("q", train, dev, test)
    r = audit(corpus)
    assert r.identity == "query+text"
    assert r.overlap("test", "train").count == 1  # the same passage under another question does not count
    assert r.overlap("test", "train").examples == [(1, 2)]
    assert r.overlap("dev", "train").examples == [(0, 1)]
    assert r.splits["train"].duplicates == 0
    fixed, log = repair(corpus)
    assert log.splits["train"].kept.tolist() == [0]
    assert fixed.train.queries == [["is", "it", "a", "cat", "?"]]
    assert fixed.train.documents == [[("trdoc0", 0, 6)]]
    assert fixed.train.spans == [[(0, 1)]]
    assert fixed.train.ids == ["tr0"]


def test_misaligned_split_is_refused(corpus: TextCorpus) -> None:
    bad = dataclasses.replace(corpus, dev=dataclasses.replace(corpus.dev, ids=["only-one"]))
    with pytest.raises(ValueError, match="dev split: ids has 1 entries for 7 labels"):
        audit(bad)
    with pytest.raises(ValueError, match="dev split"):
        repair(bad)


def test_every_textsplit_field_is_classified() -> None:
    # a new TextSplit field must be declared per-example or metadata here, or repair could misalign it
    names = {f.name for f in dataclasses.fields(TextSplit)}
    assert names == set(PER_EXAMPLE_FIELDS) | set(METADATA_FIELDS)


def test_subset_split_order_and_counts(corpus: TextCorpus) -> None:
    s = subset_split(corpus.test, [4, 2], {"x": 1})
    assert s.tokens == [["pours", "gold"], ["unique", "test", "text"]]
    assert s.ids == ["te4", "te2"]
    assert [g.tolist() for g in s.gold] == [[0, 1], [0, 1, 0]]
    assert s.counts == {"rows": 5, "x": 1}
    assert s.source == "te"


def test_empty_splits() -> None:
    empty = TextSplit([], [])
    r = audit(TextCorpus("e", empty, empty, empty))
    assert r.clean and r.test_seen == 0 and r.test_seen_percent == 0.0
    assert r.overlap("test", "train").percent == 0.0
    fixed, log = repair(TextCorpus("e", empty, empty, empty))
    assert len(fixed.train) == 0 and log.total_dropped == 0


# ---- through the real readers ----------------------------------------------------------------------------


def _hotel_file(path: Path, rows: list[tuple[int, str]], flags: list[str] | None = None) -> Path:
    head = "task\tlabel\ttext" + ("\trationale" if flags is not None else "") + "\n"
    body = ""
    for i, (label, text) in enumerate(rows):
        body += f"hotel_Location\t{label}\t{text}" + (f"\t{flags[i]}" if flags is not None else "") + "\n"
    path.write_text(head + body, encoding="utf-8")
    return path


def test_hotel_files(tmp_path: Path) -> None:
    train = read_hotel_tsv(_hotel_file(tmp_path / "train", [
        (1, "the room was great ."),  # 0 = test 0
        (0, "noisy street , bad bed"),  # 1
        (1, "The  Room was GREAT ."),  # 2 repeat of 0 (= test 0)
        (1, "staff were kind"),  # 3 = dev 0
        (0, " noisy street ,  bad bed "),  # 4 repeat of 1
        (1, "close to the station"),  # 5
    ]))
    dev = read_hotel_tsv(_hotel_file(tmp_path / "dev", [
        (1, "Staff were KIND"),  # 0 in train
        (0, "dirty carpet"),  # 1 = test 1
        (1, "great view"),  # 2
    ]))
    test = read_hotel_tsv(_hotel_file(tmp_path / "test", [
        (1, "the room  was great ."),
        (0, "Dirty carpet"),
        (1, "lovely breakfast buffet"),
    ], flags=["0 0 0 1 0", "1 1", "0 1 1"]), annotated=True)
    corpus = TextCorpus("hotel-location", train, dev, test)
    r = audit(corpus)
    assert (r.splits["train"].n, r.splits["train"].duplicates) == (6, 2)
    assert r.splits["train"].examples == [(2, 0), (4, 1)]
    assert (r.overlap("dev", "train").count, r.overlap("test", "train").count, r.overlap("test", "dev").count) \
        == (1, 1, 1)
    assert r.overlap("test", "train").percent == pytest.approx(100 / 3)
    assert r.test_seen == 2
    fixed, log = repair(corpus)
    assert fixed.test is test
    assert [g.tolist() for g in fixed.test.gold] == [[0, 0, 0, 1, 0], [1, 1], [0, 1, 1]]
    assert log.splits["dev"].kept.tolist() == [0, 2]
    assert log.splits["train"].kept.tolist() == [1, 5]  # 0, 2 in test; 3 in dev; 4 repeats 1
    assert log.splits["train"].dropped == {"seen_in_test": 2, "seen_in_dev": 1, "repeated_in_split": 1}
    assert fixed.train.tokens == [["noisy", "street", ",", "bad", "bed"], ["close", "to", "the", "station"]]
    assert fixed.train.counts["rows"] == 6 and fixed.train.counts["repaired_from"] == 6


def _beer_line(scores: list[float], text: str) -> str:
    return " ".join(f"{s:.1f}" for s in scores) + "\t" + text + "\n"


def test_beer_files(tmp_path: Path) -> None:
    hi, lo, mid = [0.8] * 5, [0.2] * 5, [0.5] * 5
    (tmp_path / "train.txt").write_text("".join([
        _beer_line(hi, "golden body with a fluffy head ."),  # 0 = test 0
        _beer_line(mid, "dropped by the label rule"),  # not in the split
        _beer_line(lo, "murky brown pour , no head"),  # 1
        _beer_line(hi, "golden  body with a fluffy head ."),  # 2 repeat of 0
        _beer_line(lo, "thin and watery"),  # 3 = dev 1
    ]), encoding="utf-8")
    (tmp_path / "dev.txt").write_text("".join([
        _beer_line(hi, "hazy straw color"),  # 0
        _beer_line(lo, "thin  and watery"),  # 1 in train
    ]), encoding="utf-8")
    annotations = [
        {"x": "Golden body with a fluffy head .".split(), "y": hi, "0": [[0, 2]], "1": [], "2": [], "3": [], "4": []},
        {"x": "no annotation for aspect 0".split(), "y": hi, "0": [], "1": [], "2": [], "3": [], "4": []},
        {"x": "dark and still .".split(), "y": lo, "0": [[0, 4]], "1": [], "2": [], "3": [], "4": []},
    ]
    (tmp_path / "annotations.json").write_text("".join(json.dumps(o) + "\n" for o in annotations), encoding="utf-8")
    train = read_beer_reviews(tmp_path / "train.txt", 0)
    dev = read_beer_reviews(tmp_path / "dev.txt", 0)
    test = read_beer_annotations(tmp_path / "annotations.json", 0)
    assert (len(train), len(dev), len(test)) == (4, 2, 2)
    corpus = TextCorpus("beer-appearance", train, dev, test)
    r = audit(corpus)
    assert r.splits["train"].duplicates == 1
    assert r.overlap("test", "train").count == 1 and r.overlap("test", "train").examples == [(0, 0)]
    assert r.overlap("dev", "train").examples == [(1, 3)]
    assert r.overlap("test", "dev").count == 0
    fixed, log = repair(corpus)
    assert log.splits["train"].kept.tolist() == [1]  # 0, 2 in test; 3 in dev
    assert log.splits["dev"].kept.tolist() == [0, 1]
    assert [g.tolist() for g in fixed.test.gold] == [[1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1]]
    assert fixed.test.tokens[0] == ["Golden", "body", "with", "a", "fluffy", "head", "."]
    assert fixed.train.counts["dropped_middle_band"] == 1  # the reader's counts survive
