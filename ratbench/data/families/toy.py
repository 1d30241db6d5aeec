"""A tiny generated corpus for tests and for checking an installation (`--datasets toy`; hidden from lists).

Each review is filler words with one planted span of polarity words that decides the label; the span is the
gold rationale. Written under `<root>/toy/` in the Beer file format with random word vectors, in well under a
second, so tests and Ray workers load it through the same code path as every dataset instead of patching
loaders.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ratbench.data.corpus import TextCorpus
from ratbench.data.families.base import DatasetFamily, register_family
from ratbench.data.formats.beer import beer_files, read_beer_corpus
from ratbench.data.manifest import Manifest
from ratbench.data.specs import DatasetSpec

POS = ["great", "lovely", "superb", "tasty", "fine"]
NEG = ["awful", "stale", "flat", "sour", "thin"]
FILLER = [f"w{i}" for i in range(40)] + [".", ","]
SIZES = {"train": 300, "heldout": 100, "test": 100}
DIM = 16
VERSION = 1


def toy_reviews(n: int, seed: int) -> list[tuple[list[str], int, tuple[int, int]]]:
    """(tokens, label, gold span [start, end)) per review, deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y = int(rng.integers(0, 2))
        length = int(rng.integers(20, 60))
        toks = [str(t) for t in rng.choice(FILLER, length)]
        span = int(rng.integers(3, 7))
        start = int(rng.integers(0, length - span))
        words = POS if y else NEG
        for t in range(start, start + span):
            toks[t] = str(rng.choice(words))
        out.append((toks, y, (start, start + span)))
    return out


def write_toy(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, seed in (("train", 1), ("heldout", 2)):
        reviews = toy_reviews(SIZES[part], seed)
        lines = "".join(f"{float(y):.1f} 0.5 0.5 0.5 0.5\t{' '.join(t)}\n" for t, y, _ in reviews)
        with open(out_dir / f"reviews.aspect0.{part}.txt.gz", "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
                fh.write(lines.encode("utf-8"))
    with open(out_dir / "annotations.json", "w", encoding="utf-8") as fh:
        for toks, y, (s, e) in toy_reviews(SIZES["test"], 3):
            fh.write(json.dumps({"x": toks, "y": [float(y), 0.5, 0.5, 0.5, 0.5], "0": [[s, e]]}) + "\n")
    words = POS + NEG + FILLER
    vectors = np.random.default_rng(0).normal(0, 1, (len(words), DIM)).astype(np.float32)
    rows = [f"{w} " + " ".join(f"{v:.5f}" for v in vec) for w, vec in zip(words, vectors)]
    (out_dir / "vectors.txt").write_text(f"{len(words)} {DIM}\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (out_dir / "VERSION").write_text(str(VERSION), encoding="utf-8")


def toy_dir(root: Path) -> Path:
    return Path(root) / "toy"


@register_family
class Toy(DatasetFamily):
    name = "toy"
    own_vectors = "toy"

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        return beer_files(toy_dir(root), 0)

    def ensure(self, spec: DatasetSpec, root: Path) -> None:
        target = toy_dir(root)
        version = target / "VERSION"
        if version.exists() and version.read_text(encoding="utf-8") == str(VERSION):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".toy-partial-"))
        try:
            write_toy(tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest = Manifest(root)
        for f in sorted(target.iterdir()):
            manifest.record(f, source="toy")

    def available(self, spec: DatasetSpec, root: Path) -> bool:
        return (toy_dir(root) / "VERSION").exists()

    def vectors_file(self, spec: DatasetSpec, root: Path) -> Path:
        return toy_dir(root) / "vectors.txt"

    def how_to_get(self, spec: DatasetSpec) -> str:
        return "Built in (tests): generated automatically on first use."

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        return read_beer_corpus(toy_dir(root), spec)
