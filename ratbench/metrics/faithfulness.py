"""ERASER faithfulness (docs/metrics.md#faithfulness and docs/metrics.md#aopc): comprehensiveness, sufficiency and their
AOPC over top-k% bins.

The caller runs the model; these functions do the arithmetic on predicted-class probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where used: `ratbench score` reads metrics without it
    import torch

AOPC_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)


def comprehensiveness(p_full: np.ndarray, p_without: np.ndarray) -> dict[str, object]:
    """p(y^|x) - p(y^|x \\ r): how much the prediction drops without the rationale (higher is better)."""
    per = np.asarray(p_full, np.float64) - np.asarray(p_without, np.float64)
    return {"mean": float(per.mean()) if per.size else float("nan"), "per_example": per}


def sufficiency(p_full: np.ndarray, p_only: np.ndarray) -> dict[str, object]:
    """p(y^|x) - p(y^|r): how much the prediction drops with the rationale alone (lower is better)."""
    per = np.asarray(p_full, np.float64) - np.asarray(p_only, np.float64)
    return {"mean": float(per.mean()) if per.size else float("nan"), "per_example": per}


def topk_select(scores: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per example, the top round(fraction * real length) real tokens by score, at least one (a 0/1 mask).

    ERASER and UNIREX take k from the example's own length; rounding to nearest (half to even) with a floor of
    one token keeps the 1 % bin meaningful on short texts. Ties break toward the earlier position (a stable
    sort of the negated scores); padding is never selected. Used for the AOPC bins and by the post-hoc
    explainers' rationales, on the device the scores live on.
    """
    import torch

    real = mask > 0.5
    lengths = real.sum(1)
    k = torch.minimum(torch.round(fraction * lengths.double()).long().clamp_min(1), lengths)
    keyed = torch.where(real, scores.double(), torch.full_like(scores, float("-inf"), dtype=torch.float64))
    order = torch.argsort(-keyed, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous())
    return ((ranks < k.unsqueeze(1)) & real).to(mask.dtype)


def aopc(values_per_bin: dict[float, np.ndarray]) -> dict[str, float]:
    """Mean over examples of each bin, summed over bins; `aopc` divides by |B|+1 (ERASER paper, UNIREX),
    `aopc_eraser_script` by |B| (ERASER's scoring script) — docs/methods.md#quirks (Q21)."""
    means = [float(np.mean(v)) for v in values_per_bin.values()]
    total = float(np.sum(means))
    n = len(means)
    return {"aopc": total / (n + 1), "aopc_eraser_script": total / n if n else float("nan")}
