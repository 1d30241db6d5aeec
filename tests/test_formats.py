"""Beer and hotel readers on files in the public formats, including every malformed case that applies."""

from __future__ import annotations

import gzip
import json

import pytest

from ratbench.data.corpus import balance
from ratbench.data.formats.beer import read_beer_annotations, read_beer_reviews
from ratbench.data.formats.hotel import read_hotel_tsv
from ratbench.errors import DataFormatError
from tests.fixtures_data import beer_line, hotel_rows, write_gz


def _reviews(tmp_path, lines, gz=True):
    p = tmp_path / ("r.txt.gz" if gz else "r.txt")
    if gz:
        write_gz(p, "".join(lines))
    else:
        p.write_text("".join(lines), encoding="utf-8")
    return p


def test_label_rule_middle_band_and_whitespace(tmp_path):
    lines = [beer_line([0.4, 0.9, 0.5, 0, 0], "a  b c"), beer_line([0.6, 0.1, 0.5, 0, 0], "d e"),
             beer_line([0.5, 0.6, 0.5, 0, 0], "f")]
    for gz in (True, False):
        s = read_beer_reviews(_reviews(tmp_path, lines, gz), aspect=0)
        assert s.labels == [0, 1] and s.tokens[0] == ["a", "b", "c"]
        assert s.counts["dropped_middle_band"] == 1 and s.counts["whitespace_disagreements"] == 1
    assert read_beer_reviews(_reviews(tmp_path, lines), aspect=1).labels == [1, 0, 1]


@pytest.mark.parametrize(
    "line, message",
    [
        ("0.1 0.2 0.3 0.4 0.5 no tab here\n", "TAB"),
        ("0.1 0.2 0.3 0.4 0.5\ta\tb\n", "TAB"),
        ("0.1 0.2 0.3 0.4\ttext\n", "5 aspect scores"),
        ("0.1 x 0.3 0.4 0.5\ttext\n", "numbers"),
        ("0.1 nan 0.3 0.4 0.5\ttext\n", "finite"),
        ("1.7 0.2 0.3 0.4 0.5\ttext\n", "[0, 1]"),
    ],
)
def test_bad_review_lines_name_file_and_line(tmp_path, line, message):
    p = _reviews(tmp_path, [beer_line([0.8] * 5, "ok"), line])
    with pytest.raises(DataFormatError, match=message) as err:
        read_beer_reviews(p, 0)
    assert "line 2" in str(err.value) and str(p) in str(err.value)


def test_corrupt_archives(tmp_path):
    good = _reviews(tmp_path, [beer_line([0.8] * 5, "ok " * 2000)] * 20)
    data = good.read_bytes()
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        read_beer_reviews(cut, 0)
    crc = tmp_path / "crc.txt.gz"
    crc.write_bytes(data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:])
    with pytest.raises(DataFormatError, match="corrupt"):
        read_beer_reviews(crc, 0)
    html = tmp_path / "page.txt.gz"
    html.write_text("<html>404</html>")
    with pytest.raises(DataFormatError, match="not gzip"):
        read_beer_reviews(html, 0)
    bad_utf = tmp_path / "u.txt"
    bad_utf.write_bytes(b"0.8 0.8 0.8 0.8 0.8\tok\n0.8 0.8 0.8 0.8 0.8\tbad \xff\n")
    with pytest.raises(DataFormatError, match="UTF-8") as err:
        read_beer_reviews(bad_utf, 0)
    assert "line 2" in str(err.value)


def test_empty_text_is_counted_and_skipped(tmp_path):
    s = read_beer_reviews(_reviews(tmp_path, [beer_line([0.8] * 5, ""), beer_line([0.8] * 5, "x")]), 0)
    assert s.labels == [1] and s.counts["skipped_empty_text"] == 1


def _ann(tmp_path, objs):
    p = tmp_path / "annotations.json"
    p.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs), encoding="utf-8")
    return p


