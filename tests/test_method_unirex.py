"""UNIREX (docs/methods.md#unirex): the margin losses, plausibility and the top-k operator with its [CLS]/[SEP]
rules against hand computations; one training step of AA-F against an independent recomputation (Input x Gradient
by autograd, a sort by hand, each complement and rationale through the classifier separately); the reference
optimiser and schedule by hand; gradient paths of a learned extractor; IG completeness through the transformer
classifier's embedding view; short real runs on both backbones, with the faithfulness ablation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ratbench import api
from ratbench.attribution import make_explainer
from ratbench.config import RunConfig
from ratbench.data.batching import Batch, make_batch
from ratbench.data.corpus import Corpus, build_split
from ratbench.engine import Engine
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class, method_info
from ratbench.methods.posthoc import TransformerClassifier
from ratbench.methods.unirex import (
    EmbeddingView,
    ReferenceAdamW,
    comprehensiveness_loss,
    linear_warmup,
    plausibility_loss,
    ranking_batch,
    sufficiency_loss,
    topk_keeps,
)
from ratbench.models.backbones import TransformerBackbone, gru_backbone
from ratbench.models.players import visible
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.plan import plan
from ratbench.results.record import load_record
from tests.toy import toy_corpus, toy_text

CORPUS = toy_corpus(n_train=300, n_dev=80, n_test=120)


def _cfg(**params) -> RunConfig:
    return RunConfig(epochs=2, batch_size=32, lr=5e-3, hidden_size=32, target_sparsity=15.0, dropout=0.0,
                     faithfulness=True, method_params={"match_sparsity": "target", **params})


def _method(corpus: Corpus = CORPUS, **params):
    m = method_class("unirex")(_cfg(**params))
    m.prepare(corpus, corpus.train, {"seed": 1, "dataset": "toy"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = m.build_model(gru_backbone(corpus, m.config))
    return m, model


# -- 1. the objectives by hand --------------------------------------------------------------------------------------
def test_margin_losses_by_hand():
    ce_full = torch.tensor([0.2, 1.5])
    ce_comp = torch.tensor([[0.5, 3.0], [1.0, 1.0]])  # (K=2 bins, B=2)
    # max(0, full - comp + 1): [0.2-0.5+1, 1.5-3+1] = [0.7, 0] ; [0.2-1+1, 1.5-1+1] = [0.2, 1.5] -> mean 0.6
    assert float(comprehensiveness_loss(ce_full, ce_comp, 1.0)) == pytest.approx(0.6)
    ce_suff = torch.tensor([[0.25, 1.0], [0.0, 2.0]])
    # max(0, suff - full + 0.1): [0.15, 0] ; [0, 0.6] -> mean 0.1875
    assert float(sufficiency_loss(ce_full, ce_suff, 0.1)) == pytest.approx(0.1875)
    # zero margins: the plain differences, clipped at 0
    assert float(sufficiency_loss(ce_full, ce_suff, 0.0)) == pytest.approx((0.05 + 0.5) / 4)


def test_plausibility_is_weighted_bce_over_examples_with_gold():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0], [1.0, 1.0, 1.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    gold = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 0]])
    # example 1 has no gold: ignored. Tokens: 3 + 3 = 6, positives 3 -> weight (6 - 3) / 3 = 1
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus: BCE(l, 1) = sp(-l), BCE(l, 0) = sp(l)
    total = sp(-2.0) + sp(-1.0) + sp(0.5) + sp(3.0) + sp(-0.0) + sp(-0.0)
    assert float(plausibility_loss(logits, gold, mask)) == pytest.approx(total / 6, rel=1e-6)
    # one positive among 3 tokens: weight 2 on the positive
    g1 = torch.tensor([[1.0, 0, 0, 0]])
    expected = (2 * sp(-2.0) + sp(-1.0) + sp(0.5)) / 3
    assert float(plausibility_loss(logits[:1], g1, mask[:1])) == pytest.approx(expected, rel=1e-6)


def _special_batch() -> Batch:
    """Two transformer-style rows: [CLS] 10 pieces [SEP] and [CLS] 3 pieces [SEP] + padding."""
    lengths = [12, 5]
    attention = torch.zeros(2, 12)
    forced = torch.zeros(2, 12)
    for i, n in enumerate(lengths):
        attention[i, :n] = 1
        forced[i, [0, n - 1]] = 1
    return Batch(ids=torch.ones(2, 12, dtype=torch.long), mask=attention - forced, lengths=torch.tensor(lengths),
                 labels=torch.zeros(2, dtype=torch.long), gold=None, index=np.arange(2), attention=attention,
                 forced=forced, token_type=torch.zeros(2, 12, dtype=torch.long))


def test_topk_rules_for_cls_and_sep():
    batch = _special_batch()
    scores = torch.zeros(2, 12)
    scores[0, 1:11] = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.0, 0.7, 0.2, 0.6, 0.5, 0.4])
    scores[0, 11] = 5.0  # [SEP] scores highest
    scores[0, 0] = 9.0  # [CLS] higher still: never ranked
    scores[1, 1:5] = torch.tensor([0.3, 0.3, 0.1, 2.0])  # row 1: [SEP] at 4 scores highest
    # ratbench: ranks the selectable pieces only; n = 10 and 3
    rb = ranking_batch(batch, "ratbench")
    sel = topk_keeps(scores, rb.mask, [0.25])[0]
    # row 0: round(2.5) = 2 (half to even): positions 2 (0.9), 4 (0.8); row 1: round(0.75) = 1: tie 1/2 -> 1
    assert sel[0].nonzero().flatten().tolist() == [2, 4]
    assert sel[1].nonzero().flatten().tolist() == [1]
    # what the model reads: the rationale plus [CLS] and [SEP]; the complement plus [CLS] and [SEP]
    assert visible(sel, rb)[0].nonzero().flatten().tolist() == [0, 2, 4, 11]
    assert visible(rb.mask - sel, rb)[1].nonzero().flatten().tolist() == [0, 2, 3, 4]
    # reference: every real piece but [CLS] ranks and counts; n = 11 and 4
    ref = ranking_batch(batch, "reference")
    assert ref.mask[0].nonzero().flatten().tolist() == list(range(1, 12))
    assert ref.forced[0].nonzero().flatten().tolist() == [0] and ref.forced[1].nonzero().flatten().tolist() == [0]
    sel = topk_keeps(scores, ref.mask, [0.25])[0]
    # row 0: round(2.75) = 3: [SEP] (5.0), 2, 4; row 1: round(1.0) = 1: [SEP] (2.0)
    assert sel[0].nonzero().flatten().tolist() == [2, 4, 11]
    assert sel[1].nonzero().flatten().tolist() == [4]
    assert visible(sel, ref)[1].nonzero().flatten().tolist() == [0, 4]  # [CLS] always; [SEP] only when selected
    assert visible(ref.mask - sel, ref)[1].nonzero().flatten().tolist() == [0, 1, 2, 3]
    # at least one token, and never more than the row has
    tiny = topk_keeps(scores, ref.mask, [0.01, 1.0])
    assert tiny[0].sum(1).tolist() == [1.0, 1.0] and tiny[1].sum(1).tolist() == [11.0, 4.0]
    # the GRU has no specials: both rules are the batch itself
    plain = make_batch(CORPUS.train, np.arange(3))
    assert ranking_batch(plain, "reference") is plain


# -- 2. one training step against an independent recomputation ----------------------------------------------------
def _round_half_even(x: float) -> int:
    return int(round(x))  # Python rounds floats half to even, as torch.round


def test_aa_training_step_matches_a_hand_recomputation():
    method, model = _method(unirex_train_bins=[10.0, 50.0])
    clf = model.classifier
    batch = make_batch(CORPUS.train, np.arange(6))
    model.train()  # dropout is 0: the training pass is deterministic
    terms = method.losses(model, batch)
    # Input x Gradient of the gold logit, by autograd on the classifier itself
    emb = clf.embed(batch.ids, batch.mask).detach().requires_grad_(True)
    logits, _ = clf.from_embeddings(emb, batch.mask, batch.lengths)
    (grad,) = torch.autograd.grad(logits.gather(1, batch.labels[:, None]).sum(), emb)
    scores = (grad * emb).sum(-1).detach()
    ce = lambda keep: nn.functional.cross_entropy(clf(batch.ids, batch.mask, batch.lengths, keep)[0],  # noqa: E731
                                                  batch.labels, reduction="none").detach()
    ce_full = ce(torch.ones_like(batch.mask))
    comp, suff = [], []
    for fraction in (0.1, 0.5):
        keep = torch.zeros_like(batch.mask)
        for row in range(6):
            n = int(batch.mask[row].sum())
            k = max(1, _round_half_even(fraction * n))
            ranked = sorted(range(n), key=lambda t: (-float(scores[row, t]), t))
            keep[row, ranked[:k]] = 1
        comp.append((ce_full - ce(batch.mask - keep) + 1.0).clamp_min(0))
        suff.append((ce(keep) - ce_full + 0.1).clamp_min(0))
    expected_comp, expected_suff = torch.stack(comp).mean(), torch.stack(suff).mean()
    assert float(terms["task"]) == pytest.approx(float(ce_full.mean()), rel=1e-5)
    assert float(terms["comp"]) == pytest.approx(float(expected_comp), rel=1e-5, abs=1e-6)
    assert float(terms["suff"]) == pytest.approx(float(expected_suff), rel=1e-5, abs=1e-6)
    assert float(terms["comp"]) > 0 and float(terms["suff"]) > 0  # both active, so a swap would show
    total = 1.0 * ce_full.mean() + 0.5 * expected_comp + 0.5 * expected_suff
    assert float(terms["loss"]) == pytest.approx(float(total), rel=1e-5)


def test_ablation_is_plain_cross_entropy_without_attributions(monkeypatch):
    method, model = _method(unirex_comp_weight=0.0, unirex_suff_weight=0.0)
    monkeypatch.setattr(method, "attribute", lambda *a, **k: pytest.fail("no attribution without comp/suff"))
    batch = make_batch(CORPUS.train, np.arange(5))
    model.train()
    terms = method.losses(model, batch)
    logits, _ = model.classifier(batch.ids, batch.mask, batch.lengths)
    assert float(terms["loss"]) == pytest.approx(float(nn.functional.cross_entropy(logits, batch.labels)), rel=1e-6)


def _gold_corpus() -> Corpus:
    """The toy corpus with its planted rationale also on the training split (what UNIREX's plausibility needs)."""
    base = toy_corpus(n_train=40, n_dev=20, n_test=20)
    index = {w: i for i, w in enumerate(base.words) if i}
    return Corpus("toy-gold", build_split(toy_text(40, 1), index), base.dev, base.test, base.words, base.vectors)


@pytest.mark.parametrize("extractor", ["slm", "dlm"])
def test_learned_extractor_learns_only_from_plausibility(extractor):
    corpus = _gold_corpus()
    method, model = _method(corpus, unirex_extractor=extractor, unirex_plaus_weight=1.0)
    batch = make_batch(corpus.train, np.arange(8))
    model.train()
    terms = method.losses(model, batch)
    head = list(model.extractor.parameters())
    faith = torch.autograd.grad(terms["comp"] + terms["suff"], head, allow_unused=True, retain_graph=True)
    assert all(g is None or float(g.abs().sum()) == 0.0 for g in faith)  # masks are detached
    plaus = torch.autograd.grad(terms["plaus"], head, allow_unused=True, retain_graph=True)
    assert all(g is not None and float(g.abs().sum()) > 0 for g in plaus)
    enc = [p for p in model.classifier.encoder.parameters()]
    shared = torch.autograd.grad(terms["plaus"], enc, allow_unused=True)
    # SLM's head sits on the classifier's encoder, which plausibility therefore trains; DLM's does not touch it
    assert any(g is not None and float(g.abs().sum()) > 0 for g in shared) == (extractor == "slm")


def test_learned_extractors_and_plausibility_need_training_gold():
    with pytest.raises(RatbenchError, match="plausibility"):
        method_class("unirex")(_cfg(unirex_extractor="slm"))
    with pytest.raises(RatbenchError, match="no parameters"):
        method_class("unirex")(_cfg(unirex_plaus_weight=1.0))
    m = method_class("unirex")(_cfg(unirex_extractor="dlm", unirex_plaus_weight=1.0))
    with pytest.raises(RatbenchError, match="gold rationales in the training split"):
        m.prepare(CORPUS, CORPUS.train, {"seed": 1, "dataset": "toy"})
    with pytest.raises(RatbenchError, match="binarise"):
        method_class("unirex")(_cfg(binarise="top0"))


# -- 3. optimiser and schedule ----------------------------------------------------------------------------------------
def test_reference_adamw_has_no_bias_correction():
    lr, (b1, b2), eps, wd = 0.1, (0.9, 0.98), 1e-8, 0.01
    p = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = ReferenceAdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    x, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for g in ([0.5, -0.1], [0.2, 0.3]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        g = np.array(g)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * m / (np.sqrt(v) + eps)
        x = x - lr * wd * x
        np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-12)
    # the first step: lr (1 - b1) / sqrt(1 - b2) ~ 0.707 lr per weight; torch's bias-corrected AdamW moves lr
    q = nn.Parameter(torch.tensor([0.0]))
    q.grad = torch.tensor([3.0])
    ReferenceAdamW([q], lr=1.0, betas=(b1, b2), eps=0.0).step()
    assert float(q) == pytest.approx(-(1 - b1) / math.sqrt(1 - b2), rel=1e-6)
    r = nn.Parameter(torch.tensor([0.0]))
    r.grad = torch.tensor([3.0])
    torch.optim.AdamW([r], lr=1.0, betas=(b1, b2), eps=0.0, weight_decay=0.0).step()
    assert float(r) == pytest.approx(-1.0, rel=1e-6)


def test_linear_warmup_schedule():
    assert [linear_warmup(s, 100, 10) for s in (0, 5, 10, 55, 100, 120)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    method, model = _method(unirex_optimizer="adamw_reference")
    method.total_steps = 20  # 2 warm-up steps
    (opt,) = method.build_optimizers(model)
    assert isinstance(opt, ReferenceAdamW)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        method.schedulers[0].step()
    base = method.config.lr
    assert lrs[:3] == pytest.approx([0.0, 0.5 * base, base]) and lrs[11] == pytest.approx(base * 9 / 18)


# -- 4. the transformer classifier's embedding view ----------------------------------------------------------------
PIECES = ["the", "beer", "is", "good", "bad", "head", "white", "foam"]


def _transformer_batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    lengths = [9, 6]
    ids = torch.zeros(2, 9, dtype=torch.long)
    attention, forced = torch.zeros(2, 9), torch.zeros(2, 9)
    for i, n in enumerate(lengths):
        ids[i, 1 : n - 1] = torch.randint(5, 5 + len(PIECES), (n - 2,), generator=g)
        ids[i, 0], ids[i, n - 1] = 2, 3
        attention[i, :n] = 1
        forced[i, [0, n - 1]] = 1
    return Batch(ids=ids, mask=attention - forced, lengths=torch.tensor(lengths), labels=torch.tensor([0, 1]),
                 gold=None, index=np.arange(2), attention=attention, forced=forced, token_type=torch.zeros_like(ids))


def test_integrated_gradients_through_the_transformer_view_is_complete_to_the_pad_baseline():
    tok = wordpiece_tokenizer(PIECES)
    enc = build_encoder(tiny_config("bert", vocab_size=len(tok), dropout=0.0), tok, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clf = TransformerClassifier(TransformerBackbone(enc), dropout=0.0).eval()
    # a nonzero [PAD] vector, so the baseline really is the PAD row (the local encoder's is zero)
    with torch.no_grad():
        clf.embed.table.weight[0] = torch.randn(clf.embed.dim, generator=torch.Generator().manual_seed(1))
    batch = _transformer_batch()
    view = EmbeddingView(clf)
    ig = make_explainer("integrated_gradients", n_steps=64).attribute(
        view.logits, view.embed(batch), batch.mask, args=view.args(batch), baseline=view.baseline())
    assert float(ig.scores[batch.mask == 0].abs().sum()) == 0.0  # [CLS], [SEP], padding get nothing
    # f(x) - f(x') with x' = [PAD] at the selectable pieces, through the ids (an independent path)
    with torch.no_grad():
        full = clf.full_text(batch)[0]
        padded = Batch(**{**batch.__dict__, "ids": torch.where(batch.mask > 0, 0, batch.ids)})
        base = clf.full_text(padded)[0]
    rows = torch.arange(2)
    gap = full[rows, ig.target] - base[rows, ig.target]
    torch.testing.assert_close(ig.scores.sum(1), gap, rtol=0.02, atol=2e-3)
    assert float(gap.abs().min()) > 1e-3
    # the view's logits are the classifier's
    torch.testing.assert_close(view.logits(view.embed(batch), *view.args(batch)), full, rtol=0, atol=1e-6)


# -- 5. short runs ----------------------------------------------------------------------------------------------------
def test_catalog_entry():
    info = method_info("unirex")
    assert info.kind == "explained-classifier" and info.sparsity == "top-k" and not info.calibrates_alpha
    assert set(info.backbones) == {"gru", "transformer"}


def _run(**params):
    cfg = RunConfig(epochs=3, batch_size=32, lr=5e-3, hidden_size=32, target_sparsity=15.0, faithfulness=True,
                    method_params={"match_sparsity": "target", "unirex_train_bins": [10.0, 20.0], **params})
    method = method_class("unirex")(cfg)
    result = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu")).fit()
    return method, result


def test_short_gru_run_is_faithful_beyond_its_ablation():
    method, full = _run()
    m = full.metrics
    assert m["Acc"] > 75.0 and m["full_text_acc"] == m["Acc"], m  # the classifier's own (full-text) prediction
    assert "classifier_acc" not in m and math.isfinite(m["rationale_acc"])
    assert abs(m["S"] - 15.0) < 1.0, m["S"]
    assert set(full.variants) == {"binarise=positive", "binarise=top1", "binarise=top5", "binarise=top10",
                                  "binarise=top20", "binarise=top50"}
    assert abs(full.variants["binarise=top50"]["S"] - 50.0) < 1.0
    assert method.notes["source"] == "target" and method.notes["extractor"] == "aa"
    _, ablation = _run(unirex_comp_weight=0.0, unirex_suff_weight=0.0)
    assert m["comprehensiveness"] > ablation.metrics["comprehensiveness"] + 0.05, (m, ablation.metrics)


def test_short_transformer_run_finishes(tmp_path):
    overrides = {"backbone": "transformer", "local_mlm_steps": 0, "match_sparsity": "target", "epochs": 1,
                 "train_limit": 96, "test_limit": 40, "faithfulness": True, "num_threads": 1,
                 "unirex_train_bins": [20.0], "unirex_special_tokens": "reference", "unirex_precision": "fp16",
                 "unirex_optimizer": "adamw_reference", "batch_size": 16}
    specs = plan(["unirex"], ["toy"], [1], "smoke", overrides, None, "cpu", tmp_path / "data", tmp_path / "res")
    assert [s.method for s in specs] == ["unirex"]  # matched to the target: no RNP run added
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished"], [o.error for o in outcomes]
    rec = load_record(specs[0].path)
    m = rec.metrics
    assert rec.backbone["backbone"] == "transformer" and abs(m["S"] - 15.0) <= 1.5, m
    for key in ("Acc", "F1", "F1_subword", "rationale_acc", "comprehensiveness", "comp_aopc"):
        assert math.isfinite(m[key]), key
    assert "binarise=positive" in rec.variants
