"""Core behaviour against hand computations on tiny tensors: RNP's regulariser and its gradient, the
straight-through Gumbel sampler, and the signs, weights and caps of the extra terms of 3PLAYER, A2R, MGR and A2I.

Every expected number is worked out in a comment from the definitions (docs/methods.md#shared-pipeline and the
method's section), never read back from the code under test. Stub players with outputs known by construction
stand in for the GRUs where a method's step is checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.methods.a2i import instruction_loss
from ratbench.methods.a2r import SoftPathRationalizer, js_divergence
from ratbench.methods.base import continuity_loss, sparsity_loss
from ratbench.methods.catalog import method_class
from ratbench.models.backbones import GruBackbone
from ratbench.models.gumbel import sample_st, straight_through


def softplus(x: float) -> float:
    """ln(1 + e^x): the cross-entropy of two-class logits [0, d] is softplus(-d) for label 1, softplus(d) for 0."""
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _batch(mask: torch.Tensor, labels: list[int], gold: torch.Tensor | None = None) -> Batch:
    return Batch(ids=torch.zeros_like(mask).long(), mask=mask, lengths=mask.sum(1).long().clamp_min(1),
                 labels=torch.tensor(labels), gold=gold, index=np.arange(mask.shape[0]))


# == 1. RNP's regulariser ======================================================================================
# Two reviews, width 5: A has 4 real tokens, B has 3. The sampler also selects padding (A at t=4, B at t=3, 4),
# as a Gumbel draw does at padding positions.
Z = torch.tensor([[1, 1, 0, 1, 1], [0, 1, 0, 1, 1]], dtype=torch.float32)
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=torch.float32)


def test_sparsity_loss_by_hand_padding_excluded_by_default_and_counted_in_the_published_form():
    # real selected: A 3 (t=0,1,3), B 1 (t=1) -> 4 of sum(p) = 7 real tokens
    # default: |4/7 - 0.2| = (20 - 7)/35 = 13/35
    assert float(sparsity_loss(Z, MASK, 0.2)) == pytest.approx(13 / 35)
    # below the target the sign flips: |4/7 - 0.9| = 0.9 - 4/7 = 23/70
    assert float(sparsity_loss(Z, MASK, 0.9)) == pytest.approx(23 / 70)
    # count_padding (published): numerator sum(z) = 4 + 3 = 7, denominator still sum(p) = 7 -> |1 - 0.2| = 0.8
    assert float(sparsity_loss(Z, MASK, 0.2, count_padding=True)) == pytest.approx(0.8)


def test_continuity_loss_by_hand_padding_excluded_by_default_and_counted_in_the_published_form():
    # real adjacent pairs: A (0,1) (1,2) (2,3): |0| + |-1| + |1| = 2 (the pair (3,4) reaches padding);
    # B (0,1) (1,2): |1| + |-1| = 2. Sum 4 over B*(max_len - 1) = 2 * 10 with max_len = 11 -> 0.2
    assert float(continuity_loss(Z, MASK, max_len=11)) == pytest.approx(0.2)
    assert float(continuity_loss(Z, MASK, max_len=256)) == pytest.approx(4 / 510)  # the published scale
    # count_padding: all 4 pairs of each row: A 0+1+1+0 = 2, B 1+1+1+0 = 3 -> 5 over 2 * (5 - 1) = 8 pairs
    assert float(continuity_loss(Z, MASK, max_len=11, count_padding=True)) == pytest.approx(5 / 8)


def test_regulariser_weights_the_terms_and_reads_the_calibrated_alpha():
    cfg = RunConfig(lambda_sparsity=11.0, lambda_continuity=12.0, max_len=11, alpha=0.2)
    rnp = method_class("rnp")(cfg)
    # 11 * 13/35 + 12 * 0.2 (values above)
    assert float(rnp.regulariser(Z, MASK)) == pytest.approx(11 * 13 / 35 + 12 * 0.2)
    # calibration moves method.alpha, not config.alpha: the regulariser must follow it (11 * 23/70 + 12 * 0.2)
    rnp.alpha = 0.9
    assert float(rnp.regulariser(Z, MASK)) == pytest.approx(11 * 23 / 70 + 12 * 0.2)
    # pad_to=max_len switches both terms to the published form: 11 * 0.8 + 12 * 5/8
    published = method_class("rnp")(RunConfig(lambda_sparsity=11.0, lambda_continuity=12.0, max_len=11, alpha=0.2,
                                              pad_to="max_len"))
    assert float(published.regulariser(Z, MASK)) == pytest.approx(11 * 0.8 + 12 * 5 / 8)


def test_regulariser_gradient_with_respect_to_z_by_hand():
    z = Z.clone().requires_grad_(True)
    # d|mean - alpha|/dz_t = sign(mean - alpha) / sum(p) on real tokens, 0 on padding; sum(p) = 7
    sparsity_loss(z, MASK, 0.2).backward()
    torch.testing.assert_close(z.grad, MASK / 7)
    z.grad = None
    sparsity_loss(z, MASK, 0.9).backward()  # mean 4/7 < 0.9: the gradient asks for more selection
    torch.testing.assert_close(z.grad, -MASK / 7)
    z.grad = None
    sparsity_loss(z, MASK, 0.2, count_padding=True).backward()  # the published numerator sums padding too
    torch.testing.assert_close(z.grad, torch.full_like(Z, 1 / 7))

    # continuity: with d_t = z_t - z_{t-1} over real pairs, d/dz_t = sign(d_t) - sign(d_{t+1}) (torch's
    # d|x|/dx at 0 is 0), divided by B*(max_len-1) = 20.
    # A = 1 1 0 1 | pad: signs of d_1..d_3 = 0, -1, +1 -> (-0, 0+1, -1-1, +1, 0) = (0, 1, -2, 1, 0)
    # B = 0 1 0 | pad pad: signs of d_1, d_2 = +1, -1 -> (-1, 1+1, -1, 0, 0) = (-1, 2, -1, 0, 0)
    z.grad = None
    continuity_loss(z, MASK, max_len=11).backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0, 1, -2, 1, 0], [-1, 2, -1, 0, 0]]) / 20.0)

    # and Method.regulariser is 11 x the first plus 12 x the second
    z.grad = None
    rnp = method_class("rnp")(RunConfig(lambda_sparsity=11.0, lambda_continuity=12.0, max_len=11, alpha=0.2))
    rnp.regulariser(z, MASK).backward()
    expected = 11 * MASK / 7 + 12 * torch.tensor([[0, 1, -2, 1, 0], [-1, 2, -1, 0, 0]]) / 20.0
    torch.testing.assert_close(z.grad, expected)


# == 2. Straight-through Gumbel ================================================================================
LOGITS = torch.tensor([[[0.0, 1.0], [2.0, -1.0], [0.3, 0.2]], [[-0.5, 0.5], [1.5, 1.4], [0.0, -2.0]]])


def _gumbel(seed: int, shape: torch.Size) -> torch.Tensor:
    """Standard Gumbel noise as torch.nn.functional.gumbel_softmax draws it: -log E, E ~ Exp(1)."""
    return -torch.empty(shape).exponential_(generator=torch.Generator().manual_seed(seed)).log()


def test_straight_through_forward_is_the_hard_value_and_backward_the_soft_select_probability():
    hard = torch.tensor([1.0, 0.0, 1.0])
    soft = torch.tensor([[0.3, 0.7], [0.6, 0.4], [0.45, 0.55]], requires_grad=True)
    out = straight_through(hard, soft)
    assert torch.equal(out, hard)  # exactly, not up to rounding
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    # d out_t / d soft_t = (0, 1): the gradient goes through the 'select' probability only, weight w_t
    torch.testing.assert_close(soft.grad, torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]))


@pytest.mark.parametrize("tau", [1.0, 0.5, 2.0])
def test_sample_st_is_argmax_of_the_noised_logits_with_the_analytic_gradient(tau):
    logits = LOGITS.clone().requires_grad_(True)
    z, soft = sample_st(logits, tau, torch.Generator().manual_seed(7))
    g = _gumbel(7, LOGITS.shape)
    noised = LOGITS + g
    assert set(z.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(z.detach(), (noised[..., 1] > noised[..., 0]).float())  # tau never changes the argmax
    # soft 'select' probability p = softmax((a + g)/tau)_1 = sigmoid(((a1 + g1) - (a0 + g0)) / tau)
    p = torch.sigmoid((noised[..., 1] - noised[..., 0]) / tau)
    torch.testing.assert_close(soft[..., 1].detach(), p)
    # dz/da1 = dp/da1 = p(1-p)/tau, dz/da0 = -p(1-p)/tau; with weights w_t the gradient is w_t times that
    w = torch.arange(1.0, 7.0).reshape(2, 3)
    (z * w).sum().backward()
    d = w * p * (1 - p) / tau
    torch.testing.assert_close(logits.grad, torch.stack([-d, d], -1))


def test_sample_st_matches_torch_gumbel_softmax_hard():
    # an independent implementation: torch's own hard gumbel_softmax draws from the global RNG the same way
    for tau in (1.0, 0.5):
        a = LOGITS.clone().requires_grad_(True)
        b = LOGITS.clone().requires_grad_(True)
        torch.manual_seed(3)
        z, _ = sample_st(a, tau)
        torch.manual_seed(3)
        ref = nn.functional.gumbel_softmax(b, tau=tau, hard=True)[..., 1]
        assert torch.equal(z, ref)
        z.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_hard_selection_rate_is_the_softmax_of_the_logits_for_any_tau():
    # Gumbel-max: P(a1 + g1 > a0 + g0) = softmax(a)_1 = sigmoid(a1 - a0), whatever tau; 20000 draws give a
    # standard error below 0.0036, so 0.015 is > 4 sigma
    logits = torch.tensor([0.0, 1.0, -1.0, 2.0])
    pairs = torch.stack([torch.zeros(4), logits], -1).expand(20000, 4, 2)
    for tau, seed in ((1.0, 0), (0.3, 1), (3.0, 2)):
        z, _ = sample_st(pairs, tau, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(z.mean(0), torch.sigmoid(logits), atol=0.015, rtol=0.0)


# == stub players for the methods' steps ============================================================================
SURE = 50.0  # selector logits +-50: a Gumbel draw overturns a decision with probability sigmoid(-100) ~ 1e-44


class Scorer(nn.Module):
    """A predictor whose class-1 logit is w * sum_t z_t p_t v_t (class 0: 0), v the 'word vector' of each token."""

    def __init__(self, w: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, values: torch.Tensor, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.w * (values * z * mask).sum(1)
        return torch.stack([torch.zeros_like(s), s], -1)


class Chooser(nn.Module):
    """A selector with fixed choices, scaled by a parameter so the selection has a graph to it."""

    def __init__(self, choose: torch.Tensor, sure: float = SURE):
        super().__init__()
        self.choose = choose
        self.sure = sure
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, emb: torch.Tensor, batch) -> torch.Tensor:
        s = (2 * self.choose - 1) * self.sure * self.scale
        return torch.stack([torch.zeros_like(s), s], -1)


class StubPlayers(nn.Module):
    """The Rationalizer API (`embed`, `select_logits`, `predict`) over token values (B, L); records what the
    predictor reads."""

    def __init__(self, values: torch.Tensor, choose: torch.Tensor):
        super().__init__()
        self.values = values
        self.selector = Chooser(choose)
        self.predictor = Scorer()
        self.seen: list[torch.Tensor] = []

    def embed(self, ids, mask):
        return self.values.unsqueeze(-1)

    def select_logits(self, emb, batch):
        return self.selector(emb, batch)

    def predict(self, emb, z, batch, pool=None, remove=False):
        self.seen.append(z)
        return self.predictor(emb[..., 0], z, batch.mask)


class StubComplementPlayers(StubPlayers):
    """Adds 3PLAYER's complement predictor, w_c * sum_t (1 - z_t) p_t v_t, and records the z it reads."""

    def __init__(self, values: torch.Tensor, choose: torch.Tensor, w_c: float):
        super().__init__(values, choose)
        self.complement = Scorer(w_c)
        self.complement_z: list[torch.Tensor] = []

    def predict_complement(self, emb, z, batch):
        if z.requires_grad:
            z.retain_grad()  # to read d loss / d z after the step
        self.complement_z.append(z)
        return self.complement(emb[..., 0], 1.0 - z, batch.mask)


