"""Normalized Relative Gain (UNIREX, docs/metrics.md#nrg): min-max normalise each metric across the compared
methods, average within each desideratum, then across desiderata. Depends on the set of methods compared."""

from __future__ import annotations

DEFAULT_GROUPS = {
    "faithfulness": ["comp_aopc", "suff_aopc"],
    "plausibility": ["auprc", "F1"],
    "task": ["Acc"],
}
DEFAULT_HIGHER = {"comp_aopc": True, "suff_aopc": False, "auprc": True, "F1": True, "iou_f1": True, "Acc": True}


def nrg(
    table: dict[str, dict[str, float]],
    higher_is_better: dict[str, bool] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """table[method][metric] -> {method: {desideratum: score, ..., "nrg": composite}}.

    When every method has the same value of a metric, each gets 1.0 for it (no method is worse).
    """
    higher = higher_is_better or DEFAULT_HIGHER
    groups = groups or DEFAULT_GROUPS
    methods = list(table)
    norm: dict[str, dict[str, float]] = {m: {} for m in methods}
    metrics = {k for g in groups.values() for k in g}
    for metric in metrics:
        vals = {m: table[m][metric] for m in methods if metric in table[m]}
        if not vals:
            continue
        lo, hi = min(vals.values()), max(vals.values())
        for m, v in vals.items():
            if hi == lo:
                norm[m][metric] = 1.0
            elif higher.get(metric, True):
                norm[m][metric] = (v - lo) / (hi - lo)
            else:
                norm[m][metric] = (hi - v) / (hi - lo)
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        scores = {}
        for name, keys in groups.items():
            present = [norm[m][k] for k in keys if k in norm[m]]
            if present:
                scores[name] = sum(present) / len(present)
        scores["nrg"] = sum(scores.values()) / len(scores) if scores else float("nan")
        out[m] = scores
    return out
