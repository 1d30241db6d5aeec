"""Batches: padding changes nothing that is computed, and the data order depends only on the seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ratbench.data.batching import make_batch, train_batches
from ratbench.models.backbones import GruBackbone
from ratbench.models.encoders import FUSE_MAX_HIDDEN
from ratbench.models.rationalizer import Rationalizer
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=64, n_dev=8, n_test=8)


def _loss(model: Rationalizer, batch) -> torch.Tensor:
    """Summed per-example losses touching both players: the predictor's CE on a fixed rationale (a function of
    each token alone, so it is the same with or without neighbours) and the selector's logits at real tokens."""
    emb = model.embed(batch.ids, batch.mask)
    z = ((batch.ids % 3) == 0).float() * batch.mask
    logits = model.predict(emb, z, batch)
    sel = model.select_logits(emb, batch)
    return F.cross_entropy(logits, batch.labels, reduction="sum") + (sel[..., 1] * batch.mask).pow(2).sum()


@pytest.mark.parametrize("gru_mode,hidden", [("masked", 16), ("masked", 2 * (FUSE_MAX_HIDDEN + 1)), ("packed", 16)])
def test_batched_loss_and_gradients_equal_each_example_alone(gru_mode, hidden):
    split = CORPUS.train
    index = np.arange(6)
    assert len(set(split.lengths[index].tolist())) > 1  # the batch really pads
    torch.manual_seed(0)
    model = Rationalizer(GruBackbone(torch.from_numpy(CORPUS.vectors), hidden, gru_mode), dropout=0.0)
    params = [p for p in model.parameters() if p.requires_grad]

    batched = _loss(model, make_batch(split, index))
    grads = torch.autograd.grad(batched, params)

    alone = [_loss(model, make_batch(split, index[i : i + 1])) for i in range(len(index))]
    assert make_batch(split, index[:1]).ids.shape[1] == split.lengths[index[0]]  # no padding at all
    alone_grads = torch.autograd.grad(sum(alone), params)

    assert torch.allclose(batched, sum(alone), rtol=1e-5, atol=1e-4)
    for g, h in zip(grads, alone_grads):
        assert torch.allclose(g, h, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bucketed", [False, True])
def test_each_epoch_covers_every_example_once_in_an_order_set_by_the_seed(bucketed):
    split = CORPUS.train
    first = train_batches(split, 10, np.random.default_rng(7), bucketed=bucketed)
    again = train_batches(split, 10, np.random.default_rng(7), bucketed=bucketed)
    other = train_batches(split, 10, np.random.default_rng(8), bucketed=bucketed)
    assert sorted(np.concatenate(first).tolist()) == list(range(len(split)))
    assert all(len(b) == 10 for b in first if len(b) != len(split) % 10)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_random_composition_is_a_permutation_in_slices_and_bucketing_groups_lengths():
    split = CORPUS.train
    order = np.random.default_rng(3).permutation(len(split))
    batches = train_batches(split, 16, np.random.default_rng(3))
    assert np.array_equal(np.concatenate(batches), order)  # the published composition: no sorting at all

    def spread(bs: list[np.ndarray]) -> float:
        return float(np.mean([np.ptp(split.lengths[b]) for b in bs]))

    assert spread(train_batches(split, 16, np.random.default_rng(3), bucketed=True)) < 0.5 * spread(batches)
