"""Every dataset ratbench knows: one `DatasetSpec` entry each, grouped by family.

A new dataset in a known format is one more entry here (docs/contributing: "Add a dataset").
"""

from __future__ import annotations

from ratbench.data.formats.eraser import ERASER_TASKS, EraserTask
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

# ERASER (docs/datasets-eraser.md): the seven published tasks (group `eraser`) and the two training variants
# ERASER's own baselines train on (group `eraser-variants`, only ever used when named)
ERASER_TITLES = {"movies": "ERASER-Movies", "multirc": "ERASER-MultiRC", "fever": "ERASER-FEVER",
                 "boolq": "ERASER-BoolQ", "evidence_inference": "ERASER-Evidence-Inference", "cose": "ERASER-CoS-E",
                 "esnli": "ERASER-e-SNLI", "esnli_flat": "ERASER-e-SNLI (flat; training variant)",
                 "cose_simplified": "ERASER-CoS-E (simplified; training variant)"}
# the GRU methods read every document whole (Movies averages ~774 tokens, Evidence Inference several thousand);
# transformers cut at the `max_len` setting (docs/datasets-eraser.md#model-input)
ERASER_WHOLE = 1_000_000


def _eraser_spec(task: EraserTask) -> DatasetSpec:
    digest = f"sha256:{task.sha256}" if task.sha256 else None
    parent = ERASER_TASKS[task.archive]
    remote = Remote(f"ERASER_{parent.name.upper()}", parent.url, f"{parent.name}.tar.gz", digest,
                    parent.digest_source, parent.size)
    k = len(task.labels)
    return DatasetSpec(
        f"eraser-{task.name.replace('_', '-')}", "eraser-variants" if task.scored_as else "eraser",
        ERASER_TITLES[task.name], citation=" / ".join(task.citations), licence=task.licence,
        class_prior=tuple(1.0 / k for _ in range(k)), label_names=task.labels, max_len=ERASER_WHOLE,
        balance_train=False, remote=remote,
        # GloVe 6B is uncased: the GRU looks each token up lower-cased (the tokens themselves stay as distributed)
        extra={"task": task.name, "lookup": "lower", "scored_as": task.scored_as, "query": task.query})

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
    *(_eraser_spec(t) for t in ERASER_TASKS.values() if not t.scored_as),
    *(_eraser_spec(t) for t in ERASER_TASKS.values() if t.scored_as),
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
