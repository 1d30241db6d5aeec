"""Model selection: which epoch's model a run reports (dev only, never test).

Two rules, both computed in every run and both recorded (docs/decisions/0001-model-selection.md):
- `dev_acc` — the published rule: the epoch with the highest dev accuracy, the first one reaching the maximum.
- `dev_acc_matched_s` — ratbench's default: the same, among epochs whose dev S lies within `tolerance` points
  of the sparsity target (all epochs when none does), so a run is not reported at an epoch whose selector is
  far from the sparsity the table compares methods at.
Without a target (or without calibration, or for a post-hoc explainer at a fixed sparsity) they coincide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ratbench.config import PRIMARY_SELECTION, SELECTION_RULES

RULES = SELECTION_RULES
PRIMARY_RULE = PRIMARY_SELECTION  # whose epoch gives a record's `metrics` and its checkpoint


@dataclass
class Candidate:
    epoch: int
    dev_acc: float
    dev_S: float
    test: dict[str, float]
    state: dict[str, Any] = field(repr=False)


class ModelSelector:
    """Keeps the best epoch under each rule; `offer` every epoch, then read `chosen(rule)`."""

    def __init__(self, target: float | None, tolerance: float, restrict: bool):
        # restrict=False (no target, no calibration, or a post-hoc explainer at fixed sparsity): rules coincide
        self.target = target
        self.tolerance = tolerance
        self.restrict = restrict and target is not None
        self.best: dict[str, Candidate | None] = {"eligible": None, "any": None}

    def eligible(self, dev_S: float) -> bool:
        return not self.restrict or abs(dev_S - self.target) <= self.tolerance

    def offer(self, epoch: int, dev: dict[str, float], test: dict[str, float],
              state: Callable[[], dict[str, Any]]) -> None:
        """`state` is called (a copy of the weights taken) only when the epoch becomes a best one."""
        snapshot = None
        for slot, ok in (("eligible", self.eligible(dev["S"])), ("any", True)):
            best = self.best[slot]
            if ok and (best is None or dev["Acc"] > best.dev_acc):  # strictly better: ties keep the earlier
                snapshot = snapshot if snapshot is not None else state()
                self.best[slot] = Candidate(epoch, dev["Acc"], dev["S"], test, snapshot)

    def chosen(self, rule: str = "dev_acc_matched_s") -> tuple[Candidate, str]:
        """(the epoch `rule` selects, how it was selected)."""
        if self.best["any"] is None:
            raise RuntimeError("no epoch was offered to the model selector")
        if rule == "dev_acc":
            return self.best["any"], "dev_acc"
        if rule != "dev_acc_matched_s":
            raise ValueError(f"unknown selection rule {rule!r}; rules: {', '.join(RULES)}")
        if self.best["eligible"] is not None:
            return self.best["eligible"], "dev_acc_matched_s"
        return self.best["any"], "dev_acc_matched_s (no epoch within tolerance of the target: all epochs)"
