"""The two players of select-then-predict, over any backbone encoder (docs/methods.md#shared-pipeline).

A *player encoder* maps the shared input embeddings of a batch to per-position states, optionally reading only
the positions a keep mask leaves visible: `encoder(emb, batch, keep=None, remove=False) -> (B, L, H)`. The GRU
encoder multiplies the word vectors by the mask; the transformer encoder multiplies its embedding layer's
output and can also remove tokens from attention (`remove`, used for faithfulness). Both see the positions
`batch.forced` marks ([CLS], [SEP], a task's query) whatever the mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch

NEG_INF = -1e6


def visible(keep: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The keep mask as the predictor reads it: forced positions always on, never counted as selected."""
    if batch.forced is None:
        return keep  # exactly the mask the GRU code always used (padding is zero in the inputs anyway)
    return keep * batch.mask + batch.forced


class SelectorPlayer(nn.Module):
    """encoder -> LayerNorm -> Dropout -> Linear(2): per-position selection logits, index 1 = select."""

    def __init__(self, encoder: nn.Module, width: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, 2)

    def forward(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.head(self.dropout(self.norm(self.encoder(emb, batch))))


class PredictorPlayer(nn.Module):
    """encoder over the visible positions -> max-pool over the pooled positions -> Dropout -> Linear(classes).

    No LayerNorm (FR shares the selector's here). Pooling spans every real position (`batch.attention`) unless
    a pooling mask is given (the published gold probe pools over gold positions only)."""

    def __init__(self, encoder: nn.Module, width: int, dropout: float, num_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.norm: nn.Module = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def states(self, emb: torch.Tensor, keep: torch.Tensor | None, batch: Batch, remove: bool = False,
               **encoder_args: Any) -> torch.Tensor:
        """`encoder_args` reach the encoder (a transformer's `attn_bias`: CR's log-mask on the keys)."""
        return self.norm(self.encoder(emb, batch, keep, remove, **encoder_args))

    def features(self, emb: torch.Tensor, keep: torch.Tensor | None, batch: Batch,
                 pool: torch.Tensor | None = None, remove: bool = False, **encoder_args: Any) -> torch.Tensor:
        h = self.states(emb, keep, batch, remove, **encoder_args)
        pool = batch.attention if pool is None else pool
        return h.masked_fill(pool.unsqueeze(-1) == 0, NEG_INF).max(dim=1).values

    def forward(self, emb: torch.Tensor, keep: torch.Tensor | None, batch: Batch,
                pool: torch.Tensor | None = None, remove: bool = False, **encoder_args: Any) -> torch.Tensor:
        return self.head(self.dropout(self.features(emb, keep, batch, pool, remove, **encoder_args)))
