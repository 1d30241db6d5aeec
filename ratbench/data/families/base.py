"""The dataset-family contract and its registry."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import TextCorpus
from ratbench.data.specs import DatasetSpec, Remote
from ratbench.errors import RatbenchError
from ratbench.registry import Registry, import_submodules


class DatasetFamily:
    """How one file format is found, read, imported and fetched. Subclasses override what applies."""

    name: ClassVar[str] = ""
    # what `ratbench data import <name> PATH` accepts (empty: the family cannot be imported)
    import_help: ClassVar[str] = ""
    # the name of the word vectors the family generates itself (synth, toy); "" when it uses a vector resource
    own_vectors: ClassVar[str] = ""

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        """split -> source file under the data root (the files may not exist yet)."""
        raise NotImplementedError

    def ensure(self, spec: DatasetSpec, root: Path) -> None:
        """Make built-in data exist (generated corpora); downloadable or imported data is left alone."""

    def available(self, spec: DatasetSpec, root: Path) -> bool:
        return all(p.exists() for p in self.files(spec, root).values())

    def how_to_get(self, spec: DatasetSpec) -> str:
        raise NotImplementedError

    def vectors_file(self, spec: DatasetSpec, root: Path) -> Path:
        """The family's own vector file (only for families that set `own_vectors`)."""
        raise NotImplementedError

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        """The strict reader: every split, label rule applied, gold on the annotated split."""
        raise NotImplementedError

    def import_path(self, path: Path, root: Path) -> list[Path]:
        """Validate a local copy fully and place it under the data root atomically; returns the placed files."""
        raise RatbenchError(f"The {self.name} family cannot be imported. {self.how_to_get(self.specs()[0])}")

    def remote(self, spec: DatasetSpec) -> Remote | None:
        return spec.remote

    def fetch(self, spec: DatasetSpec, root: Path, force: bool = False) -> list[Path]:
        """Download, verify and place the files of `spec` (all datasets sharing its archive come along)."""
        raise RatbenchError(f"{spec.name} cannot be downloaded by ratbench. {self.how_to_get(spec)}")

    def specs(self) -> list[DatasetSpec]:
        return [DATASETS.get(n) for n in DATASETS if DATASETS.get(n).family == self.name]


FAMILIES: Registry[type[DatasetFamily]] = Registry("dataset family", base=DatasetFamily)


def register_family(cls: type[DatasetFamily]) -> type[DatasetFamily]:
    FAMILIES.add(cls.name, cls)
    return cls


_INSTANCES: dict[str, DatasetFamily] = {}


def family(name: str) -> DatasetFamily:
    """The family plug-in by name (families are discovered on first use)."""
    if not _INSTANCES:
        import_submodules("ratbench.data.families")
    if name not in _INSTANCES:
        _INSTANCES[name] = FAMILIES.get(name)()
    return _INSTANCES[name]


def family_of(spec: DatasetSpec) -> DatasetFamily:
    return family(spec.family)


def all_families() -> list[DatasetFamily]:
    if not _INSTANCES:
        import_submodules("ratbench.data.families")
    return [family(n) for n in FAMILIES.names()]
