"""Word vectors as a resource, like a dataset: named, imported or fetched, selected by the `vectors` setting.

`glove-6b-100d` (GloVe 6B, 100 dimensions, the published setting) is the default of the Beer and Hotel
datasets; the synthetic and toy corpora bring their own (`synth`, `toy`). Any other vector file that imports
(GloVe 840B-300d, a fastText `.vec`, a renamed copy) is stored as `<root>/vectors/<name>.<ext>` and selected
with `--set vectors=<name>`; the name actually used is recorded in every RunRecord.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ratbench.data.download import download
from ratbench.data.embeddings import GENSIM_NAME, STANFORD_NAME, STANFORD_ROWS, read_vectors
from ratbench.data.formats.textfile import GZIP_MAGIC
from ratbench.data.manifest import Manifest
from ratbench.data.specs import Remote
from ratbench.errors import DownloadError, RatbenchError

DEFAULT = "glove-6b-100d"
GLOVE_SHAPE = (STANFORD_ROWS, 100)
GLOVE_REMOTES = {
    "glove": Remote(
        "GLOVE",
        "https://github.com/RaRe-Technologies/gensim-data/releases/download/glove-wiki-gigaword-100/"
        "glove-wiki-gigaword-100.gz",
        GENSIM_NAME, "md5:40ec481866001177b8cd4cb0df92924f", "gensim-data's list.json",
    ),
    "glove-stanford": Remote(
        "GLOVE_STANFORD", "https://nlp.stanford.edu/data/glove.6B.zip", "glove.6B.zip",
        "md5:056ea991adb4740ac6bf1b6d9b50408b", "a third-party record (wedavey/atnlp)",
    ),
}
HOW_GLOVE = (f"Run `ratbench data fetch glove`, or `ratbench data import glove FILE` with {STANFORD_NAME}, "
             f"glove.6B.zip or {GENSIM_NAME}.")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SUFFIXES = (".txt", ".gz", ".vec")


@dataclass(frozen=True)
class VectorChoice:
    name: str
    path: Path


def glove_dir(root: Path) -> Path:
    return Path(root) / "glove"


def imported_dir(root: Path) -> Path:
    return Path(root) / "vectors"


def _glove_file(root: Path) -> Path | None:
    for name in (STANFORD_NAME, GENSIM_NAME):
        if (glove_dir(root) / name).exists():
            return glove_dir(root) / name
    return None


def _imported_file(name: str, root: Path) -> Path | None:
    for suffix in _SUFFIXES:
        path = imported_dir(root) / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def imported_names(root: Path) -> list[str]:
    folder = imported_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(s)] for p in folder.iterdir() for s in _SUFFIXES if p.name.endswith(s))


def locate(name: str, root: Path) -> VectorChoice:
    """The file of vector resource `name` under the data root, or an error saying how to get it."""
    if name == DEFAULT:
        path = _glove_file(root)
        if path is None:
            raise RatbenchError(f"GloVe vectors ({DEFAULT}) are not in {glove_dir(root)}. {HOW_GLOVE}")
        return VectorChoice(name, path)
    path = _imported_file(name, root)
    if path is None:
        known = [DEFAULT, *imported_names(root)]
        raise RatbenchError(
            f"No word vectors named {name!r} under {root}. Import a vector file with `ratbench data import vectors "
            f"FILE --name {name}`, or choose one of: {', '.join(known)} (--set vectors=NAME).")
    return VectorChoice(name, path)


def available_glove(root: Path) -> bool:
    return _glove_file(root) is not None


def fetch_glove(which: str, root: Path, force: bool = False) -> Path:
    """`data fetch glove` (gensim-data's file) or `glove-stanford` (the Stanford zip's 100d member)."""
    remote = GLOVE_REMOTES[which]
    target = glove_dir(root) / (GENSIM_NAME if which == "glove" else STANFORD_NAME)
    if target.exists() and not force:
        return target
    downloads = Path(root) / "downloads"
    archive = download(remote, downloads)
    try:
        if which == "glove-stanford" and not zipfile.is_zipfile(archive):
            raise DownloadError(f"{archive} is not a zip archive.")
        placed = import_vectors(archive, root, as_glove=True)
        Manifest(root).record(placed.path, source=remote.url)
    finally:
        if which == "glove":
            archive.unlink(missing_ok=True)  # the import made its own copy
    shutil.rmtree(downloads / "tmp", ignore_errors=True)
    return placed.path


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".txt", ".vec", ".zip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def import_vectors(path: Path, root: Path, name: str | None = None, as_glove: bool = False) -> VectorChoice:
    """Validate a vector file fully and place it.

    GloVe 6B-100d content (400,000 rows of 100 values: the Stanford txt or zip member, or gensim-data's .gz)
    becomes the default resource under its canonical name, whatever the file is called. Anything else becomes
    a named resource `<root>/vectors/<name>.<ext>` (name: `name`, else the file's name without suffixes).
    `as_glove` (the `glove` import) asks for GloVe, so a zip must hold glove.6B.100d.txt.
    """
    path = Path(path)
    if not path.exists():
        raise RatbenchError(f"{path} does not exist.")
    if name is not None and not _NAME.match(name):
        raise RatbenchError(f"Vector name {name!r} may hold letters, digits, '.', '-' and '_' only.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".vectors-import-"))
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if Path(m).name == STANFORD_NAME]
                if not members:
                    raise RatbenchError(f"{path} has no {STANFORD_NAME} member; pass the Stanford glove.6B.zip, or "
                                        "the extracted vector file.")
                staged = tmp / STANFORD_NAME
                with zf.open(members[0]) as src, open(staged, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        else:
            with open(path, "rb") as fh:
                suffix = ".gz" if fh.read(2) == GZIP_MAGIC else (".vec" if path.suffix == ".vec" else ".txt")
            staged = tmp / f"staged{suffix}"
            shutil.copyfile(path, staged)
        kv = read_vectors(staged, restrict_to=set())  # full validation before anything is placed
        shape = (kv.n_file_rows, kv.vector_size)
        if shape == GLOVE_SHAPE and name in (None, DEFAULT):
            canonical = GENSIM_NAME if staged.suffix == ".gz" else STANFORD_NAME
            final = glove_dir(root) / canonical
            chosen = DEFAULT
        else:
            if as_glove and name is None and path.name in (STANFORD_NAME, GENSIM_NAME):
                raise RatbenchError(f"{path} is named like GloVe 6B-100d but holds {shape[0]} rows of {shape[1]} "
                                    f"values (expected {GLOVE_SHAPE[0]} of {GLOVE_SHAPE[1]}); it is truncated or "
                                    "another release. Re-download it, or import it under its own name with "
                                    "`ratbench data import vectors FILE --name NAME`.")
            chosen = name or _stem(path)
            if not _NAME.match(chosen):
                raise RatbenchError(f"Cannot derive a vector name from {path.name!r}; pass --name NAME.")
            final = imported_dir(root) / f"{chosen}{staged.suffix}"
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Manifest(root).record(final, source=f"import:{path.resolve()}", rows=shape[0], dim=shape[1])
    return VectorChoice(chosen, final)
