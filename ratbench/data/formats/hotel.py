"""HotelReview as released by Bao et al. 2018 (R2A): TSV with a header, quoting disabled (docs/datasets.md#hotel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ratbench.data.corpus import TextCorpus, TextSplit
from ratbench.data.formats.textfile import read_lines
from ratbench.data.specs import DatasetSpec
from ratbench.errors import DataFormatError

FIX = "Re-fetch with `ratbench data fetch hotel --force` or re-import with `ratbench data import hotel PATH`."
HEADER = ["task", "label", "text"]


def read_hotel_tsv(path: Path, annotated: bool = False) -> TextSplit:
    """`task<TAB>label<TAB>text` (+ `<TAB>rationale` flags, one per token, in the annotated files)."""
    lines = read_lines(path, FIX)
    if not lines:
        raise DataFormatError(path, "file is empty.", fix=FIX)
    head = lines[0].split("\t")
    if [h.strip().lower() for h in head[:3]] != HEADER:
        looks_like_data = len(head) >= 3 and head[1].strip() in ("0", "1")
        what = "the first line looks like data: the header row is missing" if looks_like_data else \
            f"expected the header 'task<TAB>label<TAB>text', found {lines[0][:60]!r}"
        raise DataFormatError(path, what + ".", line=1, fix=FIX)
    need = 4 if annotated else 3
    tokens, labels, gold = [], [], []
    counts = {"rows": 0, "trimmed_surplus_flags": 0, "whitespace_disagreements": 0, "all_zero_rationales": 0,
              "float_labels": 0}
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) < need:
            raise DataFormatError(path, f"expected at least {need} TAB-separated columns "
                                  f"(task, label, text{', rationale' if annotated else ''}), found {len(parts)}.",
                                  line=lineno, fix=FIX)
        counts["rows"] += 1
        raw = parts[1].strip()
        if raw in ("0", "1"):
            label = int(raw)
        elif raw in ("0.0", "1.0"):
            label = int(float(raw))
            counts["float_labels"] += 1
        else:
            raise DataFormatError(path, f"label must be 0 or 1, found {raw!r}.", line=lineno, fix=FIX)
        toks = parts[2].split()
        if parts[2].strip().split(" ") != toks:
            counts["whitespace_disagreements"] += 1
        if annotated:
            flags = parts[3].split()
            if not flags or any(f not in ("0", "1") for f in flags):
                raise DataFormatError(path, "the rationale column must hold one 0/1 flag per token.",
                                      line=lineno, fix=FIX)
            if len(flags) > len(toks) and all(f == "0" for f in flags[len(toks):]):
                flags = flags[: len(toks)]  # a known defect of three released rows: a surplus 0 flag
                counts["trimmed_surplus_flags"] += 1
            if len(flags) != len(toks):
                raise DataFormatError(path, f"{len(flags)} rationale flags for {len(toks)} tokens.",
                                      line=lineno, fix=FIX)
            mask = np.array([f == "1" for f in flags], np.uint8)
            if not mask.any():
                counts["all_zero_rationales"] += 1  # kept, as the published setting does
            gold.append(mask)
        tokens.append(toks)
        labels.append(label)
    return TextSplit(tokens, labels, gold if annotated else None, str(path), counts)


def hotel_files(directory: Path, aspect_name: str) -> dict[str, Path]:
    d = Path(directory)
    return {
        "train": d / "oracle" / f"hotel_{aspect_name}.train",
        "dev": d / "oracle" / f"hotel_{aspect_name}.dev",
        "test": d / "target" / f"hotel_{aspect_name}.train",
    }


def read_hotel_corpus(directory: Path, spec: DatasetSpec) -> TextCorpus:
    files = hotel_files(directory, spec.aspect_name)
    train = read_hotel_tsv(files["train"])  # balanced by the loader (after any repair)
    dev = read_hotel_tsv(files["dev"])
    test = read_hotel_tsv(files["test"], annotated=True)
    return TextCorpus(spec.name, train, dev, test, {str(p): "" for p in files.values()})
