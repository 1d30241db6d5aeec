"""Properties of VER's vicinal perturbation (methods.md §2)."""

from __future__ import annotations

import torch

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.methods.ver import VER, vicinal_perturbation


def _case(seed: int = 0, b: int = 6, length: int = 40):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, length + 1, (b,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).float()
    z = (torch.rand(b, length, generator=g) < 0.3).float()  # selections also at padding, as the sampler does
    return z, mask


def test_deletions_only_among_selected_and_insertions_only_among_unselected_real_tokens():
    for seed in range(20):
        z, mask = _case(seed)
        out = vicinal_perturbation(z, mask, 0.5, generator=torch.Generator().manual_seed(seed))
        hard = z * mask
        deleted = (hard == 1) & (out == 0)
        inserted = (hard == 0) & (out == 1)
        assert not ((out == 1) & (mask == 0)).any(), "padding must never be switched on"
        assert (z[deleted] == 1).all()
        assert (mask[inserted] == 1).all() and (z[inserted] == 0).all()
        assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_batch_mean_count_mode_inserts_the_same_number_everywhere():
    z, mask = _case(3, b=8, length=60)
    out = vicinal_perturbation(z, mask, 0.4, "batch_mean", torch.Generator().manual_seed(1))
    hard = z * mask
    deleted = ((hard == 1) & (out == 0)).sum(1)
    inserted = ((hard == 0) & (out == 1)).sum(1)
    k = max(int(deleted.sum().item() // z.shape[0]), 1)
    assert (inserted == k).all(), (inserted, k)


def test_per_example_count_mode_inserts_as_many_as_deleted():
    z, mask = _case(5, b=8, length=60)
    out = vicinal_perturbation(z, mask, 0.4, "per_example", torch.Generator().manual_seed(2))
    hard = z * mask
    deleted = ((hard == 1) & (out == 0)).sum(1)
    inserted = ((hard == 0) & (out == 1)).sum(1)
    assert torch.equal(deleted, inserted)


def test_no_insertions_when_some_example_has_no_unselected_token_and_robust_when_few():
    mask = torch.ones(2, 6)
    z = torch.tensor([[1.0] * 6, [1, 1, 1, 1, 1, 0]])
    out = vicinal_perturbation(z, mask, 0.9, "batch_mean", torch.Generator().manual_seed(0))
    assert ((z == 0) & (out == 1)).sum() == 0  # reference: the whole batch skips insertions
    # one candidate but k > 1: the example gets its single candidate instead of failing the step
    z2 = torch.tensor([[1.0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    out2 = vicinal_perturbation(z2, mask, 1.0, "batch_mean", torch.Generator().manual_seed(0))
    assert out2[0, 5] == 1 and out2[1, 4:].sum() == 2


def test_perturbation_strength_follows_p_flip():
    z, mask = _case(7, b=64, length=100)
    hard = z * mask
    out = vicinal_perturbation(z, mask, 0.3, generator=torch.Generator().manual_seed(0))
    frac = (((hard == 1) & (out == 0)).sum() / hard.sum()).item()
    assert 0.2 < frac < 0.4


def test_gradient_reaches_selector_at_flipped_positions_and_no_change_at_evaluation():
    cfg = RunConfig(method_params={"p_flip": 0.5, "count_mode": "batch_mean"})
    ver = VER(cfg)
    z, mask = _case(11)
    soft_logits = torch.randn(*z.shape, 2, requires_grad=True)
    soft = soft_logits.softmax(-1)
    z_st = z - soft[..., 1].detach() + soft[..., 1]
    batch = Batch(ids=torch.zeros_like(mask).long(), mask=mask, lengths=mask.sum(1).long(),
                  labels=torch.zeros(z.shape[0]).long(), gold=None, index=None)
    torch.manual_seed(0)
    out = ver.predictor_mask(z_st, soft, batch)
    assert not torch.equal((out > 0.5).float() * mask, z * mask)  # it perturbs in training
    out.sum().backward()
    assert soft_logits.grad is not None and (soft_logits.grad.abs().sum(-1) > 0).float().mean() > 0.9
    # evaluation uses Method.rationale, which VER does not override: no perturbation at dev/test
    assert VER.rationale is VER.__mro__[1].rationale
