"""Bidirectional GRU over (masked) word vectors; packed by default so padding costs nothing."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, packed: bool = True):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size // 2, batch_first=True, bidirectional=True)
        self.packed = packed
        self.output_size = hidden_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, H). Packed mode leaves zeros at padding and never reads it backwards."""
        if not self.packed:
            return self.gru(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class FrozenEmbedding(nn.Module):
    """Pretrained vectors, not trained (methods.md §0.2); row 0 is the zero vector for pad and unknown."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors.float(), freeze=True, padding_idx=None)

    @property
    def dim(self) -> int:
        return self.embedding.embedding_dim

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids) * mask.unsqueeze(-1)
