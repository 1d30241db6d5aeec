"""ERASER faithfulness (methods.md §12.3): comprehensiveness, sufficiency and their AOPC over top-k% bins.

The caller runs the model; these functions do the arithmetic on predicted-class probabilities.
"""

from __future__ import annotations

import numpy as np

AOPC_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)


def comprehensiveness(p_full: np.ndarray, p_without: np.ndarray) -> dict[str, object]:
    """p(y^|x) - p(y^|x \\ r): how much the prediction drops without the rationale (higher is better)."""
    per = np.asarray(p_full, np.float64) - np.asarray(p_without, np.float64)
    return {"mean": float(per.mean()) if per.size else float("nan"), "per_example": per}


def sufficiency(p_full: np.ndarray, p_only: np.ndarray) -> dict[str, object]:
    """p(y^|x) - p(y^|r): how much the prediction drops with the rationale alone (lower is better)."""
    per = np.asarray(p_full, np.float64) - np.asarray(p_only, np.float64)
    return {"mean": float(per.mean()) if per.size else float("nan"), "per_example": per}


def topk_mask(scores: np.ndarray, mask: np.ndarray, fraction: float) -> np.ndarray:
    """Per example, the top round(fraction * real length) real tokens by score, at least one.

    ERASER and UNIREX take k from the example's own length; rounding to nearest with a floor of one token
    keeps the 1 % bin meaningful on short texts. Ties break toward the earlier position.
    """
    scores = np.asarray(scores, np.float64)
    real = np.asarray(mask) > 0.5
    lengths = real.sum(1)
    k = np.maximum(np.rint(fraction * lengths), 1).astype(np.int64)
    k = np.minimum(k, lengths)
    keyed = np.where(real, scores, -np.inf)
    order = np.argsort(-keyed, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :].repeat(order.shape[0], 0), axis=1)
    return ((ranks < k[:, None]) & real).astype(np.float32)


def aopc(values_per_bin: dict[float, np.ndarray]) -> dict[str, float]:
    """Mean over examples of each bin, summed over bins; `aopc` divides by |B|+1 (ERASER paper, UNIREX),
    `aopc_eraser_script` by |B| (ERASER's scoring script) — quirk A21."""
    means = [float(np.mean(v)) for v in values_per_bin.values()]
    total = float(np.sum(means))
    n = len(means)
    return {"aopc": total / (n + 1), "aopc_eraser_script": total / n if n else float("nan")}
