"""The probe contract: which runs a probe needs (as data), how it turns them into a table, how it draws it.

A probe either reads what a finished run saved (its record, its checkpoint, its per-epoch curves) or, for
numbers that only exist during training, carries a training `hook` (an engine Callback) that runs when the
probe is enabled (`--set probes=<name>`). Hooks draw their random numbers inside `torch.random.fork_rng`,
so enabling a probe never changes a run's numbers; that is why `probes` is not part of the config hash.
Probes never plan or train runs themselves: they return `RunRequest`s and the composition root
(`ratbench.api.diagnose`) plans, trains and restores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ratbench.engine.callbacks import Callback
from ratbench.probes.catalog import PROBES, ProbeInfo
from ratbench.results.record import RunRecord


@dataclass
class ProbeContext:
    """What `ratbench diagnose` was asked for; probes derive their run requests from it."""

    methods: list[str]
    datasets: list[str]
    seeds: list[int]
    profile: str
    overrides: dict[str, Any]
    epochs: int | None
    device: str
    data_root: Path
    results: Path
    out: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRequest:
    """Runs a probe reads: methods x datasets x seeds with these overrides (planned like `ratbench run`)."""

    methods: list[str]
    datasets: list[str]
    seeds: list[int]
    overrides: dict[str, Any]


@dataclass
class ProbeRun:
    """A finished run handed to `Probe.compute`; `restore()` gives (method, model, corpus) from its checkpoint."""

    path: Path
    record: RunRecord
    restore: Callable[[], tuple[Any, Any, Any]]


class Probe:
    info: ClassVar[ProbeInfo]
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # the training hook this probe needs in the runs it reads (None: it reads finished runs only)
    hook: ClassVar[type[Callback] | None] = None
    needs_checkpoint: ClassVar[bool] = False

    def requests(self, ctx: ProbeContext) -> list[RunRequest]:
        """The runs the probe reads (default: methods x datasets x seeds of the context, with its hook on)."""
        overrides = dict(ctx.overrides)
        if self.hook is not None:  # this probe's hook, plus any the user asked for (one training serves several)
            asked = [n.strip() for n in str(overrides.get("probes") or "").split(",") if n.strip()]
            overrides["probes"] = ",".join(dict.fromkeys([*asked, self.name]))
        return [RunRequest(ctx.methods, ctx.datasets, ctx.seeds, overrides)]

    def usable(self, record: RunRecord, has_checkpoint: bool) -> bool:
        """Whether a finished record already holds what the probe needs (else the run is retrained)."""
        if self.needs_checkpoint and not has_checkpoint:
            return False
        curves = record.curves or [{}]
        return all(all(k in row for row in curves) for k in self.curve_keys())

    def curve_keys(self) -> list[str]:
        return []

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        raise NotImplementedError

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table printed and written as `<probe>_summary.csv` (default: the frame itself)."""
        return frame

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        raise NotImplementedError


def register_probe(info: ProbeInfo) -> Callable[[type[Probe]], type[Probe]]:
    def deco(cls: type[Probe]) -> type[Probe]:
        if not (isinstance(cls, type) and issubclass(cls, Probe)):
            raise TypeError(f"@register_probe({info.name!r}) must decorate a subclass of Probe")
        cls.info, cls.name, cls.title = info, info.name, info.title
        PROBES.add(info.name, cls)
        return cls

    return deco
