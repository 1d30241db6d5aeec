"""The two players of the GRU rationalizer (methods.md §0.3): a selector and a max-pooling predictor."""

from __future__ import annotations

import torch
from torch import nn

from ratbench.models.encoders import BiGRU, FrozenEmbedding

NEG_INF = -1e6


class Selector(nn.Module):
    """BiGRU -> LayerNorm -> Dropout -> Linear(2): per-token logits, index 1 = select."""

    def __init__(self, dim: int, hidden: int, dropout: float, gru_mode: str):
        super().__init__()
        self.encoder = BiGRU(dim, hidden, gru_mode)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 2)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(self.encoder(emb, lengths))))


class Predictor(nn.Module):
    """BiGRU over e*z, max-pool over real positions, Dropout, Linear(2). No LayerNorm (§0.3)."""

    def __init__(self, dim: int, hidden: int, dropout: float, gru_mode: str, num_classes: int = 2):
        super().__init__()
        self.encoder = BiGRU(dim, hidden, gru_mode)
        self.norm: nn.Module = nn.Identity()  # FR shares the selector's LayerNorm here
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def states(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-token states (B, L, H) before pooling (A2R's soft path pools them by attention)."""
        return self.norm(self.encoder(emb, lengths))

    def features(self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.states(emb, lengths)
        h = h.masked_fill(mask.unsqueeze(-1) == 0, NEG_INF)
        return h.max(dim=1).values

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(emb, mask, lengths)))


class Rationalizer(nn.Module):
    """Embedding + selector + predictor. Methods add players around it; the engine only sees this API."""

    def __init__(self, vectors: torch.Tensor, hidden: int = 200, dropout: float = 0.2, gru_mode: str = "auto"):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)
        self.selector = Selector(self.embed.dim, hidden, dropout, gru_mode)
        self.predictor = Predictor(self.embed.dim, hidden, dropout, gru_mode)

    def selector_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.selector.parameters() if p.requires_grad]

    def predictor_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.predictor.parameters() if p.requires_grad]

    def select_logits(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # float32 at the players' outputs (a no-op unless under bf16 autocast): sampling, straight-through
        # selection, regularisers and losses are computed in full precision
        return self.selector(emb, lengths).float()

    def predict(self, emb: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Predictor logits from the rationale e*z; pooling only over real tokens."""
        return self.predictor(emb * z.unsqueeze(-1), mask, lengths).float()
