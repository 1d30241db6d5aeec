"""Backbones: where a method's players come from. A setting (`backbone=gru|transformer`), not a method.

- `gru` (the published setting): frozen word vectors, a fresh BiGRU per player (docs/methods.md#shared-pipeline).
- `transformer`: a Hugging Face encoder (docs/transformers.md). Each player gets its own copy of the pretrained
  encoder (selector and predictor are separate, as in the published BERT code); the word-embedding table is
  frozen and shared by all players (one copy in memory, rebuilt from the pretrained weights on restore, never
  in a checkpoint). The rationale multiplies the output of each player's embedding layer (word + position +
  segment, after LayerNorm); [CLS], [SEP] and a task's query stay visible and are never counted as selected.

A backbone builds three things: `embedding()` (ids, mask -> shared input embeddings), `encoder()` (a fresh player
encoder, see models/players.py) and `width` (the encoder's output size).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.data.corpus import Corpus
from ratbench.models.encoders import BiGRU, FrozenEmbedding
from ratbench.models.players import visible
from ratbench.models.transformer import TransformerEncoder

BACKBONES = ("gru", "transformer")


class GruEncoder(nn.Module):
    """A BiGRU over the (kept) word vectors; padding is never read (models/encoders.py)."""

    reads_word_vectors = True  # the rationale multiplies its input vectors (what the Lipschitz probe differentiates)

    def __init__(self, dim: int, hidden: int, gru_mode: str):
        super().__init__()
        self.gru = BiGRU(dim, hidden, gru_mode)

    def forward(self, emb: torch.Tensor, batch: Batch, keep: torch.Tensor | None = None,
                remove: bool = False) -> torch.Tensor:
        x = emb if keep is None else emb * visible(keep, batch).unsqueeze(-1)
        return self.gru(x, batch.lengths)


class GruBackbone:
    name = "gru"

    def __init__(self, vectors: torch.Tensor, hidden: int, gru_mode: str, num_classes: int = 2):
        self.vectors = vectors
        self.width = hidden
        self.gru_mode = gru_mode
        self.num_classes = num_classes

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def embedding(self) -> nn.Module:
        return FrozenEmbedding(self.vectors)

    def encoder(self) -> nn.Module:
        return GruEncoder(self.dim, self.width, self.gru_mode)

    def describe(self) -> dict[str, Any]:
        return {"backbone": self.name, "input_dim": self.dim, "hidden": self.width, "gru_mode": self.gru_mode}


class SharedWordEmbedding(nn.Module):
    """The pretrained word-embedding table, frozen, shared by every player; rebuilt from the pretrained encoder
    when a run is restored, so checkpoints leave it out."""

    checkpointed = False

    def __init__(self, table: nn.Embedding):
        super().__init__()
        self.table = table
        self.table.weight.requires_grad_(False)

    @property
    def dim(self) -> int:
        return self.table.embedding_dim

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.table(ids)


class TransformerPlayerEncoder(nn.Module):
    """One player's copy of the pretrained encoder: embedding layer (from the shared word vectors) -> keep mask ->
    encoder stack under the padding mask. `remove` also takes removed tokens out of attention (faithfulness:
    ERASER removes tokens; multiplying by 0 alone leaves a zero vector that still attends)."""

    def __init__(self, pretrained: TransformerEncoder, words: SharedWordEmbedding):
        super().__init__()
        held = pretrained.model.embeddings.word_embeddings
        pretrained.model.embeddings.word_embeddings = nn.Identity()  # not copied: the shared table serves
        try:
            self.transformer = copy.deepcopy(pretrained)
        finally:
            pretrained.model.embeddings.word_embeddings = held
        self.transformer.model.embeddings.word_embeddings = words.table

    def forward(self, emb: torch.Tensor, batch: Batch, keep: torch.Tensor | None = None, remove: bool = False,
                attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        h = self.transformer.embed_words(emb, batch.token_type)
        attention = batch.attention
        if keep is not None:
            seen = visible(keep, batch)
            h = h * seen.unsqueeze(-1).to(h.dtype)
            if remove:
                attention = attention * (seen > 0.5).to(attention.dtype)
        return self.transformer.encode(h, attention, attn_bias)


class TransformerBackbone:
    name = "transformer"

    def __init__(self, pretrained: TransformerEncoder, num_classes: int = 2):
        self.pretrained = pretrained
        self.width = pretrained.hidden_size
        self.num_classes = num_classes
        self._words: SharedWordEmbedding | None = None

    @property
    def dim(self) -> int:
        return self.pretrained.embedding_size

    def embedding(self) -> nn.Module:
        if self._words is None:
            self._words = SharedWordEmbedding(copy.deepcopy(self.pretrained.word_embeddings))
        return self._words

    def encoder(self) -> nn.Module:
        return TransformerPlayerEncoder(self.pretrained, self.embedding())

    def describe(self) -> dict[str, Any]:
        return {"backbone": self.name, **self.pretrained.describe()}


def gru_backbone(corpus: Corpus, config: Any) -> GruBackbone:
    """The GRU backbone of a corpus of word ids: its restricted vector matrix, the configured width."""
    return GruBackbone(torch.from_numpy(corpus.vectors), config.hidden_size, config.gru_mode, len(corpus.label_names))


def transformer_backbone(corpus: Corpus, pretrained: TransformerEncoder) -> TransformerBackbone:
    return TransformerBackbone(pretrained, len(corpus.label_names))
