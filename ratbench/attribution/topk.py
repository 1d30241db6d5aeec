"""Top-k% binarisation of attributions (UNIREX-style extractors, matched-sparsity rationales, AOPC bins).

The selection itself is `ratbench.metrics.faithfulness.topk_select`, shared with the faithfulness metrics so
that a rationale built here is the one those metrics score. Passing the *attribution* mask (0 at padding and
at [CLS]/[SEP]) makes k a share of the row's attributable tokens and keeps special tokens out of the
selection. A transformer input that must still contain its special tokens is `selection + specials`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ratbench.attribution.core import Attribution
from ratbench.metrics.faithfulness import AOPC_BINS, topk_select


def _scores(scores: Attribution | Tensor, mask: Tensor) -> Tensor:
    s = scores.scores if isinstance(scores, Attribution) else scores
    if tuple(s.shape) != tuple(mask.shape):
        raise ValueError(f"scores {tuple(s.shape)} and mask {tuple(mask.shape)} must have the same (B, L) shape.")
    s = s.detach().to(mask.device)
    # a NaN score would sort after the padding and could push k past the row's finite scores; rank it last
    # among the row's own tokens instead
    big = torch.finfo(s.dtype).max if s.is_floating_point() else None
    return torch.nan_to_num(s, nan=-big, posinf=big, neginf=-big) if big is not None else s


def _check_fraction(fraction: float) -> float:
    f = float(fraction)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"fraction must be in (0, 1] (0.2 for 20 %); got {fraction!r}.")
    return f


def topk_mask(scores: Attribution | Tensor, mask: Tensor, fraction: float) -> Tensor:
    """(B, L) 0/1 float: per row, the round(fraction * n) highest-scoring tokens among the n with mask 1
    (rounding half to even), at least one when n > 0; ties go to the earlier position; positions with mask 0
    ([CLS], [SEP], padding) are never selected. A row with n = 0 selects nothing."""
    return topk_select(_scores(scores, mask), mask.float(), _check_fraction(fraction))


def topk_masks(scores: Attribution | Tensor, mask: Tensor, fractions: Sequence[float] = AOPC_BINS) -> Tensor:
    """(K, B, L): `topk_mask` for each of K fractions (default the ERASER/UNIREX bins 1, 5, 10, 20, 50 %)."""
    s = _scores(scores, mask)
    m = mask.float()
    return torch.stack([topk_select(s, m, _check_fraction(f)) for f in fractions])
