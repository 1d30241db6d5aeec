"""The players of a rationalizer: a selector and a max-pooling predictor over one backbone (docs/methods.md).

`Rationalizer` is what methods build on: `embed(ids, mask)` gives the shared input embeddings, `select_logits`
the selector's per-position logits, `predict` the predictor's logits on a keep mask. The backbone (GRU over
frozen word vectors, or a transformer) decides what the players' encoders are (models/backbones.py).

`Selector` and `Predictor` are the plain GRU blocks (input vectors, lengths) that methods with their own
architecture compose directly (DMR's label-conditioned generators and teacher).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.models.encoders import BiGRU
from ratbench.models.players import NEG_INF, PredictorPlayer, SelectorPlayer

__all__ = ["NEG_INF", "Predictor", "Rationalizer", "Selector"]


class Selector(nn.Module):
    """GRU block: BiGRU -> LayerNorm -> Dropout -> Linear(2): per-token logits, index 1 = select."""

    def __init__(self, dim: int, hidden: int, dropout: float, gru_mode: str):
        super().__init__()
        self.encoder = BiGRU(dim, hidden, gru_mode)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 2)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(self.encoder(emb, lengths))))


class Predictor(nn.Module):
    """GRU block: BiGRU over e*z, max-pool over real positions, Dropout, Linear(classes). No LayerNorm."""

    def __init__(self, dim: int, hidden: int, dropout: float, gru_mode: str, num_classes: int = 2):
        super().__init__()
        self.encoder = BiGRU(dim, hidden, gru_mode)
        self.norm: nn.Module = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def states(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(emb, lengths))

    def features(self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.states(emb, lengths)
        h = h.masked_fill(mask.unsqueeze(-1) == 0, NEG_INF)
        return h.max(dim=1).values

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(emb, mask, lengths)))


class Rationalizer(nn.Module):
    """Embedding + selector + predictor over a backbone. Methods add players around it; the engine only sees
    this API."""

    def __init__(self, backbone: Any, dropout: float = 0.2, num_classes: int | None = None):
        super().__init__()
        num_classes = backbone.num_classes if num_classes is None else num_classes
        self.embed = backbone.embedding()
        self.selector = SelectorPlayer(backbone.encoder(), backbone.width, dropout)
        self.predictor = PredictorPlayer(backbone.encoder(), backbone.width, dropout, num_classes)

    def selector_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.selector.parameters() if p.requires_grad]

    def predictor_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.predictor.parameters() if p.requires_grad]

    def select_logits(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        # float32 at the players' outputs (a no-op unless under bf16 autocast): sampling, straight-through
        # selection, regularisers and losses are computed in full precision
        return self.selector(emb, batch).float()

    def predict(self, emb: torch.Tensor, z: torch.Tensor, batch: Batch, pool: torch.Tensor | None = None,
                remove: bool = False) -> torch.Tensor:
        """Predictor logits reading the positions `z` keeps (and the forced ones); pooling over real positions
        unless `pool` says otherwise; `remove` takes unkept tokens out of a transformer's attention too."""
        return self.predictor(emb, z, batch, pool, remove).float()
