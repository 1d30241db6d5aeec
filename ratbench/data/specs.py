"""Dataset registry: every name of cli.md, its family, aspect, files and how to obtain it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ratbench.registry import Registry, expand_names


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is; where its files live is decided by the family's format module."""

    name: str
    family: str  # "beer" | "hotel" | "synth"
    aspect: int  # column / aspect index (beer: 0 appearance, 1 aroma, 2 palate; hotel: 0 loc, 1 svc, 2 clean)
    aspect_name: str  # "appearance", "Location", ...
    vectors: str  # "glove" or "synth": which word vectors the GRU methods use
    title: str  # "Beer-Appearance": the name used by published tables
    # label rule (beer-format data only; hotel labels are already binary)
    neg_threshold: float = 0.4
    pos_threshold: float = 0.6
    max_len: int = 256
    balance_seed: int = 20226666
    citation: str = ""
    licence: str = ""
    extra: dict = field(default_factory=dict)


DATASETS: Registry[DatasetSpec] = Registry("dataset")

_BEER_CITE = "McAuley et al. 2012; Lei et al. 2016 (subsets and annotations)"
_HOTEL_CITE = "Wang et al. 2010; Bao et al. 2018 (R2A release)"

for _i, _a in enumerate(["appearance", "aroma", "palate"]):
    DATASETS.add(
        f"beer-{_a}",
        DatasetSpec(f"beer-{_a}", "beer", _i, _a, "glove", f"Beer-{_a.title()}", citation=_BEER_CITE,
                    licence="research use only; obtain from the authors"),
    )
for _i, _a in enumerate(["Location", "Service", "Cleanliness"]):
    DATASETS.add(
        f"hotel-{_a.lower()}",
        DatasetSpec(f"hotel-{_a.lower()}", "hotel", _i, _a, "glove", f"Hotel-{_a}", citation=_HOTEL_CITE,
                    licence="research use only (R2A release)"),
    )
for _i, _a in enumerate(["appearance", "aroma", "palate"]):
    DATASETS.add(
        f"synth-{_a}",
        DatasetSpec(f"synth-{_a}", "synth", _i, _a, "synth", f"Synth-{_a.title()}",
                    citation="ratbench built-in synthetic corpus", licence="MIT (generated)"),
    )

GROUPS: dict[str, list[str]] = {
    "beer": [n for n in DATASETS if n.startswith("beer-")],
    "hotel": [n for n in DATASETS if n.startswith("hotel-")],
    "synth": [n for n in DATASETS if n.startswith("synth-")],
}
GROUPS["all"] = GROUPS["beer"] + GROUPS["hotel"]


def expand_datasets(text: str) -> list[str]:
    return expand_names(text, DATASETS, GROUPS, "--datasets synth or --datasets beer-aroma")
