"""NIR (Storek et al., ACL 2023): words inside the rationale are replaced by random unimportant words while
the predictor trains, so rationales that encode the label through odd tokens stop working (docs/methods.md#nir).

GRU re-host (ratbench adaptation; the VER paper's NIR re-implementation is not public). The noise model is the
UDA-style TF-IDF replacement of the reference, with statistics from the training split only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ratbench.data.batching import Batch, padded_view
from ratbench.data.corpus import Corpus, Split
from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo


@dataclass
class NoiseModel:
    replace_prob: np.ndarray  # float32, aligned with split.ids: q_t of every training position
    noise_dist: np.ndarray  # float64 over the vocabulary rows: P_noise(w), 0 for words never seen and row 0


def tfidf_noise(split: Split, vocab_size: int, rate: float) -> NoiseModel:
    """q_t = min(1, rate * r_hat_t), r_hat the inverted, length-normalised TF-IDF of each position in its
    document (mean 1 per document, high for unimportant words); P_noise(w) ∝ max v - v(w), v = atf * idf.

    A document whose positions all have the same TF-IDF gets r_hat = 1 everywhere (the reference divides by
    zero there). Row 0 (padding and unknown words) is never drawn as noise.
    """
    n_docs = len(split)
    lengths = split.lengths.astype(np.int64)
    doc = np.repeat(np.arange(n_docs), lengths)
    ids = split.ids.astype(np.int64)
    pair = doc * vocab_size + ids  # one key per (document, word)
    uniq, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
    df = np.bincount(uniq % vocab_size, minlength=vocab_size).astype(np.float64)
    idf = np.log(n_docs / np.maximum(df, 1.0))
    tf = counts[inverse] / lengths[doc]  # tf_d(w) / |d| at every position
    r = tf * idf[ids]
    r_max = np.maximum.reduceat(r, split.offsets[:-1]) if len(r) else r
    gap = r_max[doc] - r
    gap_sum = np.add.reduceat(gap, split.offsets[:-1]) if len(r) else gap
    denom = gap_sum[doc]
    r_hat = np.where(denom > 0, gap / np.where(denom > 0, denom, 1.0) * lengths[doc], 1.0)
    q = np.minimum(1.0, rate * r_hat).astype(np.float32)
    atf = np.bincount(uniq % vocab_size, weights=counts / lengths[uniq // vocab_size], minlength=vocab_size)
    v = atf * idf
    seen = df > 0
    seen[0] = False
    weight = np.where(seen, v[seen].max() - v if seen.any() else 0.0, 0.0)
    if weight.sum() <= 0:  # every word equally (un)important: draw uniformly among seen words
        weight = seen.astype(np.float64)
    return NoiseModel(q, weight / weight.sum())


INFO = MethodInfo(
    name="nir",
    title="NIR",
    description="NIR: RNP whose predictor sees TF-IDF-guided noise words inside the rationale during training",
    family="cooperative + noise injection",
    citation="Storek et al., Unsupervised Selective Rationalization with Noise Injection, ACL 2023",
    order=50,
    groups=("table1",),
    provenance="adaptation",
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class NIR(Method):
    """NIR: RNP whose predictor sees TF-IDF-guided noise words inside the rationale during training."""

    defaults = {"noise_rate": 0.1}

    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """TF-IDF statistics of the training split. With sub-word pieces, over piece ids (the published NIR-BERT
        works on word pieces); forced positions ([CLS], [SEP], a query) count as the pad row, never noise."""
        self.train_split = train
        vocab = len(corpus.words) or int(train.ids.max(initial=0)) + 1
        stats = train if train.forced is None else dataclasses.replace(
            train, ids=np.where(train.forced > 0, 0, train.ids))
        self.noise = tfidf_noise(stats, vocab, float(self.params["noise_rate"]))
        self._dist: torch.Tensor | None = None

    def replace_prob(self, batch: Batch) -> torch.Tensor:
        """q_t of the batch's positions (0 at padding), gathered from the per-position table."""
        q, _ = padded_view(self.train_split, batch.index, self.noise.replace_prob, batch.ids.shape[1])
        return torch.from_numpy(q.astype(np.float32)).to(batch.ids.device)

    def noisy_ids(self, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Word ids with selected real positions replaced, each with probability q_t, by P_noise draws."""
        if self._dist is None or self._dist.device != batch.ids.device:
            self._dist = torch.as_tensor(self.noise.noise_dist, dtype=torch.float32, device=batch.ids.device)
        selected = (z.detach() > 0.5).float() * batch.mask
        flip = torch.rand(selected.shape, device=selected.device) < self.replace_prob(batch) * selected
        draws = torch.multinomial(self._dist, batch.ids.numel(), replacement=True).view_as(batch.ids)
        return torch.where(flip, draws, batch.ids)

    def predictor_embedding(self, model: nn.Module, emb: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        # the straight-through z is unchanged, so the selector still gets gradient at replaced positions
        return model.embed(self.noisy_ids(z, batch), batch.mask)
