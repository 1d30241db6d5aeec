"""Model selection: which epoch's model a run reports (dev only, never test).

The rule (docs/decisions/0001-model-selection.md): the epoch with the highest dev accuracy, the first one
reaching the maximum. With a sparsity target, only epochs whose dev S lies within `tolerance` points of the
target compete (falling back to all epochs when none does), so a run is not reported at an epoch whose
selector is far from the sparsity the table compares at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Candidate:
    epoch: int
    dev_acc: float
    dev_S: float
    test: dict[str, float]
    state: dict[str, Any] = field(repr=False)


class ModelSelector:
    """Keeps the best epoch under the rule above; `offer` each epoch, then read `chosen`."""

    def __init__(self, target: float | None, tolerance: float, restrict: bool):
        # restrict=False (no target, no calibration, or a post-hoc explainer at fixed sparsity): plain dev accuracy
        self.target = target
        self.tolerance = tolerance
        self.restrict = restrict and target is not None
        self.best_eligible: Candidate | None = None
        self.best_any: Candidate | None = None

    def eligible(self, dev_S: float) -> bool:
        return not self.restrict or abs(dev_S - self.target) <= self.tolerance

    def offer(self, epoch: int, dev: dict[str, float], test: dict[str, float],
              state: Callable[[], dict[str, Any]]) -> None:
        """`state` is called (a copy of the weights taken) only when the epoch becomes a best one."""
        snapshot = None
        for slot, ok in (("best_eligible", self.eligible(dev["S"])), ("best_any", True)):
            best = getattr(self, slot)
            if ok and (best is None or dev["Acc"] > best.dev_acc):  # strictly better: ties keep the earlier
                snapshot = snapshot if snapshot is not None else state()
                setattr(self, slot, Candidate(epoch, dev["Acc"], dev["S"], test, snapshot))

    def chosen(self) -> tuple[Candidate, str]:
        """(the selected epoch, how it was selected)."""
        if self.best_eligible is not None:
            return self.best_eligible, "dev_acc"
        if self.best_any is None:
            raise RuntimeError("no epoch was offered to the model selector")
        return self.best_any, "dev_acc (no epoch within tolerance of the target)"
