"""`data fetch NAME` and `data import NAME PATH`: names resolve through the registries, never by if/else.

NAME is a dataset family (`hotel`, `beer`, ...), a dataset (`hotel-location`: its family's files), or a word
vector resource (`glove`, `glove-stanford`, `vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ratbench.data.catalog import DATASETS
from ratbench.data.families.base import FAMILIES, all_families, family
from ratbench.data.vectors import GLOVE_REMOTES, fetch_glove, import_vectors
from ratbench.errors import RatbenchError
from ratbench.registry import suggest

VECTOR_IMPORTS = {"glove": "GloVe 6B-100d (glove.6B.100d.txt, glove.6B.zip or glove-wiki-gigaword-100.gz)",
                  "vectors": "any word-vector file (GloVe/word2vec text, gzipped or not); --name NAME to name it"}


@dataclass
class Imported:
    files: list[Path]
    message: str
    datasets: list[str] = field(default_factory=list)  # the datasets whose files were placed


def fetch_names() -> list[str]:
    fams = [f.name for f in all_families() if any(s.remote for s in f.specs())]
    return [*fams, *GLOVE_REMOTES]


def fetch(name: str, root: Path, force: bool = False) -> list[Path]:
    if name in GLOVE_REMOTES:
        return [fetch_glove(name, root, force)]
    all_families()
    if name in FAMILIES:
        fam = family(name)
        specs = fam.specs()
        with_remote = [s for s in specs if fam.remote(s)]
        if not with_remote:
            return fam.fetch(specs[0], Path(root), force)  # raises the family's how-to-get text
        seen, placed = set(), []
        for spec in with_remote:  # one download per archive, however many datasets share it
            remote = fam.remote(spec)
            if remote.url in seen:
                continue
            seen.add(remote.url)
            placed += fam.fetch(spec, Path(root), force)
        return placed
    if name in DATASETS:
        spec = DATASETS.get(name)
        return family(spec.family).fetch(spec, Path(root), force)
    choices = fetch_names()
    raise RatbenchError(f"Cannot fetch {name!r}.{suggest(name, choices + DATASETS.names())} Fetchable: "
                        f"{', '.join(choices)}, or a dataset of theirs. See `ratbench data list`.")


def import_names() -> dict[str, str]:
    out = {f.name: f.import_help for f in all_families() if f.import_help}
    return {**out, **VECTOR_IMPORTS}


def import_path(name: str, path: Path, root: Path, vector_name: str | None = None) -> Imported:
    if name in VECTOR_IMPORTS:
        choice = import_vectors(path, root, name=vector_name, as_glove=name == "glove")
        how = "" if choice.name == "glove-6b-100d" else f"; select them with --set vectors={choice.name}"
        return Imported([choice.path], f"Imported word vectors {choice.name!r} into {choice.path}{how}")
    names = import_names()
    if name in DATASETS and DATASETS.get(name).family in names:  # a dataset name imports through its family
        name = DATASETS.get(name).family
    if name not in names:
        raise RatbenchError(f"Cannot import {name!r}.{suggest(name, list(names))} Choose one of: "
                            + "; ".join(f"{k} ({v})" for k, v in names.items()) + ".")
    fam = family(name)
    placed = fam.import_path(Path(path), Path(root))
    # the family's datasets whose files this import placed (an ERASER import may bring one task of seven)
    new = {Path(p).resolve() for p in placed}
    here = [s.name for s in fam.specs() if {p.resolve() for p in fam.files(s, Path(root)).values()} <= new]
    return Imported(placed, f"Imported {len(placed)} file(s) for {name} into {root} (sha256 recorded in "
                            "manifest.json).", here)
