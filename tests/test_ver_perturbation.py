"""VER (docs/methods.md#ver): properties of the vicinal perturbation; which mask the regulariser and the
cross-entropy see in a training step, by hand on a stub; and VER at p_flip = 0 trained side by side with RNP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.engine import Engine
from ratbench.methods.catalog import method_class
from ratbench.methods.ver import VER, vicinal_perturbation
from tests.toy import toy_corpus


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


# -- a training step, by hand on stub players --------------------------------------------------------------------
class _StubPlayers(nn.Module):
    """Token values v stand for the word vectors; the selector's logits are +-50, so the sampled selection is
    `choose` (a Gumbel draw overturns +-50 with probability ~1e-44); the predictor's class-1 logit is
    w * sum_t z_t p_t v_t. Records the mask the predictor reads."""

    def __init__(self, values: torch.Tensor, choose: torch.Tensor):
        super().__init__()
        self.values, self.choose = values, choose
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.w = nn.Parameter(torch.tensor(1.0))
        self.read: list[torch.Tensor] = []

    def embed(self, ids, mask):
        return self.values.unsqueeze(-1)

    def select_logits(self, emb, batch):
        s = (2 * self.choose - 1) * 50.0 * self.scale
        return torch.stack([torch.zeros_like(s), s], -1)

    def predict(self, emb, z, batch, pool=None, remove=False):
        self.read.append(z.detach().clone())
        s = self.w * (emb[..., 0] * z * batch.mask).sum(1)
        return torch.stack([torch.zeros_like(s), s], -1)


class _SpyVER(VER):
    def regulariser(self, z, mask):
        self.regularised = z.detach().clone()
        return super().regulariser(z, mask)


def test_step_regularises_the_selection_and_trains_the_predictor_on_the_perturbed_mask():
    # Two reviews of 4 real tokens and one padding position, v = (1, 2, 3, 4 | 100), labels (1, 0).
    # Sampled selection (padding included, as the sampler does): A = 1 1 0 0 | 1, B = 0 1 1 0 | 0.
    # p_flip = 1 deletes every selected real token (u < 1 always): A loses t=0,1, B loses t=1,2, 4 in all;
    # batch_mean inserts k = max(4 // 2, 1) = 2 per review, and each has exactly 2 unselected real tokens
    # (A: t=2,3; B: t=0,3), so all of them come on whatever the random keys: on real tokens the perturbed
    # mask is the complement, and padding keeps its sampled value:
    #   A = 0 0 1 1 | 1, B = 1 0 0 1 | 0.
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    values = torch.tensor([[1.0, 2, 3, 4, 100], [1, 2, 3, 4, 100]])
    choose = torch.tensor([[1.0, 1, 0, 0, 1], [0, 1, 1, 0, 0]])
    perturbed = torch.tensor([[0.0, 0, 1, 1, 1], [1, 0, 0, 1, 0]])
    ver = _SpyVER(RunConfig(alpha=0.15, lambda_sparsity=11.0, lambda_continuity=12.0, max_len=256,
                            cls_weight=0.9, method_params={"p_flip": 1.0, "count_mode": "batch_mean"}))
    model = _StubPlayers(values, choose)
    batch = Batch(ids=torch.zeros(2, 5).long(), mask=mask, lengths=torch.tensor([4, 4]),
                  labels=torch.tensor([1, 0]), gold=None, index=np.arange(2))
    torch.manual_seed(0)
    stats = ver.train_step(model, batch, [torch.optim.SGD(model.parameters(), lr=0.0)])
    assert torch.equal(ver.regularised, choose)  # the regulariser sees the selector's z ...
    assert torch.equal(model.read[0], perturbed)  # ... the predictor the perturbed mask
    # cross-entropy on the perturbed mask: A reads 3 + 4 = 7 (label 1), B reads 1 + 4 = 5 (label 0);
    # CE([0, d], 1) = softplus(-d), CE([0, d], 0) = softplus(d). (On z it would be 3 and 5.)
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    ce = (softplus(-7.0) + softplus(5.0)) / 2
    assert stats["cls_loss"] == pytest.approx(ce, rel=1e-5)
    # regulariser of z: real selected 4 of 8 -> 11 * |0.5 - 0.15|; switches over real pairs A 0+1+0, B 1+0+1 = 3
    # over 2 * 255 -> 12 * 3/510
    assert stats["loss"] == pytest.approx(0.9 * ce + 11 * 0.35 + 12 * 3 / 510, rel=1e-5)
    # and the step-statistics' S counts the selection, not the perturbation: 4 real of 8
    assert stats["selected"] == 4.0 and stats["selected_ref"] == 5.0


# -- VER at p_flip = 0 is RNP ---------------------------------------------------------------------------------------
TOY = toy_corpus(n_train=300, n_dev=100, n_test=100)
TIMING = ("train_seconds", "eval_seconds")


def _same(a, b) -> bool:
    """Equality of nested results, NaN equal to NaN (metrics without a value are NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_ver_without_flips_trains_exactly_as_rnp():
    # With p_flip = 0 VER neither perturbs nor draws random numbers, so the global RNG stream (Gumbel noise,
    # dropout) is RNP's and every number agrees, not just approximately.
    results, states = {}, {}
    for name, params in (("rnp", {}), ("ver", {"p_flip": 0.0})):
        cfg = RunConfig(epochs=2, batch_size=32, lr=5e-3, hidden_size=16, alpha=0.15, target_sparsity=15.0,
                        faithfulness=True, method_params=params)
        engine = Engine(method_class(name)(cfg), TOY, cfg, seed=2, device=torch.device("cpu"))
        results[name] = engine.fit()
        states[name] = engine.model_state()
    rnp, ver = results["rnp"], results["ver"]
    assert len(rnp.curves) == 2
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert _same(strip(rnp.curves), strip(ver.curves))
    assert _same(rnp.metrics, ver.metrics) and _same(rnp.selections, ver.selections)
    assert rnp.selected_epoch == ver.selected_epoch and rnp.final_alpha == ver.final_alpha
    assert states["rnp"].keys() == states["ver"].keys()
    assert all(torch.equal(states["rnp"][k], states["ver"][k]) for k in states["rnp"])