# == 6. 3PLAYER =====================================================================================================
# One review of 3 real tokens, label 1, values v = (2, 1, 0.5); the selector keeps t=0 only, so the predictor
# reads s = 2 and the complement s_c = w_c * (1 + 0.5) = 1.5 w_c.
# Regulariser with alpha 0.5, lambda_sparsity 6, lambda_continuity 1, max_len 11:
# 6 * |1/3 - 1/2| + 1 * (one switch over 1 * 10 pairs) = 1 + 0.1 = 1.1.
V3 = torch.tensor([[2.0, 1.0, 0.5]])
CHOOSE3 = torch.tensor([[1.0, 0.0, 0.0]])
CFG3 = dict(alpha=0.5, lambda_sparsity=6.0, lambda_continuity=1.0, max_len=11, cls_weight=0.9)


def _three_player_step(lambda_comp: float, w_c: float, comp_lr: float = 0.0):
    method = method_class("3player")(RunConfig(**CFG3, method_params={"lambda_comp": lambda_comp}))
    model = StubComplementPlayers(V3, CHOOSE3, w_c)
    main = torch.optim.SGD([model.selector.scale, model.predictor.w], lr=0.0)
    comp = torch.optim.SGD(model.complement.parameters(), lr=comp_lr)
    stats = method.train_step(model, _batch(torch.ones(1, 3), [1]), [main, comp])
    return stats, model


