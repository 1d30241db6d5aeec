"""Attention baseline (methods.md §10.1): top-k tokens by the full-text classifier's attention weights."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.methods.base import register_method
from ratbench.methods.catalog import MethodInfo
from ratbench.methods.posthoc import PostHoc

INFO = MethodInfo(
    name="attention",
    title="Attention",
    description="Attention: post-hoc top-k tokens by the additive-attention weights of a full-text BiGRU classifier",
    family="post-hoc explainer",
    citation="Lei et al. 2016 (attention baseline), EMNLP",
    order=20,
    groups=("table1",),
    kind="post-hoc",
    runs_after=("rnp",),
)


@register_method(INFO)
class Attention(PostHoc):
    """Attention: post-hoc top-k tokens by the additive-attention weights of a full-text BiGRU classifier."""

    explain_every_epoch: ClassVar[bool] = True  # one forward per text: cheap enough for every epoch

    def token_scores(self, model: nn.Module, batch: Batch, logits: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The attention weights of the same forward pass that produced the logits."""
        return alpha
