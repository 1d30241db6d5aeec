"""ratbench.attribution: each explainer against hand-computed values on a linear model, completeness of
Integrated Gradients and DeepLift on nonlinear models (GRU predictor, MLP, a tiny transformer), masking of
padding/special tokens, targets, no parameter gradients, the registry, costs and the top-k% helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ratbench.attribution import EXPLAINERS, attribute, explainer_options, make_explainer, topk_mask, topk_masks
from ratbench.errors import RatbenchError
from ratbench.methods.posthoc import AttentionClassifier
from ratbench.models.rationalizer import Predictor

GRADIENT_METHODS = ("input_x_gradient", "saliency", "integrated_gradients", "deeplift", "gradient_shap")
B, L, D, C = 3, 6, 4, 3



class SumLinear(nn.Module):
    """logits[b, c] = sum_t W[c] . e[b, t] + bias[c]: d logit_c / d e_t = W[c] at every position."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.W = nn.Parameter(torch.randn(C, D, generator=g))
        self.bias = nn.Parameter(torch.randn(C, generator=g))

    def forward(self, emb: torch.Tensor, *_: object) -> torch.Tensor:
        return emb.sum(1) @ self.W.T + self.bias


@pytest.fixture()
def lin() -> SumLinear:
    return SumLinear()


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings that are non-zero everywhere (so a masked position could only score 0 by masking) and a mask
    with a [CLS]-like position 0 in row 1 and padding at the end of rows 0 and 2."""
    emb = torch.randn(B, L, D, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(B, L)
    mask[0, 4:] = 0
    mask[1, 0] = 0
    mask[2, 5] = 0
    return emb, mask


def hand_logits(lin: SumLinear, emb: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([sum(lin.W[c] @ emb[b, t] for t in range(L)) + lin.bias[c]
                            for b in range(B) for c in range(C)]).view(B, C)


def hand_products(lin: SumLinear, x: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L): sum_d x[b, t, d] * W[c_b, d] at attributable positions, 0 elsewhere."""
    with torch.no_grad():
        out = torch.zeros(B, L)
        for b in range(B):
            for t in range(L):
                if mask[b, t] > 0:
                    out[b, t] = float((x[b, t] * lin.W[int(classes[b])]).sum())
    return out


