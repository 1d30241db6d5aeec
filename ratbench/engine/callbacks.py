"""The one way to watch or extend a training run from outside the engine: a list of callbacks.

Progress displays and the probes' training hooks are callbacks. A callback must not change a run's numbers:
one that draws random numbers does so inside `torch.random.fork_rng` (docs/decisions/0004-probe-hooks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ratbench.data.batching import Batch

Engine = Any  # ratbench.engine.loop.Engine; not imported here, the loop imports this module
RunResult = Any


class Callback:
    """Every hook is optional; the engine calls them in this order."""

    def on_fit_start(self, engine: Engine) -> None:
        """After the model is built and before pretraining."""

    def before_step(self, engine: Engine, batch: Batch) -> None:
        """Before each optimiser step (the model still has the previous step's weights)."""

    def after_step(self, engine: Engine, batch: Batch, stats: dict[str, float], step: int, n_steps: int) -> None:
        """After each optimiser step; `step` counts from 1 within the epoch."""

    def epoch_values(self, engine: Engine, epoch: int) -> dict[str, float]:
        """Extra values for the epoch's curve row (probes), after the epoch's evaluation."""
        return {}

    def on_epoch_end(self, engine: Engine, row: dict[str, Any]) -> None:
        """After model selection and calibration saw the epoch; `row` is its curve row."""

    def on_fit_end(self, engine: Engine, result: RunResult) -> None:
        """After the selected epoch's final metrics are computed."""


class CallbackList(Callback):
    def __init__(self, callbacks: Sequence[Callback] = ()):
        self.callbacks = list(callbacks)

    def on_fit_start(self, engine: Engine) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(engine)

    def before_step(self, engine: Engine, batch: Batch) -> None:
        for cb in self.callbacks:
            cb.before_step(engine, batch)

    def after_step(self, engine: Engine, batch: Batch, stats: dict[str, float], step: int, n_steps: int) -> None:
        for cb in self.callbacks:
            cb.after_step(engine, batch, stats, step, n_steps)

    def epoch_values(self, engine: Engine, epoch: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for cb in self.callbacks:
            out.update(cb.epoch_values(engine, epoch))
        return out

    def on_epoch_end(self, engine: Engine, row: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(engine, row)

    def on_fit_end(self, engine: Engine, result: RunResult) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(engine, result)
