"""Attention baseline (docs/methods.md#attention): top-k tokens by the full-text classifier's attention weights.

GRU backbone: the additive-attention weights alpha_t of the BiGRU classifier. Transformer backbone: the [CLS] row
of the last layer's attention, averaged over heads, over the selectable pieces (never [CLS], [SEP], a query or
padding); the encoder runs SDPA, so that row is recomputed from the last layer's own query/key projections and
mask in the same forward pass (models/transformer.py `last_layer_attention`).
"""

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
    description="Attention: post-hoc top-k tokens by the attention weights of a full-text classifier",
    family="post-hoc explainer",
    citation="Lei et al. 2016 (attention baseline), EMNLP",
    order=20,
    groups=("table1",),
    backbones=("gru", "transformer"),
    kind="post-hoc",
    runs_after=("rnp",),
)


@register_method(INFO)
class Attention(PostHoc):
    """Attention: post-hoc top-k tokens by the attention weights of a full-text classifier."""

    explain_every_epoch: ClassVar[bool] = True  # one forward per text: cheap enough for every epoch
    uses_attention: ClassVar[bool] = True

    def token_scores(
        self, model: nn.Module, batch: Batch, logits: torch.Tensor, alpha: torch.Tensor | None
    ) -> torch.Tensor:
        """The attention weights of the same forward pass that produced the logits."""
        if alpha is None:
            raise RuntimeError("attention: the classifier returned no attention weights")
        return alpha