# -- linear model: exact values ----------------------------------------------------------------------------
def test_input_x_gradient_is_exact_and_explains_the_predicted_class(lin, batch):
    emb, mask = batch
    predicted = hand_logits(lin, emb).argmax(1)
    att = attribute("input_x_gradient", lin, emb, mask, keep_dims=True)
    assert torch.equal(att.target, predicted)
    torch.testing.assert_close(att.scores, hand_products(lin, emb, predicted, mask), rtol=1e-5, atol=1e-6)
    for b in range(B):
        for t in range(L):
            want = emb[b, t] * lin.W[int(predicted[b])].detach() * mask[b, t]
            torch.testing.assert_close(att.dims[b, t], want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(att.logits, hand_logits(lin, emb), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", [1, [2, 0, 1]])
def test_target_argument_is_honoured(lin, batch, target):
    emb, mask = batch
    classes = torch.as_tensor(target).expand(B) if isinstance(target, int) else torch.tensor(target)
    for name in ("input_x_gradient", "integrated_gradients"):
        att = attribute(name, lin, emb, mask, target=target)
        assert att.target.tolist() == classes.tolist()
        torch.testing.assert_close(att.scores, hand_products(lin, emb, classes, mask), rtol=1e-4, atol=1e-5)


def test_logits_argument_sets_the_default_target(lin, batch):
    emb, mask = batch
    fake = torch.zeros(B, C)
    fake[:, 2] = 1.0  # "predicted" class 2 for every row, whatever the model says
    att = attribute("input_x_gradient", lin, emb, mask, logits=fake)
    assert att.target.tolist() == [2, 2, 2]
    torch.testing.assert_close(att.scores, hand_products(lin, emb, torch.full((B,), 2), mask), rtol=1e-5, atol=1e-6)


def test_saliency_is_the_absolute_weight_row(lin, batch):
    emb, mask = batch
    t = torch.tensor([0, 2, 1])
    w = lin.W.detach()
    att = attribute("saliency", lin, emb, mask, target=t, keep_dims=True)
    signed = attribute("saliency", lin, emb, mask, target=t, signed=True)
    l2 = attribute("saliency", lin, emb, mask, target=t, reduce="l2")
    for b in range(B):
        row = w[int(t[b])]
        for t_ in range(L):
            m = float(mask[b, t_])
            torch.testing.assert_close(att.dims[b, t_], row.abs() * m)
            torch.testing.assert_close(att.scores[b, t_], row.abs().sum() * m)
            torch.testing.assert_close(signed.scores[b, t_], row.sum() * m)
            torch.testing.assert_close(l2.scores[b, t_], row.norm() * m)


@pytest.mark.parametrize("integration", ["gausslegendre", "riemann_trapezoid", "riemann_left"])
def test_integrated_gradients_on_a_linear_model_is_exact_and_complete(lin, batch, integration):
    """With a constant gradient every quadrature rule is exact: (e - e') . W[c], summing to f(x) - f(x')."""
    emb, mask = batch
    pad = torch.tensor([0.5, -1.0, 0.25, 2.0])  # a [PAD]-embedding-like baseline
    t = hand_logits(lin, emb).argmax(1)
    att = attribute("integrated_gradients", lin, emb, mask, baseline=pad, n_steps=7, integration=integration)
    torch.testing.assert_close(att.scores, hand_products(lin, emb - pad, t, mask), rtol=1e-4, atol=1e-5)
    x_ref = torch.where(mask.unsqueeze(-1) > 0, pad.expand(B, L, D), emb)  # specials/padding keep their input
    gap = (hand_logits(lin, emb) - hand_logits(lin, x_ref)).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(att.scores.sum(1), gap, rtol=1e-4, atol=1e-4)
    assert att.delta is not None and float(att.delta.abs().max()) < 1e-4


def test_deeplift_and_gradient_shap_on_a_linear_model(lin, batch):
    emb, mask = batch
    t = hand_logits(lin, emb).argmax(1)
    want = hand_products(lin, emb, t, mask)  # zero baseline
    dl = attribute("deeplift", lin, emb, mask, module=lin)
    gs = attribute("gradient_shap", lin, emb, mask, n_samples=4)  # stdevs 0: alpha does not matter here
    torch.testing.assert_close(dl.scores, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gs.scores, want, rtol=1e-4, atol=1e-5)
    assert float(dl.delta.abs().max()) < 1e-4 and gs.delta is None


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_masked_positions_are_exactly_zero_and_parameters_get_no_grad(lin, batch, name):
    emb, mask = batch
    emb_before = emb.clone()
    options = {"stdevs": 0.3} if name == "gradient_shap" else {}
    att = attribute(name, lin, emb, mask, baseline=0.7, module=lin, keep_dims=True, **options)
    assert att.scores.shape == (B, L) and att.scores.dtype == torch.float32
    assert torch.all(att.scores[mask == 0] == 0) and torch.all(att.dims[mask == 0] == 0)
    assert torch.all(att.scores[mask > 0] != 0)
    assert all(p.grad is None and p.requires_grad for p in lin.parameters())
    assert not att.scores.requires_grad and torch.equal(emb, emb_before) and not emb.requires_grad


def test_works_inside_inference_mode(lin, batch):
    """The engine evaluates under torch.inference_mode(); attributions still need gradients. On the linear
    model with a zero baseline every path method reduces to e . W[c]."""
    emb, mask = batch
    t = hand_logits(lin, emb).argmax(1)
    with torch.inference_mode():
        e, m = emb.clone(), mask.clone()  # inference tensors, as the engine's own embeddings would be
        got = {name: attribute(name, lin, e, m, args=(m,), baseline=torch.zeros(D), module=lin)
               for name in GRADIENT_METHODS}
    for name in ("input_x_gradient", "integrated_gradients", "deeplift", "gradient_shap"):
        torch.testing.assert_close(got[name].scores, hand_products(lin, emb, t, mask), rtol=1e-4, atol=1e-5)
    saliency = torch.stack([lin.W[int(c)].detach().abs().sum() for c in t])[:, None] * mask
    torch.testing.assert_close(got["saliency"].scores, saliency)


def test_gradient_shap_seed_is_reproducible_and_leaves_global_rngs_alone(lin, batch):
    emb, mask = batch
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = attribute("gradient_shap", lin, emb, mask, stdevs=0.5, n_samples=3, seed=7)
    b = attribute("gradient_shap", lin, emb, mask, stdevs=0.5, n_samples=3, seed=7)
    c = attribute("gradient_shap", lin, emb, mask, stdevs=0.5, n_samples=3, seed=8)
    assert torch.equal(a.scores, b.scores) and not torch.equal(a.scores, c.scores)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])


