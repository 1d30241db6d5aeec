"""Dataset name -> its family plug-in -> a `TextCorpus` read from the data root, with file digests."""

from __future__ import annotations

from pathlib import Path

from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import TextCorpus, balance
from ratbench.data.families.base import DatasetFamily, family_of
from ratbench.data.leakage import repair
from ratbench.data.manifest import Manifest
from ratbench.data.placing import digest_of
from ratbench.data.specs import DatasetSpec
from ratbench.data.vectors import VectorChoice, locate
from ratbench.errors import RatbenchError


def resolve(name: str) -> tuple[DatasetSpec, DatasetFamily]:
    spec = DATASETS.get(name)
    return spec, family_of(spec)


def source_files(name: str, root: Path) -> dict[str, Path]:
    """split -> source file of dataset `name` under `root`; built-in data is generated first."""
    spec, fam = resolve(name)
    fam.ensure(spec, Path(root))
    return fam.files(spec, Path(root))


def dataset_status(name: str, root: Path) -> tuple[bool, str]:
    """(available under `root`, how to get it) without generating anything."""
    spec, fam = resolve(name)
    return fam.available(spec, Path(root)), fam.how_to_get(spec)


def load_text_corpus(name: str, root: Path, splits: str = "published") -> TextCorpus:
    """The dataset's splits as a run sees them: read strictly, repaired when `splits="repaired"` (test whole, dev
    and train without any review seen in an earlier split: docs/leakage.md), then the training set balanced."""
    spec, fam = resolve(name)
    files = source_files(name, root)
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise RatbenchError(f"Dataset {name} is not available under {root}: missing {', '.join(missing)}. "
                            + fam.how_to_get(spec))
    corpus = fam.read(spec, Path(root))
    if splits == "repaired":
        corpus, _ = repair(corpus)
    elif splits != "published":
        raise RatbenchError(f"splits must be published or repaired, got {splits!r}.")
    if spec.balance_train:
        corpus.train = balance(corpus.train, spec.balance_seed)
    manifest = Manifest(root)
    corpus.files = {str(p): digest_of(manifest, p) for p in files.values()}  # a folder: ERASER's docs/
    return corpus


def vectors_for(name: str, setting: str, root: Path) -> VectorChoice:
    """The word vectors a run on dataset `name` uses: the dataset's default unless `setting` names others."""
    spec, fam = resolve(name)
    chosen = spec.vectors if setting == "default" else setting
    if fam.own_vectors and chosen == fam.own_vectors:
        fam.ensure(spec, Path(root))
        return VectorChoice(chosen, fam.vectors_file(spec, Path(root)))
    return locate(chosen, Path(root))