def test_3player_loss_subtracts_the_capped_complement_cross_entropy():
    # complement informative (w_c = 1): CE_c = softplus(-1.5) = 0.201 < ln 2, so the term is -0.9 * 0.201
    stats, model = _three_player_step(1.0, w_c=1.0)
    assert stats["cls_loss"] == pytest.approx(softplus(-2.0), rel=1e-5)
    assert stats["loss"] == pytest.approx(0.9 * softplus(-2.0) - 0.9 * softplus(-1.5) + 1.1, rel=1e-5)
    # complement worse than chance (w_c = -1): CE_c = softplus(1.5) = 1.70 > ln 2; the cap pays ln 2 only
    stats, _ = _three_player_step(1.0, w_c=-1.0)
    assert stats["loss"] == pytest.approx(0.9 * softplus(-2.0) - 0.9 * math.log(2) + 1.1, rel=1e-5)
    # lambda_comp scales the term: 0.5 * 0.9 * CE_c
    stats, _ = _three_player_step(0.5, w_c=1.0)
    assert stats["loss"] == pytest.approx(0.9 * softplus(-2.0) - 0.45 * softplus(-1.5) + 1.1, rel=1e-5)


def test_3player_pushes_the_selector_to_take_what_informs_the_complement_and_stops_at_chance():
    # The complement term's gradient on z is the difference between lambda_comp = 1 and 0 (same z, same rest).
    # d CE_c / d z_t = -sigmoid(-s_c) * d s_c/d z_t = sigmoid(-s_c) * w_c * v_t, so
    # d(-0.9 CE_c)/dz_t = -0.9 * sigmoid(-1.5) * v_t < 0 for every token with v_t > 0: gradient descent raises
    # z_t, taking label evidence out of the complement.
    grads = {}
    for lam in (1.0, 0.0):
        _, model = _three_player_step(lam, w_c=1.0)
        grads[lam] = model.complement_z[-1].grad.clone()
    expected = -0.9 * sigmoid(-1.5) * V3
    torch.testing.assert_close(grads[1.0] - grads[0.0], expected)
    assert bool((grads[1.0] - grads[0.0] < 0).all())
    # at or beyond chance (CE_c > ln 2) the cap stops paying: no gradient from the complement term
    capped = {}
    for lam in (1.0, 0.0):
        _, model = _three_player_step(lam, w_c=-1.0)
        capped[lam] = model.complement_z[-1].grad.clone()
    torch.testing.assert_close(capped[1.0], capped[0.0], rtol=0.0, atol=0.0)