# -- costs: forward passes counted on the model ----------------------------------------------------------
@pytest.mark.parametrize(("name", "options", "target_known", "forward", "backward"), [
    ("input_x_gradient", {}, False, 1, 1),
    ("saliency", {}, False, 1, 1),
    ("integrated_gradients", {"n_steps": 4}, False, 4 + 1 + 2, 4),  # steps, the target pass, delta's two
    ("integrated_gradients", {"n_steps": 4, "return_delta": False}, True, 4, 4),
    ("deeplift", {}, True, 2 + 2, 2),  # input + baseline as one 2B batch, delta's two
    ("gradient_shap", {"n_samples": 3}, False, 3 + 1, 3),
])
def test_passes_match_the_rows_the_model_sees(lin, batch, name, options, target_known, forward, backward):
    emb, mask = batch
    rows = []

    def counting(e: torch.Tensor) -> torch.Tensor:
        rows.append(e.shape[0])
        return lin(e)

    explainer = make_explainer(name, **options)
    explainer.attribute(counting, emb, mask, target=1 if target_known else None)
    assert sum(rows) == forward * B
    assert tuple(explainer.passes(target_known)) == (forward, backward)


# -- nonlinear models --------------------------------------------------------------------------------------
def _gru_batch() -> tuple[Predictor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    model = Predictor(dim=D, hidden=8, dropout=0.2, gru_mode="masked").eval()
    lengths = torch.tensor([6, 3, 5])
    mask = (torch.arange(L)[None, :] < lengths[:, None]).float()
    emb = torch.randn(B, L, D) * mask.unsqueeze(-1)  # masked word vectors: zero at padding
    return model, emb, mask, lengths


def test_integrated_gradients_completeness_on_the_gru_predictor():
    model, emb, mask, lengths = _gru_batch()
    att = attribute("integrated_gradients", model, emb, mask, args=(mask, lengths), n_steps=64)
    with torch.no_grad():
        f_x = model(emb, mask, lengths).gather(1, att.target[:, None]).squeeze(1)
        f_0 = model(torch.zeros_like(emb), mask, lengths).gather(1, att.target[:, None]).squeeze(1)
    torch.testing.assert_close(att.scores.sum(1), f_x - f_0, rtol=1e-3, atol=1e-3)
    assert float(att.delta.abs().max()) < 1e-3
    assert torch.all(att.scores[mask == 0] == 0)
    chunked = attribute("integrated_gradients", model, emb, mask, args=(mask, lengths), n_steps=64,
                        internal_batch_size=4 * B)
    torch.testing.assert_close(chunked.scores, att.scores, rtol=1e-4, atol=1e-5)
    # rows are explained independently of their batch-mates: args are expanded in step with the embeddings
    for b in range(B):
        alone = attribute("integrated_gradients", model, emb[b:b + 1], mask[b:b + 1],
                          args=(mask[b:b + 1], lengths[b:b + 1]), n_steps=64, return_delta=False)
        torch.testing.assert_close(alone.scores[0], att.scores[b], rtol=1e-4, atol=1e-5)


def test_deeplift_on_the_gru_predictor_is_input_x_gradient():
    """The documented caveat: nn.GRU's gates and max pooling have no DeepLift rule, so with a zero baseline
    DeepLift is gradient x input."""
    model, emb, mask, lengths = _gru_batch()
    dl = attribute("deeplift", model, emb, mask, args=(mask, lengths), module=model, target=1)
    x = emb.clone().requires_grad_()
    (g,) = torch.autograd.grad(model(x, mask, lengths)[:, 1].sum(), x)
    torch.testing.assert_close(dl.scores, (g * emb).sum(-1) * mask, rtol=1e-4, atol=1e-6)
    for p in model.parameters():  # the hand gradient above used autograd.grad too: nothing accumulated
        assert p.grad is None


def test_deeplift_completes_on_an_mlp_with_module_rules_and_is_grad_times_delta_without():
    torch.manual_seed(4)
    mlp = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, C))

    def forward(e: torch.Tensor) -> torch.Tensor:
        return mlp(e).sum(1)  # per-token MLP, summed over positions

    emb, mask = torch.randn(B, L, D), torch.ones(B, L)
    mask[:, 0] = 0
    base = torch.full((D,), 0.3)
    with_rules = attribute("deeplift", forward, emb, mask, baseline=base, target=0, module=mlp)
    x_ref = torch.where(mask.unsqueeze(-1) > 0, base.expand(B, L, D), emb)
    with torch.no_grad():
        gap = forward(emb)[:, 0] - forward(x_ref)[:, 0]
    torch.testing.assert_close(with_rules.scores.sum(1), gap, rtol=1e-4, atol=1e-4)  # summation-to-delta

    # without the module captum finds no nonlinearity to rewrite: plain gradient at x times (x - x')
    no_rules = attribute("deeplift", forward, emb, mask, baseline=base, target=0, return_delta=False)
    x = emb.clone().requires_grad_()
    (g,) = torch.autograd.grad(forward(x)[:, 0].sum(), x)
    torch.testing.assert_close(no_rules.scores, ((g * (emb - base)).sum(-1) * mask), rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for p in mlp.parameters())


