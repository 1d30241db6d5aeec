"""NRG over the rows of a report's dataset block (UNIREX; docs/metrics.md#nrg), with the set it was computed over.

Each metric's row means are min-max normalised over the compared rows (flipped for lower-is-better metrics),
averaged within each desideratum, and the desiderata averaged into one number in [0, 1]. The compared set is
every row of the block that has all the metrics, minus label-leaking rows; a row without some metric is not
compared (its NRG would average other desiderata than its neighbours'), and is listed with what it lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ratbench.metrics.names import higher_is_better
from ratbench.metrics.nrg import nrg

# each row's own task accuracy: `Acc` (the prediction made from the rationale), else `classifier_acc` (a full-text
# classifier's prediction, for post-hoc explainers and explained classifiers); results/aggregate.py derives it
TASK_ACC = "task_acc"
NRG_GROUPS: dict[str, list[str]] = {
    "faithfulness": ["comp_aopc", "suff_aopc"],
    "plausibility": ["auprc", "F1", "iou_f1"],
    "task": [TASK_ACC],
}
NRG_KEYS = ["nrg", *(f"nrg_{g}" for g in NRG_GROUPS)]


@dataclass
class NrgResult:
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # row -> {"nrg", "nrg_<desideratum>"}
    compared: list[str] = field(default_factory=list)  # the rows NRG was computed over, in table order
    excluded: dict[str, str] = field(default_factory=dict)  # row -> why it is not in the set

    def sentence(self) -> str:
        """The set, as printed under the block."""
        if len(self.compared) < 2:
            text = ("NRG: not computed (it needs at least two rows with every metric; "
                    f"{len(self.compared)} {'has' if len(self.compared) == 1 else 'have'} them).")
        else:
            text = f"NRG over {len(self.compared)} rows: {', '.join(self.compared)}."
        if self.excluded:
            text += " Not in the set: " + "; ".join(f"{r} ({why})" for r, why in self.excluded.items()) + "."
        return text


def direction(metric: str) -> bool:
    """Higher is better for every NRG metric except the lower-is-better ones of the metric vocabulary."""
    if metric == TASK_ACC:
        return True
    hib = higher_is_better(metric)
    if hib is None:
        raise ValueError(f"NRG needs a ranked metric, {metric!r} is not ranked")
    return hib


def nrg_over(table: dict[str, dict[str, float]], leaking: set[str] | frozenset[str] = frozenset(),
             groups: dict[str, list[str]] | None = None) -> NrgResult:
    """table: row -> {metric: mean over seeds}, rows in table order. NRG of the rows that have every metric."""
    groups = groups or NRG_GROUPS
    metrics = [m for keys in groups.values() for m in keys]
    out = NrgResult()
    for row, values in table.items():
        missing = [m for m in metrics if not _finite(values.get(m))]
        if row in leaking:
            out.excluded[row] = "label-leaking"
        elif missing:
            out.excluded[row] = "no " + ", ".join(missing)
        else:
            out.compared.append(row)
    if len(out.compared) >= 2:
        scores = nrg({r: {m: float(table[r][m]) for m in metrics} for r in out.compared},
                     {m: direction(m) for m in metrics}, groups)
        out.scores = {r: {("nrg" if k == "nrg" else f"nrg_{k}"): v for k, v in s.items()} for r, s in scores.items()}
    return out


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
