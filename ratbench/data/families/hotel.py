"""HotelReview as released by Bao et al. (2018, R2A): `<root>/hotel/data/oracle/hotel_<Aspect>.{train,dev}` and
`target/hotel_<Aspect>.train` (the annotated test set; reader: `ratbench.data.formats.hotel`)."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from rich.console import Console

from ratbench.data.corpus import TextCorpus
from ratbench.data.download import download
from ratbench.data.families.base import DatasetFamily, register_family
from ratbench.data.formats.hotel import hotel_files, read_hotel_corpus, read_hotel_tsv
from ratbench.data.manifest import Manifest
from ratbench.data.placing import place_dir, safe_extract
from ratbench.data.specs import DatasetSpec
from ratbench.errors import RatbenchError

ASPECTS = ["Location", "Service", "Cleanliness"]
HOW = ("Run `ratbench data fetch hotel` (the R2A release, research use only), or "
       "`ratbench data import hotel PATH` with data.zip or its extracted folder.")


def _find_layout(base: Path) -> tuple[Path, Path] | None:
    """(oracle dir, target dir) for the R2A layouts and the flat layout, else None."""
    for oracle, target in ((base / "data" / "oracle", base / "data" / "target"), (base / "oracle", base / "target"),
                           (base, base / "annotations")):
        if (oracle / "hotel_Location.train").exists() and (target / "hotel_Location.train").exists():
            return oracle, target
    return None


@register_family
class Hotel(DatasetFamily):
    name = "hotel"
    import_help = "the R2A data.zip or its extracted folder"

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        return hotel_files(Path(root) / "hotel" / "data", spec.aspect_name)

    def how_to_get(self, spec: DatasetSpec) -> str:
        return HOW

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        return read_hotel_corpus(Path(root) / "hotel" / "data", spec)

    def fetch(self, spec: DatasetSpec, root: Path, force: bool = False) -> list[Path]:
        root = Path(root)
        if self.available(spec, root) and not force:
            return [root / "hotel"]
        remote = self.remote(spec)
        if remote.notice:
            Console(stderr=True).print(f"[yellow]{remote.notice}[/]")
        archive = download(remote, root / "downloads")
        Manifest(root).record(archive, source=remote.url)
        self.import_path(archive, root)  # validates every file and places hotel/ atomically
        return [root / "hotel"]

    def import_path(self, path: Path, root: Path) -> list[Path]:
        src = Path(path)
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=root, prefix=".hotel-import-"))
        try:
            if src.is_file():
                if not zipfile.is_zipfile(src):
                    raise RatbenchError(f"{src} is neither a folder nor a zip archive; pass the R2A data.zip or a "
                                        "folder.")
                with zipfile.ZipFile(src) as zf:
                    safe_extract(zf, work / "unzipped")
                layout = _find_layout(work / "unzipped")
            elif src.is_dir():
                layout = _find_layout(src)
            else:
                raise RatbenchError(f"{src} does not exist.")
            if layout is None:
                raise RatbenchError(f"{src}: no hotel files found. Expected the R2A layout (data/oracle/hotel_X.train|"
                                    "dev and data/target/hotel_X.train) or hotel_X.train|dev with the annotated files "
                                    "in annotations/.")
            oracle, target = layout
            staged = work / "hotel" / "data"
            (staged / "oracle").mkdir(parents=True)
            (staged / "target").mkdir(parents=True)
            for a in ASPECTS:
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
            place_dir(work / "hotel", root / "hotel")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        manifest = Manifest(root)
        placed = sorted(p for p in (root / "hotel" / "data").rglob("*") if p.is_file())
        for f in placed:
            manifest.record(f, source=f"import:{src.resolve()}")
        return placed
