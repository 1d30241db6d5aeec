"""BeerAdvocate as prepared by Lei et al. (2016): `<root>/beer/reviews.aspect{a}.{train,heldout}.txt[.gz]` and
`annotations.json` (reader: `ratbench.data.formats.beer`). Not downloadable: on request from the authors."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ratbench.data.corpus import TextCorpus
from ratbench.data.families.base import DatasetFamily, register_family
from ratbench.data.formats.beer import beer_files, read_beer_annotations, read_beer_corpus, read_beer_reviews
from ratbench.data.manifest import Manifest
from ratbench.data.placing import place_dir
from ratbench.data.specs import DatasetSpec
from ratbench.errors import RatbenchError

HOW = ("The BeerAdvocate subsets are available on request from their authors (research use only; see "
       "McAuley et al. 2012 and Lei et al. 2016). Once you have the files, run "
       "`ratbench data import beer DIR` with the folder holding reviews.aspect*.txt.gz and annotations.json.")
NOT_FETCHED = (
    "The BeerAdvocate data is not downloaded by ratbench: its owner asked for it to be withdrawn from public "
    "hosting, and the Lei et al. (2016) subsets are for research use only. Ask the authors (McAuley; Lei et al.) "
    "for the files reviews.aspect{0,1,2}.{train,heldout}.txt.gz and annotations.json, then run "
    "`ratbench data import beer DIR`."
)


@register_family
class Beer(DatasetFamily):
    name = "beer"
    import_help = "the folder holding reviews.aspect{0,1,2}.{train,heldout}.txt(.gz) and annotations.json"

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        return beer_files(Path(root) / "beer", spec.aspect)

    def how_to_get(self, spec: DatasetSpec) -> str:
        return HOW

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        return read_beer_corpus(Path(root) / "beer", spec)

    def fetch(self, spec: DatasetSpec, root: Path, force: bool = False) -> list[Path]:
        raise RatbenchError(NOT_FETCHED)

    def import_path(self, path: Path, root: Path) -> list[Path]:
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
            place_dir(staged, root / "beer")
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        manifest = Manifest(root)
        placed = sorted((root / "beer").iterdir())
        for f in placed:
            manifest.record(f, source=f"import:{(src / f.name).resolve()}")
        return placed
