"""Dataset name -> where its files live under the data root -> a `TextCorpus`."""

from __future__ import annotations

from pathlib import Path

from ratbench.data.corpus import TextCorpus
from ratbench.data.manifest import Manifest
from ratbench.data.specs import DATASETS
from ratbench.errors import RatbenchError

HOW = {
    "beer": "The BeerAdvocate subsets are available on request from their authors (research use only; see "
            "McAuley et al. 2012 and Lei et al. 2016). Once you have the files, run "
            "`ratbench data import beer DIR` with the folder holding reviews.aspect*.txt.gz and annotations.json.",
    "hotel": "Run `ratbench data fetch hotel` (the R2A release, research use only), or "
             "`ratbench data import hotel PATH` with data.zip or its extracted folder.",
    "synth": "Built in: generated automatically on first use.",
}


def source_files(name: str, root: Path) -> dict[str, Path]:
    """split -> file of dataset `name` under `root` (they may not exist yet)."""
    from ratbench.data.formats.beer import beer_files
    from ratbench.data.formats.hotel import hotel_files

    spec = DATASETS.get(name)
    root = Path(root)
    if spec.family == "beer":
        return beer_files(root / "beer", spec.aspect)
    if spec.family == "hotel":
        return hotel_files(root / "hotel" / "data", spec.aspect_name)
    from ratbench.data.synthetic import ensure_synthetic

    return beer_files(ensure_synthetic(root), spec.aspect)


def dataset_status(name: str, root: Path) -> tuple[bool, str]:
    spec = DATASETS.get(name)
    if spec.family == "synth":
        from ratbench.data.synthetic import synth_dir

        return (synth_dir(root) / "vectors.txt").exists(), HOW["synth"]
    files = source_files(name, root)
    return all(p.exists() for p in files.values()), HOW[spec.family]


def load_text_corpus(name: str, root: Path) -> TextCorpus:
    spec = DATASETS.get(name)
    files = source_files(name, root)
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise RatbenchError(f"Dataset {name} is not available under {root}: missing {', '.join(missing)}. "
                            + HOW[spec.family])
    if spec.family == "hotel":
        from ratbench.data.formats.hotel import read_hotel_corpus

        corpus = read_hotel_corpus(Path(root) / "hotel" / "data", spec)
    else:
        from ratbench.data.formats.beer import read_beer_corpus

        corpus = read_beer_corpus(files["test"].parent, spec)
    manifest = Manifest(root)
    corpus.files = {str(p): manifest.digest(p) for p in files.values()}
    return corpus
