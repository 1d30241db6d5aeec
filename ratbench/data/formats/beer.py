"""Lei et al. (2016) BeerAdvocate files: `reviews.aspect{a}.{train,heldout}.txt[.gz]` and `annotations.json`
(docs/datasets.md#beer). The synthetic and toy corpora use the same format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ratbench.data.corpus import TextCorpus, TextSplit, binarize
from ratbench.data.formats.textfile import read_lines
from ratbench.data.specs import DatasetSpec
from ratbench.errors import DataFormatError

FIX = "Re-import the original file with `ratbench data import beer DIR`."


def review_file(directory: Path, aspect: int, part: str) -> Path:
    """The gzipped file if present, else the gunzipped one (both are accepted)."""
    gz = Path(directory) / f"reviews.aspect{aspect}.{part}.txt.gz"
    return gz if gz.exists() or not gz.with_suffix("").exists() else gz.with_suffix("")


def read_beer_reviews(path: Path, aspect: int, neg_threshold: float = 0.4, pos_threshold: float = 0.6) -> TextSplit:
    """One review per line: five scores in [0, 1], one TAB, whitespace-tokenised text; label rule applied."""
    tokens, labels = [], []
    counts = {"lines": 0, "dropped_middle_band": 0, "skipped_empty_text": 0, "whitespace_disagreements": 0}
    for lineno, line in enumerate(read_lines(path, FIX), 1):
        counts["lines"] += 1
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(path, f"expected five scores, one TAB, then the text; found {len(parts) - 1} "
                                  "TAB characters.", line=lineno, fix=FIX)
        fields = parts[0].split()
        if len(fields) != 5:
            raise DataFormatError(path, f"expected 5 aspect scores before the TAB, found {len(fields)}.",
                                  line=lineno, fix=FIX)
        try:
            scores = [float(f) for f in fields]
        except ValueError:
            raise DataFormatError(path, f"scores must be numbers, found {parts[0]!r}.", line=lineno, fix=FIX) from None
        if not all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores):
            raise DataFormatError(path, f"scores must be finite numbers in [0, 1], found {parts[0]!r}.",
                                  line=lineno, fix=FIX)
        toks = parts[1].split()
        if not toks:
            counts["skipped_empty_text"] += 1
            continue
        if parts[1].strip().split(" ") != toks:
            counts["whitespace_disagreements"] += 1  # the reference's single-space split would differ here
        y = binarize(scores[aspect], neg_threshold, pos_threshold)
        if y is None:
            counts["dropped_middle_band"] += 1
            continue
        tokens.append(toks)
        labels.append(y)
    return TextSplit(tokens, labels, None, str(path), counts)


def read_beer_annotations(
    path: Path, aspect: int, neg_threshold: float = 0.4, pos_threshold: float = 0.6
) -> TextSplit:
    """JSON Lines with `x` (tokens), `y` (5 scores) and `"0"`..`"4"` ([start, end) spans). Reviews with an empty
    span list for the aspect are skipped (the defined filter), and so is the middle score band."""
    tokens, labels, gold = [], [], []
    counts = {"lines": 0, "skipped_empty_rationale": 0, "dropped_middle_band": 0}
    key = str(aspect)
    for lineno, line in enumerate(read_lines(path, FIX), 1):
        if not line.strip():
            raise DataFormatError(path, "blank line inside JSON Lines.", line=lineno, fix=FIX)
        counts["lines"] += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, f"malformed JSON ({err.msg} at column {err.colno}).", line=lineno,
                                  fix=FIX) from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, "each line must be a JSON object.", line=lineno, fix=FIX)
        for k in ("x", "y", key):
            if k not in obj:
                raise DataFormatError(path, f"record has no {k!r} key.", line=lineno, fix=FIX)
        x, y, spans = obj["x"], obj["y"], obj[key]
        if not isinstance(x, list) or not all(isinstance(t, str) for t in x):
            raise DataFormatError(path, "'x' must be a list of token strings.", line=lineno, fix=FIX)
        if not isinstance(y, list) or len(y) != 5 or not all(isinstance(v, (int, float)) for v in y):
            raise DataFormatError(path, "'y' must be a list of 5 scores.", line=lineno, fix=FIX)
        if not isinstance(spans, list):
            raise DataFormatError(path, f"{key!r} must be a list of [start, end] spans.", line=lineno, fix=FIX)
        if not spans:
            counts["skipped_empty_rationale"] += 1
            continue
        mask = np.zeros(len(x), np.uint8)
        for span in spans:
            if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(v, int) for v in span)
                    or not 0 <= span[0] < span[1] <= len(x)):
                raise DataFormatError(path, f"invalid span {span!r} for aspect {aspect}: spans must be integer "
                                      f"pairs with 0 <= start < end <= {len(x)} (the number of tokens).",
                                      line=lineno, fix=FIX)
            mask[span[0] : span[1]] = 1
        label = binarize(float(y[aspect]), neg_threshold, pos_threshold)
        if label is None:
            counts["dropped_middle_band"] += 1
            continue
        tokens.append(list(x))
        labels.append(label)
        gold.append(mask)
    return TextSplit(tokens, labels, gold, str(path), counts)


def beer_files(directory: Path, aspect: int) -> dict[str, Path]:
    return {
        "train": review_file(directory, aspect, "train"),
        "dev": review_file(directory, aspect, "heldout"),
        "test": Path(directory) / "annotations.json",
    }


def read_beer_corpus(directory: Path, spec: DatasetSpec) -> TextCorpus:
    files = beer_files(directory, spec.aspect)
    th = (spec.neg_threshold, spec.pos_threshold)
    train = read_beer_reviews(files["train"], spec.aspect, *th)  # balanced by the loader (after any repair)
    dev = read_beer_reviews(files["dev"], spec.aspect, *th)
    test = read_beer_annotations(files["test"], spec.aspect, *th)
    return TextCorpus(spec.name, train, dev, test, {str(p): "" for p in files.values()})