def test_3player_complement_predictor_minimises_its_own_ce_on_the_detached_complement():
    # its step: loss_c = 0.9 * CE([0, w_c s], 1) with s = 1.5 (t=1 and t=2 left out), so
    # d loss_c / d w_c = -0.9 * sigmoid(-w_c s) * s = -0.9 * sigmoid(-1.5) * 1.5; SGD at lr 1 moves w_c up by
    # 0.9 * 1.5 * sigmoid(-1.5) = 0.2463 (toward predicting the label from the complement, not away from it)
    _, model = _three_player_step(1.0, w_c=1.0, comp_lr=1.0)
    assert model.complement.w.item() == pytest.approx(1.0 + 0.9 * 1.5 * sigmoid(-1.5), rel=1e-5)
    first = model.complement_z[0]
    assert not first.requires_grad and torch.equal(first, CHOOSE3)  # step 1 read the detached selection


# == 6. A2R =========================================================================================================
def test_a2r_js_divergence_of_two_class_distributions_by_hand():
    # P = (0.8, 0.2), Q = (0.4, 0.6), M = (0.6, 0.4):
    # KL(P||M) = 0.8 ln(4/3) + 0.2 ln(1/2) = 0.091516; KL(Q||M) = 0.4 ln(2/3) + 0.6 ln(3/2) = 0.081093
    # JS = (0.091516 + 0.081093)/2 = 0.086305; a second row with P = Q adds 0, and the batch mean halves it
    js_row = 0.5 * (0.8 * math.log(4 / 3) + 0.2 * math.log(0.5) + 0.4 * math.log(2 / 3) + 0.6 * math.log(1.5))
    assert js_row == pytest.approx(0.086305, abs=1e-6)
    p = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    q = torch.tensor([[0.4, 0.6], [0.3, 0.7]])
    assert float(js_divergence(p, q)) == pytest.approx(js_row / 2, rel=1e-5)
    assert float(js_divergence(q, p)) == pytest.approx(js_row / 2, rel=1e-5)  # symmetric


