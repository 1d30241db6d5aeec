"""The probe contract: which runs a probe needs, how it turns them into a table, and how it draws it.

A probe either reads what a finished run saved (its checkpoint, its per-epoch curves) or, for numbers that
only exist during training, names a training hook (`collects`) that the engine runs when the probe is enabled
(`--set probes=<name>`). Training hooks draw their random numbers inside `torch.random.fork_rng`, so enabling
a probe never changes a run's numbers; that is why `probes` is not part of the config hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ratbench.registry import Registry


@dataclass
class ProbeContext:
    """What `ratbench diagnose` was asked for; probes plan their runs from it."""

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


class Probe:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # training hook names this probe needs in the runs' records (engine `probes` setting)
    collects: ClassVar[tuple[str, ...]] = ()
    needs_checkpoint: ClassVar[bool] = False

    def jobs(self, ctx: ProbeContext) -> list:
        """The runs the probe reads (default: methods x datasets x seeds of the context, with its hooks on)."""
        from ratbench.runner import plan

        overrides = dict(ctx.overrides)
        if self.collects:  # the probe's hooks, plus any the user asked for (one training serves several probes)
            asked = [n.strip() for n in str(overrides.get("probes") or "").split(",") if n.strip()]
            overrides["probes"] = ",".join(dict.fromkeys([*asked, *self.collects]))
        return plan(ctx.methods, ctx.datasets, ctx.seeds, ctx.profile, overrides, ctx.epochs, ctx.device,
                    ctx.data_root, ctx.results)

    def usable(self, record: dict[str, Any], path: Path) -> bool:
        """Whether a finished record already holds what the probe needs (else the run is retrained)."""
        if self.needs_checkpoint and not path.with_suffix(".pt").exists():
            return False
        curves = record.get("curves") or [{}]
        return all(all(k in row for row in curves) for k in self.curve_keys())

    def curve_keys(self) -> list[str]:
        return []

    def compute(self, ctx: ProbeContext, runs: list[tuple[Path, dict[str, Any]]]) -> pd.DataFrame:
        raise NotImplementedError

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table printed and written as `<probe>_summary.csv` (default: the frame itself)."""
        return frame

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        raise NotImplementedError


PROBES: Registry[type[Probe]] = Registry("probe")


def register_probe(name: str):
    def deco(cls: type[Probe]) -> type[Probe]:
        cls.name = name
        PROBES.add(name, cls)
        return cls

    return deco


class TrainingHook:
    """Per-step/per-epoch collection inside `Engine.fit`; values land in the epoch's curve row."""

    def __init__(self, engine: Any):
        self.engine = engine

    def before_step(self, batch: Any) -> None:
        pass

    def after_step(self, batch: Any) -> None:
        pass

    def epoch_values(self) -> dict[str, float]:
        return {}


TRAINING_HOOKS: Registry[type[TrainingHook]] = Registry("training probe")
