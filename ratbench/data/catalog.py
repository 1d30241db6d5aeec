"""Every dataset ratbench knows: one `DatasetSpec` entry each, grouped by family.

A new dataset in a known format is one more entry here (docs/contributing: "Add a dataset").
"""

from __future__ import annotations

from ratbench.data.specs import DatasetSpec, Remote
from ratbench.registry import Registry, expand_names

DATASETS: Registry[DatasetSpec] = Registry("dataset")

_BEER_CITE = "McAuley et al. 2012; Lei et al. 2016 (subsets and annotations)"
_BEER_LICENCE = "research use only; obtain from the authors"
_HOTEL_CITE = "Wang et al. 2010; Bao et al. 2018 (R2A release)"
_HOTEL_REMOTE = Remote(
    "HOTEL", "https://people.csail.mit.edu/yujia/files/r2a/data.zip", "data.zip",
    "sha256:23fcb4cac883ec1de86d83a7747294d7fdae10061d3803fd4c34c930e66f25de",
    "a third-party record (nlp-unibo/pyhighlights)",
    notice="The HotelReview release of Bao et al. (2018) is for research purposes only.",
)
BEER_PRIOR = (0.05, 0.95)  # the reference's constants for beer (its correlated data is ~95 % positive)

_ENTRIES = [
    *(DatasetSpec(f"beer-{a}", "beer", f"Beer-{a.title()}", aspect=i, aspect_name=a, citation=_BEER_CITE,
                  licence=_BEER_LICENCE, class_prior=BEER_PRIOR, groups=("all",))
      for i, a in enumerate(["appearance", "aroma", "palate"])),
    *(DatasetSpec(f"hotel-{a.lower()}", "hotel", f"Hotel-{a}", aspect=i, aspect_name=a, citation=_HOTEL_CITE,
                  licence="research use only (R2A release)", remote=_HOTEL_REMOTE, groups=("all",))
      for i, a in enumerate(["Location", "Service", "Cleanliness"])),
    # the synthetic corpus imitates beer, so it keeps beer's prior
    *(DatasetSpec(f"synth-{a}", "synth", f"Synth-{a.title()}", aspect=i, aspect_name=a, vectors="synth",
                  encoder="local", citation="ratbench built-in synthetic corpus", licence="MIT (generated)",
                  class_prior=BEER_PRIOR)
      for i, a in enumerate(["appearance", "aroma", "palate"])),
    DatasetSpec("toy", "toy", "Toy", vectors="toy", encoder="local", citation="ratbench test corpus",
                licence="MIT (generated)", hidden=True),
]
for _spec in _ENTRIES:
    DATASETS.add(_spec.name, _spec)


def dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def visible() -> list[str]:
    return [n for n in DATASETS if not DATASETS.get(n).hidden]


def groups() -> dict[str, list[str]]:
    """Each family's name, then every declared group (`all` = beer + hotel), in catalog order."""
    out: dict[str, list[str]] = {}
    for name in visible():
        spec = DATASETS.get(name)
        out.setdefault(spec.family, []).append(name)
    for name in visible():
        for g in DATASETS.get(name).groups:
            out.setdefault(g, []).append(name)
    return out


def expand_datasets(text: str) -> list[str]:
    return expand_names(text, DATASETS.names(), groups(), "dataset", "--datasets synth or --datasets beer-aroma")