class SoftStub(nn.Module):
    def __init__(self, soft_logits: torch.Tensor):
        super().__init__()
        self.soft_logits = soft_logits

    def predict_soft(self, emb, sel_logits, batch):
        return self.soft_logits


def test_a2r_extra_losses_weight_the_soft_path_ce_by_cls_weight_and_js_by_lambda_js():
    # soft path logits (0, ln 3) -> (1/4, 3/4); label 1 -> CE = ln(4/3). Hard path logits (0, 0) -> (1/2, 1/2).
    # JS with M = (3/8, 5/8): KL(P||M) = 1/4 ln(2/3) + 3/4 ln(6/5), KL(Q||M) = 1/2 ln(4/3) + 1/2 ln(4/5)
    method = method_class("a2r")(RunConfig(cls_weight=0.6, method_params={"lambda_js": 2.0}))
    model = SoftStub(torch.tensor([[0.0, math.log(3.0)]]))
    out = method.extra_losses(model, _batch(torch.ones(1, 2), [1]), None, None, None, torch.zeros(1, 2))
    js = 0.5 * (0.25 * math.log(2 / 3) + 0.75 * math.log(6 / 5) + 0.5 * math.log(4 / 3) + 0.5 * math.log(4 / 5))
    assert float(out["soft_cls"]) == pytest.approx(0.6 * math.log(4 / 3), rel=1e-5)
    assert float(out["js"]) == pytest.approx(2.0 * js, rel=1e-5)
    assert set(out) == {"soft_cls", "js"}


def test_a2r_soft_path_attends_over_real_tokens_by_the_selector_score():
    # alpha = softmax over real tokens of a1 - a0 = softmax(0, ln 3) = (1/4, 3/4), padding 0; with states
    # h = (4, 0), (0, 8), (1000, 1000 at padding) the pooled state is (1, 6); an identity head returns it
    model = SoftPathRationalizer(GruBackbone(torch.zeros(3, 2), 2, "masked"), dropout=0.0).eval()
    h = torch.tensor([[[4.0, 0.0], [0.0, 8.0], [1000.0, 1000.0]]])
    model.predictor.states = lambda emb, keep, batch: h
    with torch.no_grad():
        model.soft_head.weight.copy_(torch.eye(2))
        model.soft_head.bias.zero_()
    sel = torch.tensor([[[0.0, 0.0], [0.0, math.log(3.0)], [0.0, 100.0]]])
    out = model.predict_soft(torch.zeros(1, 3, 2), sel, _batch(torch.tensor([[1.0, 1.0, 0.0]]), [1]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 6.0]]))


# == 6. MGR =========================================================================================================
class StubGenerators(StubPlayers):
    def __init__(self, values: torch.Tensor, chooses: list[torch.Tensor], sure: float = SURE):
        super().__init__(values, chooses[0])
        self.generators = nn.ModuleList([Chooser(c, sure) for c in chooses])
        self.selector = self.generators[0]

    def predictor_parameters(self):
        return list(self.predictor.parameters())


