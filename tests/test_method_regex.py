"""REGEX (docs/methods.md#regex, reconstructed): VAT's perturbation direction on a quadratic (a linear softmax model,
whose KL is locally the quadratic form of its Fisher matrix), the input-gradient penalty, the masking of the least
salient tokens and the attention alignment against hand computations; the training step's pieces against
independent recomputations; short real runs on both backbones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ratbench.methods.regex as regex_mod
from ratbench import api
from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.engine import Engine
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class, method_info
from ratbench.methods.posthoc import TransformerClassifier
from ratbench.methods.regex import (
    attention_alignment,
    input_gradient_penalty,
    kl_to,
    lowest_share,
    masked_softmax,
    vat_perturbation,
)
from ratbench.methods.unirex import EmbeddingView
from ratbench.models.backbones import TransformerBackbone, gru_backbone
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.plan import plan
from ratbench.results.record import load_record
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=300, n_dev=80, n_test=120)


# -- 1. VAT on a quadratic ------------------------------------------------------------------------------------------
def _linear_softmax(w: torch.Tensor):
    """logits = vec(E) W^T: KL(p(E) || p(E + r)) = 1/2 r^T F r + O(r^3), F = W^T (diag p - p p^T) W."""
    return lambda e: e.flatten(1) @ w.T


def _fisher(w: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    p = (e.flatten(1) @ w.T).softmax(-1)[0]
    return w.T @ (torch.diag(p) - torch.outer(p, p)) @ w


def test_vat_direction_is_the_power_iteration_of_the_kl_hessian():
    g = torch.Generator().manual_seed(0)
    length, dim, classes = 3, 2, 5
    w = torch.randn(classes, length * dim, generator=g, dtype=torch.float64)
    e = torch.randn(1, length, dim, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)  # position 1 may not move
    d0 = torch.randn(1, length, dim, generator=g, dtype=torch.float64)
    f = _fisher(w, e)
    proj = torch.diag(mask[0].repeat_interleave(dim))  # the perturbation lives on the maskable coordinates
    fm = proj @ f @ proj
    r = vat_perturbation(_linear_softmax(w), e, mask, xi=1e-6, eps=2.5, iterations=1, direction=d0)
    expected = fm @ (proj @ d0.flatten())
    expected = 2.5 * expected / expected.norm()
    torch.testing.assert_close(r.flatten(), expected, rtol=1e-4, atol=1e-6)
    assert float(r[0, 1].abs().sum()) == 0.0
    assert float(r.norm()) == pytest.approx(2.5, rel=1e-9)
    # many iterations: the dominant eigenvector of the masked Hessian (up to sign)
    vals, vecs = torch.linalg.eigh(fm)
    top = vecs[:, -1]
    r_many = vat_perturbation(_linear_softmax(w), e, mask, xi=1e-6, eps=1.0, iterations=60, direction=d0)
    assert abs(float(r_many.flatten() @ top)) == pytest.approx(1.0, abs=1e-6)
    assert float(vals[-1]) > 1.5 * float(vals[-2])  # a clear top eigenvalue, so the check means something
    # a larger finite-difference step in float32 still finds the same direction (the default is xi = 0.1)
    r32 = vat_perturbation(_linear_softmax(w.float()), e.float(), mask.float(), xi=0.1, eps=2.5, direction=d0.float())
    cos = float(torch.nn.functional.cosine_similarity(r32.flatten().double(), expected, dim=0))
    assert cos > 0.99


def test_vat_takes_no_parameter_gradient():
    lin = nn.Linear(6, 3)
    r = vat_perturbation(lambda e: lin(e.flatten(1)), torch.randn(2, 3, 2), torch.ones(2, 3), 0.1, 1.0,
                         generator=torch.Generator().manual_seed(0))
    assert lin.weight.grad is None and not r.requires_grad
    torch.testing.assert_close(torch.linalg.vector_norm(r.flatten(1), dim=1), torch.ones(2))


# -- 2. the other terms by hand -------------------------------------------------------------------------------------
def test_input_gradient_penalty_of_a_linear_model_by_hand():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(2, 4, generator=g, dtype=torch.float64)
    e = torch.randn(3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 1])
    logits = e.flatten(1) @ w.T
    ce = nn.functional.cross_entropy(logits, y, reduction="none")
    got = input_gradient_penalty(ce, e)
    # d CE_b / d e_b = W^T (p_b - onehot(y_b))
    p = logits.detach().softmax(-1)
    grads = (p - nn.functional.one_hot(y, 2).double()) @ w
    assert float(got) == pytest.approx(float(grads.pow(2).sum(1).mean()), rel=1e-10)
    assert got.requires_grad  # double back-propagation: the penalty trains the model
    (w_grad,) = torch.autograd.grad(got, e)
    assert float(w_grad.abs().sum()) > 0


def test_masking_attention_alignment_and_kl_by_hand():
    scores = torch.tensor([[0.5, -1.0, 2.0, 0.1, 9.0], [3.0, 3.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    low = lowest_share(scores, mask, 0.5)
    # row 0: n = 4, round(2.0) = 2 lowest: positions 1 (-1.0), 3 (0.1); row 1: n = 3, round(1.5) = 2: 2, then tie 0
    assert low[0].nonzero().flatten().tolist() == [1, 3] and low[1].nonzero().flatten().tolist() == [0, 2]
    s = masked_softmax(scores, mask)
    e = np.exp([0.5, -1.0, 2.0, 0.1])
    np.testing.assert_allclose(s[0, :4].numpy(), e / e.sum(), rtol=1e-6)
    assert float(s[0, 4]) == 0.0
    attention = torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2], [0.5, 0.25, 0.25, 0.0, 0.0]])
    got = attention_alignment(scores, attention, mask, temperature=2.0)
    expected = []
    for row in range(2):
        n = int(mask[row].sum())
        sr = np.exp(scores[row, :n].numpy() / 2.0)
        sr /= sr.sum()
        ar = attention[row, :n].numpy() / attention[row, :n].numpy().sum()  # renormalised over selectable tokens
        expected.append(float(np.sum(sr * np.log(sr / ar))))
    assert float(got) == pytest.approx(np.mean(expected), rel=1e-5)
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    q_logits = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    q = q_logits.softmax(-1)
    expected_kl = float((p * (p / q).log()).sum(1).mean())
    assert float(kl_to(p.log(), q_logits)) == pytest.approx(expected_kl, rel=1e-6)


# -- 3. the training step -------------------------------------------------------------------------------------------
def _cfg(**params) -> RunConfig:
    return RunConfig(epochs=2, batch_size=32, lr=5e-3, hidden_size=32, target_sparsity=15.0, dropout=0.0,
                     faithfulness=True, method_params={"match_sparsity": "target", **params})


def _method(**params):
    m = method_class("regex")(_cfg(**params))
    m.prepare(CORPUS, CORPUS.train, {"seed": 1, "dataset": "toy"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = m.build_model(gru_backbone(CORPUS, m.config))
    return m, model


def test_training_terms_match_independent_recomputations():
    method, model = _method(regex_lambda_vat=0.0)  # VAT draws noise; its direction is tested above
    clf = model.classifier
    batch = make_batch(CORPUS.train, np.arange(6))
    model.train()  # dropout 0: deterministic
    terms = method.losses(model, batch)
    emb = clf.embed(batch.ids, batch.mask).detach()
    # input-gradient penalty, one example at a time
    norms = []
    for row in range(6):
        x = emb[row : row + 1].clone().requires_grad_(True)
        logit, _ = clf.from_embeddings(x, batch.mask[row : row + 1], batch.lengths[row : row + 1])
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(logit, batch.labels[row : row + 1]), x)
        norms.append(float(g.pow(2).sum()))
    assert float(terms["igr"]) == pytest.approx(np.mean(norms), rel=1e-4)
    # saliency: Input x Gradient of the gold logit; the lowest half of each review is zeroed (the GRU's [MASK])
    x = emb.clone().requires_grad_(True)
    logits, alpha = clf.from_embeddings(x, batch.mask, batch.lengths)
    (g,) = torch.autograd.grad(logits.gather(1, batch.labels[:, None]).sum(), x)
    sal = (g * x).sum(-1).detach()
    hidden = torch.zeros_like(batch.mask)
    for row in range(6):
        n = int(batch.mask[row].sum())
        ranked = sorted(range(n), key=lambda t: (float(sal[row, t]), t))
        hidden[row, ranked[: max(1, int(round(0.5 * n)))]] = 1
    masked_logits, _ = clf(batch.ids, batch.mask, batch.lengths, keep=batch.mask - hidden)
    p = logits.detach().softmax(-1)
    q = masked_logits.detach().softmax(-1)
    assert float(terms["mask"]) == pytest.approx(float((p * (p / q).log()).sum(1).mean()), rel=1e-4)
    # attention alignment: KL(softmax(saliency) || attention) over the real tokens
    s = masked_softmax(sal, batch.mask)
    a = alpha.detach()
    kl = (s * (s.clamp_min(1e-12).log() - a.clamp_min(1e-12).log()) * batch.mask).sum(1).mean()
    assert float(terms["att"]) == pytest.approx(float(kl), rel=1e-4)
    assert float(terms["vat"]) == 0.0
    total = terms["ce"] + 0.01 * terms["igr"] + terms["mask"] + terms["att"]
    assert float(terms["loss"]) == pytest.approx(float(total), rel=1e-6)


def test_vat_term_is_the_kl_at_the_adversarial_point(monkeypatch):
    method, model = _method(regex_lambda_igr=0.0, regex_lambda_mask=0.0, regex_lambda_att=0.0)
    batch = make_batch(CORPUS.train, np.arange(4))
    seen = {}
    real = regex_mod.vat_perturbation

    def spy(*a, **k):
        seen["training"] = model.training  # the power iteration runs in eval mode
        seen["r"] = real(*a, **k)
        return seen["r"]

    monkeypatch.setattr(regex_mod, "vat_perturbation", spy)
    model.train()
    terms = method.losses(model, batch)
    assert seen["training"] is False and model.training
    clf = model.classifier
    emb = clf.embed(batch.ids, batch.mask)
    # float64 log-probabilities: the KL of two nearby distributions loses digits to cancellation in float32
    log_p = clf.from_embeddings(emb, batch.mask, batch.lengths)[0].detach().double().log_softmax(-1)
    log_q = clf.from_embeddings(emb + seen["r"], batch.mask, batch.lengths)[0].detach().double().log_softmax(-1)
    expected = float((log_p.exp() * (log_p - log_q)).sum(1).mean())
    assert float(terms["vat"]) == pytest.approx(expected, rel=1e-3)
    assert float(terms["vat"]) > 0
    pad = batch.mask == 0
    assert bool(pad.any()) and float(seen["r"][pad].abs().sum()) == 0.0  # padding never moves


def test_settings_are_checked():
    with pytest.raises(RatbenchError, match="regex_mask_ratio"):
        method_class("regex")(_cfg(regex_mask_ratio=1.0))
    with pytest.raises(RatbenchError, match="regex_saliency"):
        method_class("regex")(_cfg(regex_saliency="attention"))
    m = method_class("regex")(_cfg(regex_saliency="integrated_gradients"))
    assert m.explain_every_epoch is False  # 20-step IG highlights: only for the selected epoch
    assert set(m.evaluation_variants()) == {"binarise=top50", "regex_highlights=input_x_gradient"}


# -- 4. short runs ----------------------------------------------------------------------------------------------------
def test_catalog_entry_is_marked_reconstructed():
    info = method_info("regex")
    assert info.provenance == "reconstructed" and info.kind == "explained-classifier" and info.sparsity == "top-k"
    assert set(info.backbones) == {"gru", "transformer"}


def test_short_gru_run_learns_and_selects_at_the_matched_sparsity():
    cfg = RunConfig(epochs=2, batch_size=32, lr=5e-3, hidden_size=32, target_sparsity=15.0, faithfulness=True,
                    method_params={"match_sparsity": "target"})
    method = method_class("regex")(cfg)
    result = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu")).fit()
    m = result.metrics
    assert m["Acc"] > 75.0 and abs(m["S"] - 15.0) < 1.0, m
    assert math.isfinite(m["rationale_acc"]) and math.isfinite(m["comprehensiveness"])
    assert set(result.variants) == {"binarise=top50", "regex_highlights=integrated_gradients"}
    assert abs(result.variants["binarise=top50"]["S"] - 50.0) < 1.0
    assert method.notes["provenance"].startswith("reconstructed")


def test_short_transformer_run_finishes(tmp_path):
    overrides = {"backbone": "transformer", "local_mlm_steps": 0, "match_sparsity": "target", "epochs": 1,
                 "train_limit": 64, "test_limit": 32, "faithfulness": True, "num_threads": 1, "batch_size": 16}
    specs = plan(["regex"], ["toy"], [1], "smoke", overrides, None, "cpu", tmp_path / "data", tmp_path / "res")
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished"], [o.error for o in outcomes]
    rec = load_record(specs[0].path)
    m = rec.metrics
    assert rec.backbone["backbone"] == "transformer" and abs(m["S"] - 15.0) <= 1.5, m
    for key in ("Acc", "F1", "F1_subword", "rationale_acc", "comprehensiveness", "comp_aopc"):
        assert math.isfinite(m[key]), key


def test_transformer_masking_uses_the_mask_token_vector(tmp_path):
    tok = wordpiece_tokenizer(["a", "b"])
    clf = TransformerClassifier(TransformerBackbone(build_encoder(tiny_config("bert", vocab_size=len(tok)), tok)))
    view = EmbeddingView(clf)
    torch.testing.assert_close(view.mask_vector(), clf.embed.table.weight[tok.mask_token_id])
    torch.testing.assert_close(view.baseline(), clf.embed.table.weight[tok.pad_token_id])
    assert EmbeddingView(_method()[1].classifier).mask_vector() is None  # the GRU masks with the zero vector