def test_annotations_gold_and_filters(tmp_path):
    objs = [
        {"x": list("abcdef"), "y": [0.9, 0.2, 0.5, 0, 0], "0": [[0, 2], [4, 6]], "1": [[2, 3]], "2": [[0, 1]]},
        {"x": list("abc"), "y": [0.1, 0.9, 0.9, 0, 0], "0": [], "1": [[0, 3]], "2": []},
    ]
    s = read_beer_annotations(_ann(tmp_path, objs), 0)
    assert s.labels == [1] and s.gold[0].tolist() == [1, 1, 0, 0, 1, 1]
    assert s.counts["skipped_empty_rationale"] == 1
    s2 = read_beer_annotations(_ann(tmp_path, objs), 2)  # score 0.5: middle band; empty list: skipped
    assert s2.labels == [] and s2.counts["dropped_middle_band"] == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"x": ["a"], "y": [1,1,1,1,1], "0": [[0, 1]]', "malformed JSON"),
        ({"x": ["a"], "0": [[0, 1]]}, "'y'"),
        ({"x": ["a"], "y": [1, 1, 1, 1, 1]}, "'0'"),
        ({"x": ["a", "b"], "y": [1, 1, 1, 1, 1], "0": [[0, 3]]}, "invalid span"),
        ({"x": ["a", "b"], "y": [1, 1, 1, 1, 1], "0": [[-1, 1]]}, "invalid span"),
        ({"x": ["a", "b"], "y": [1, 1, 1, 1, 1], "0": [[1, 1]]}, "invalid span"),
    ],
)
def test_bad_annotations(tmp_path, bad, message):
    ok = {"x": ["a"], "y": [1, 1, 1, 1, 1], "0": [[0, 1]]}
    with pytest.raises(DataFormatError, match=message) as err:
        read_beer_annotations(_ann(tmp_path, [ok, bad]), 0)
    assert "line 2" in str(err.value)


def test_balance_reproduces_reference_sampling():
    import random

    from ratbench.data.corpus import TextSplit

    labels = [1, 0, 1, 1, 0, 1, 1]
    s = TextSplit([[str(i)] for i in range(7)], labels)
    out = balance(s, 20226666)
    rng = random.Random(20226666)
    pos = rng.sample([0, 2, 3, 5, 6], 2)
    assert [t[0] for t in out.tokens] == [str(i) for i in pos] + ["1", "4"]
    assert out.labels == [1, 1, 0, 0]


def test_hotel_reader_and_errors(tmp_path):
    p = tmp_path / "hotel_Location.train"
    p.write_text(hotel_rows(2, 1, "Location", annotated=True))
    s = read_hotel_tsv(p, annotated=True)
    assert s.labels == [1, 1, 0] and s.gold[0].tolist() == [0, 0, 0, 1, 1, 0]
    # a surplus all-zero flag is trimmed (known release defect), any other mismatch is an error
    rows = p.read_text().splitlines()
    parts = rows[1].split("\t")
    parts[3] += " 0"
    p.write_text("\n".join([rows[0], "\t".join(parts)]) + "\n")
    assert read_hotel_tsv(p, annotated=True).counts["trimmed_surplus_flags"] == 1
    parts[3] = "0 1"
    p.write_text("\n".join([rows[0], "\t".join(parts)]) + "\n")
    with pytest.raises(DataFormatError, match="2 rationale flags for 6 tokens"):
        read_hotel_tsv(p, annotated=True)
    cases = [
        ("hotel_Location\t1\tno header\n", "header row is missing", 1),
        ("task\tlabel\ttext\nhotel_Location\t2\tbad label\n", "label must be 0 or 1", 2),
        ("task\tlabel\ttext\nhotel_Location\t1 missing tab\n", "columns", 2),
    ]
    for text, message, line in cases:
        p.write_text(text)
        with pytest.raises(DataFormatError, match=message) as err:
            read_hotel_tsv(p)
        assert f"line {line}" in str(err.value)
    p.write_text("task\tlabel\ttext\nhotel_Location\t1\tx y\n")
    with pytest.raises(DataFormatError, match="columns"):
        read_hotel_tsv(p, annotated=True)


def test_gzip_detected_by_magic_not_name(tmp_path):
    p = tmp_path / "reviews.aspect0.train.txt"  # gunzipped name, gzipped content
    with gzip.open(p, "wb") as fh:
        fh.write(beer_line([0.9] * 5, "x y").encode())
    assert read_beer_reviews(p, 0).labels == [1]