# One review of 4 real tokens, label 1, v = (2, 1, 0.5, -1); alpha 0.5, lambda_sparsity 4, lambda_continuity 2,
# max_len 5 (so B*(max_len-1) = 4):
#   g1 keeps t=0:        s = 2,   CE = softplus(-2),   4*|1/4 - 1/2| + 2*(1 switch/4)  = 1 + 0.5 = 1.5
#   g2 keeps t=1,2:      s = 1.5, CE = softplus(-1.5), 4*|2/4 - 1/2| + 2*(2 switches/4) = 0 + 1 = 1.0
#   g3 keeps all four:   s = 2.5, CE = softplus(-2.5), 4*|4/4 - 1/2| + 0                = 2
V4 = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
CHOOSE_MGR = [torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0.0, 1, 1, 0]]), torch.tensor([[1.0, 1, 1, 1]])]
CFG_MGR = dict(alpha=0.5, lambda_sparsity=4.0, lambda_continuity=2.0, max_len=5, cls_weight=0.9, lr=0.01)


def test_mgr_loss_is_the_sum_over_generators_of_weighted_ce_plus_regulariser():
    method = method_class("mgr")(RunConfig(**CFG_MGR, method_params={"n_generators": 3}))
    model = StubGenerators(V4, CHOOSE_MGR)
    stats = method.train_step(model, _batch(torch.ones(1, 4), [1]), [torch.optim.SGD(model.parameters(), lr=0.0)])
    expected = 0.9 * (softplus(-2.0) + softplus(-1.5) + softplus(-2.5)) + 1.5 + 1.0 + 2.0
    assert stats["loss"] == pytest.approx(expected, rel=1e-5)
    assert stats["cls_loss"] == pytest.approx(softplus(-2.0), rel=1e-5)  # stats follow the first generator
    torch.testing.assert_close(torch.stack(model.seen[:3])[:, 0], torch.cat(CHOOSE_MGR))  # each its own z


def test_mgr_generator_i_moves_at_i_lr_and_the_predictor_at_lr_over_n():
    # Adam's first step moves each parameter by lr_group * g / (|g| + eps), i.e. by lr_group when |g| >> 1e-8.
    # Selector logits +-3 (not +-50) so that z has a non-negligible gradient to each generator's scale.
    method = method_class("mgr")(RunConfig(**CFG_MGR, method_params={"n_generators": 3}))
    torch.manual_seed(0)
    model = StubGenerators(V4, CHOOSE_MGR, sure=3.0)
    [opt] = method.build_optimizers(model)
    before = [g.scale.item() for g in model.generators] + [model.predictor.w.item()]
    method.train_step(model, _batch(torch.ones(1, 4), [1]), [opt])
    after = [g.scale.item() for g in model.generators] + [model.predictor.w.item()]
    moved = [abs(a - b) for a, b in zip(after, before)]
    assert moved == pytest.approx([0.01, 0.02, 0.03, 0.01 / 3], rel=1e-3)


# == 6. A2I =========================================================================================================
def test_a2i_instruction_hinge_pushes_the_flipped_label_down_by_hand():
    # one row, logits (0, 4), flipped label 1: CE = softplus(-4) = 0.0181 < ln 2, loss = -CE / 2 (batch of 2, the
    # second row past chance: CE(4, 0 -> label 1) = softplus(4) > ln 2, capped, no gradient).
    # d(-CE)/d logit_1 = -(p1 - 1) = sigmoid(-4); d(-CE)/d logit_0 = -p0 = -sigmoid(-4); each / 2 for the mean.
    # A positive gradient on logit_1: descent lowers p(flipped label) on the attacker's rationale.
    logits = torch.tensor([[0.0, 4.0], [4.0, 0.0]], requires_grad=True)
    loss = instruction_loss(logits, torch.tensor([1, 1]), hinge=True)
    assert loss.item() == pytest.approx(-(softplus(-4.0) + math.log(2)) / 2, rel=1e-5)
    loss.backward()
    s = sigmoid(-4.0) / 2
    torch.testing.assert_close(logits.grad, torch.tensor([[-s, s], [0.0, 0.0]]))
