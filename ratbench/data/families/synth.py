"""The built-in synthetic corpus (`ratbench.data.synthetic`): generated under `<root>/synth/` on first use, in
the Beer file format, with its own word vectors."""

from __future__ import annotations

from pathlib import Path

from ratbench.data.corpus import TextCorpus
from ratbench.data.families.base import DatasetFamily, register_family
from ratbench.data.formats.beer import beer_files, read_beer_corpus
from ratbench.data.specs import DatasetSpec
from ratbench.data.synthetic import ensure_synthetic, synth_dir


@register_family
class Synth(DatasetFamily):
    name = "synth"
    own_vectors = "synth"

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        return beer_files(synth_dir(root), spec.aspect)

    def ensure(self, spec: DatasetSpec, root: Path) -> None:
        ensure_synthetic(root)

    def available(self, spec: DatasetSpec, root: Path) -> bool:
        return (synth_dir(root) / "vectors.txt").exists()

    def vectors_file(self, spec: DatasetSpec, root: Path) -> Path:
        return synth_dir(root) / "vectors.txt"

    def how_to_get(self, spec: DatasetSpec) -> str:
        return "Built in: generated automatically on first use."

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        return read_beer_corpus(synth_dir(root), spec)
