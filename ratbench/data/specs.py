"""Typed dataset metadata: what a dataset is, where it comes from, how it is read and cited.

The entries are in `ratbench.data.catalog`; how a family's files are found and read is in
`ratbench.data.families.<family>`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Remote:
    """A published file ratbench may download: URL, name, digest and where the digest comes from."""

    key: str  # environment-override key: RATBENCH_EXPECTED_SHA256_<KEY>
    url: str
    filename: str
    digest: str | None  # "sha256:..." or "md5:..."; None: recorded on first download, verified afterwards
    digest_source: str
    size: int | None = None
    notice: str = ""  # printed before downloading (licence terms)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset name of the command line (see docs/datasets.md)."""

    name: str
    family: str  # the plug-in in ratbench/data/families/ that finds and reads its files
    title: str  # as published tables name it ("Beer-Appearance")
    aspect: int = 0  # column / aspect index within the family's files
    aspect_name: str = ""
    vectors: str = "glove-6b-100d"  # the word vectors GRU methods use unless `--set vectors=...` says otherwise
    encoder: str = "bert-base-uncased"  # the transformer backbone's encoder unless `--set encoder=...` says otherwise
    citation: str = ""
    licence: str = ""
    # class distribution the published code assumes for this data (Inter_RAT's backdoor adjustment reads it;
    # the reference hard-codes 0.05 / 0.95 for beer-like corpora)
    class_prior: tuple[float, ...] = (0.5, 0.5)
    label_names: tuple[str, ...] = ("0", "1")
    max_len: int = 256  # tokens kept per example (text and gold)
    neg_threshold: float = 0.4  # beer-format label rule: score <= 0.4 -> 0, >= 0.6 -> 1, middle dropped
    pos_threshold: float = 0.6
    balance_train: bool = True  # down-sample the training set's majority class, as the published loaders do
    balance_seed: int = 20226666  # their fixed seed for it
    groups: tuple[str, ...] = ()  # dataset groups besides the family's own name (e.g. "all")
    hidden: bool = False  # test-only datasets: left out of `data list` and of every group
    remote: Remote | None = None  # where `data fetch` downloads it from (None: not downloadable)
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific facts (e.g. an ERASER task name)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)