class TinyEncoder(nn.Module):
    """A transformer classifier read from word embeddings, like `bert(inputs_embeds=...)`: positions are
    added inside, the attention mask hides padding, the head reads [CLS]."""

    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(10, 8)
        self.positions = nn.Embedding(L, 8)
        self.layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, C)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = inputs_embeds + self.positions.weight[: inputs_embeds.shape[1]]
        return self.head(self.layer(h, src_key_padding_mask=attention_mask == 0)[:, 0])


def test_transformer_special_tokens_get_nothing_and_pad_baseline_completes():
    torch.manual_seed(5)
    enc = TinyEncoder().eval()
    cls, sep, pad = 1, 2, 0
    ids = torch.tensor([[cls, 5, 6, 7, sep, pad], [cls, 8, 9, sep, pad, pad], [cls, 3, 4, 5, 6, sep]])
    attention_mask = (ids != pad).long()
    attributable = attention_mask * (ids != cls) * (ids != sep)
    emb = enc.words(ids).detach()
    pad_vec = enc.words.weight[pad].detach()
    att = attribute("integrated_gradients", enc, emb, attributable, args=(attention_mask,), baseline=pad_vec,
                    n_steps=64)
    assert torch.all(att.scores[attributable == 0] == 0)  # [CLS], [SEP], [PAD]
    x_ref = enc.words(torch.where(attributable > 0, torch.full_like(ids, pad), ids)).detach()
    with torch.no_grad():
        t = att.target[:, None]
        gap = enc(emb, attention_mask).gather(1, t).squeeze(1) - enc(x_ref, attention_mask).gather(1, t).squeeze(1)
    torch.testing.assert_close(att.scores.sum(1), gap, rtol=1e-3, atol=1e-3)
    topk = topk_mask(att, attributable, 0.5)
    assert torch.all(topk[attributable == 0] == 0) and topk.sum(1).tolist() == [2, 1, 2]  # 3, 2, 4 words


def test_attention_pass_through_uses_the_models_weights():
    torch.manual_seed(6)
    model = AttentionClassifier(torch.randn(10, D), hidden=8).eval()
    _, emb, mask, lengths = _gru_batch()
    keep = mask.clone()
    keep[0, 0] = 0  # e.g. a special token: no score even though attention reaches it
    with torch.no_grad():
        logits, alpha = model.from_embeddings(emb, mask, lengths)
    att = attribute("attention", model.from_embeddings, emb, keep, args=(mask, lengths))
    torch.testing.assert_close(att.scores, alpha * keep)
    assert att.scores[0, 0] == 0 and torch.equal(att.target, logits.argmax(1))
    given = attribute("attention", model.from_embeddings, emb, keep, attention=torch.ones(B, L), target=0)
    assert torch.equal(given.scores, keep) and given.target.tolist() == [0, 0, 0]


# -- registry --------------------------------------------------------------------------------------------
def test_registry_names_and_suggestions():
    assert set(EXPLAINERS.names()) == {*GRADIENT_METHODS, "attention"}
    with pytest.raises(RatbenchError, match="Did you mean 'integrated_gradients'"):
        make_explainer("integrated_gradient")
    with pytest.raises(RatbenchError, match="Did you mean 'n_steps'"):
        make_explainer("integrated_gradients", n_step=3)
    with pytest.raises(RatbenchError, match="reduce must be one of"):
        make_explainer("saliency", reduce="mean")
    assert explainer_options("integrated_gradients")["n_steps"] == 50


# -- top-k% ----------------------------------------------------------------------------------------------
def test_topk_counts_attributable_tokens_breaks_ties_by_position_and_skips_specials():
    scores = torch.tensor([[9.0, 1.0, 3.0, 3.0, 2.0, 3.0, 0.0], [5.0, 0.1, 0.2, 9.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0, 0]])  # [CLS] at 0; row 1: a [SEP] at 3
    got = topk_mask(scores, mask, 0.4)  # row 0: round(0.4 * 5) = 2 of the tied 3.0s -> the two earliest
    assert got.tolist() == [[0, 0, 1, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0]]  # row 1: round(0.8) = 1
    assert topk_mask(scores, mask, 0.01).sum(1).tolist() == [1, 1]  # at least one token
    assert topk_mask(scores, mask, 0.5)[0].sum() == 2  # 2.5 rounds half to even
    bins = topk_masks(scores, mask, (0.2, 1.0))
    assert bins.shape == (2, 2, 7) and torch.equal(bins[1], mask.float())
    with pytest.raises(ValueError, match="0.2 for 20"):
        topk_mask(scores, mask, 20)
