"""`data import NAME PATH`: take the files users actually have, validate them fully, place them atomically."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ratbench.data.formats.beer import read_beer_annotations, read_beer_reviews
from ratbench.data.formats.hotel import read_hotel_tsv
from ratbench.data.manifest import Manifest
from ratbench.errors import RatbenchError

HOTEL_ASPECTS = ["Location", "Service", "Cleanliness"]


def safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract, refusing members with absolute paths or `..` (datasets.md §5 #25)."""
    for member in zf.namelist():
        p = PurePosixPath(member)
        if p.is_absolute() or ".." in p.parts or member.startswith(("/", "\\")) or ":" in p.parts[0]:
            raise RatbenchError(f"{zf.filename}: refusing archive member {member!r} (absolute path or '..'); "
                                "the archive is not the expected release.")
    zf.extractall(dest)


def _place(staged: Path, final: Path) -> None:
    """Replace `final` by `staged` (a directory) with a rename, keeping the old copy until the swap."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    if old.exists():
        shutil.rmtree(old)


def import_beer(path: Path, root: Path) -> list[Path]:
    src = Path(path)
    if not src.is_dir():
        raise RatbenchError(f"{src} is not a folder. Pass the folder holding reviews.aspect{{0,1,2}}.train.txt.gz, "
                            "reviews.aspect{0,1,2}.heldout.txt.gz and annotations.json (gzipped or not).")
    wanted = []
    for a in range(3):
        for part in ("train", "heldout"):
            cands = [src / f"reviews.aspect{a}.{part}.txt.gz", src / f"reviews.aspect{a}.{part}.txt"]
            found = next((c for c in cands if c.exists()), None)
            if found is None:
                raise RatbenchError(f"{src} has no reviews.aspect{a}.{part}.txt(.gz); the beer import needs all "
                                    "six review files and annotations.json.")
            wanted.append((found, a))
    ann = src / "annotations.json"
    if not ann.exists():
        raise RatbenchError(f"{src} has no annotations.json (the annotated test set).")
    for f, a in wanted:
        read_beer_reviews(f, a)
    for a in range(3):
        read_beer_annotations(ann, a)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=root, prefix=".beer-import-"))
    try:
        for f, _ in wanted + [(ann, None)]:
            shutil.copyfile(f, staged / f.name)
        _place(staged, root / "beer")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    manifest = Manifest(root)
    placed = sorted((root / "beer").iterdir())
    for f in placed:
        manifest.record(f, source=f"import:{(src / f.name).resolve()}")
    return placed


def _find_hotel_layout(base: Path) -> tuple[Path, Path] | None:
    """(oracle dir, target dir) for the R2A layouts and the flat layout, else None."""
    for oracle, target in ((base / "data" / "oracle", base / "data" / "target"), (base / "oracle", base / "target"),
                           (base, base / "annotations")):
        if (oracle / "hotel_Location.train").exists() and (target / "hotel_Location.train").exists():
            return oracle, target
    return None


def import_hotel(path: Path, root: Path) -> list[Path]:
    src = Path(path)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=".hotel-import-"))
    try:
        if src.is_file():
            if not zipfile.is_zipfile(src):
                raise RatbenchError(f"{src} is neither a folder nor a zip archive; pass the R2A data.zip or a folder.")
            with zipfile.ZipFile(src) as zf:
                safe_extract(zf, work / "unzipped")
            layout = _find_hotel_layout(work / "unzipped")
        elif src.is_dir():
            layout = _find_hotel_layout(src)
        else:
            raise RatbenchError(f"{src} does not exist.")
        if layout is None:
            raise RatbenchError(f"{src}: no hotel files found. Expected the R2A layout (data/oracle/hotel_X.train|dev "
                                "and data/target/hotel_X.train) or hotel_X.train|dev with the annotated files in "
                                "annotations/.")
        oracle, target = layout
        staged = work / "hotel" / "data"
        (staged / "oracle").mkdir(parents=True)
        (staged / "target").mkdir(parents=True)
        for a in HOTEL_ASPECTS:
            for part in ("train", "dev"):
                f = oracle / f"hotel_{a}.{part}"
                if not f.exists():
                    raise RatbenchError(f"{f} is missing; every aspect needs its train and dev files.")
                read_hotel_tsv(f)
                shutil.copyfile(f, staged / "oracle" / f.name)
            t = target / f"hotel_{a}.train"
            if not t.exists():
                raise RatbenchError(f"{t} (annotated test set of hotel-{a.lower()}) is missing.")
            read_hotel_tsv(t, annotated=True)
            shutil.copyfile(t, staged / "target" / t.name)
        _place(work / "hotel", root / "hotel")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = Manifest(root)
    placed = sorted(p for p in (root / "hotel" / "data").rglob("*") if p.is_file())
    for f in placed:
        manifest.record(f, source=f"import:{src.resolve()}")
    return placed


def import_dataset(name: str, path: Path, root: Path) -> list[Path]:
    if name == "beer":
        return import_beer(path, root)
    if name == "hotel":
        return import_hotel(path, root)
    if name == "glove":
        from ratbench.data.embeddings import import_glove

        return [import_glove(path, root)]
    raise RatbenchError(f"Cannot import {name!r}: choose beer, hotel or glove.")
