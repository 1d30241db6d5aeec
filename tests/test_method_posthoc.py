"""Post-hoc baselines (docs/methods.md#post-hoc): top-k at matched sparsity, where S* comes from, LIME's
scores, and short real runs of Attention and LIME through the engine on the toy corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import pairwise_distances

import ratbench.methods.attention  # noqa: F401  (registers "attention")
import ratbench.methods.lime as lime_mod  # registers "lime"
from ratbench import api
from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.engine import Engine
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class
from ratbench.methods.posthoc import normalise_scores
from ratbench.metrics import topk_select
from ratbench.models.backbones import gru_backbone
from ratbench.plan import plan, waves
from ratbench.results.record import load_record
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=600, n_dev=120, n_test=200)




def _cfg(**kw) -> RunConfig:
    base = dict(epochs=3, batch_size=32, lr=5e-3, hidden_size=32, target_sparsity=15.0, faithfulness=True)
    base.update(kw)
    return RunConfig(**base)


# -- 1. top-k selection ---------------------------------------------------------------------------------------
def test_topk_picks_k_real_tokens_breaking_ties_by_position():
    hi = 99.0  # padding carries the highest scores: it must still never be chosen
    scores = torch.tensor([
        [0.1, 0.5, 0.5, 0.2, 0.9, 0.5, 0.0, 0.0, 0.0, 0.0],  # len 10, k = 3: 4, then tied 1 and 2 (not 5)
        [0.2, 0.7, 0.1, hi, hi, hi, hi, hi, hi, hi],  # len 3, k = max(1, round(0.9)) = 1
        [0.0, hi, hi, hi, hi, hi, hi, hi, hi, hi],  # len 1, k = 1
        [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, hi, hi, hi],  # len 7, all tied, k = round(2.1) = 2
        [0.1, 0.2, 0.3, 0.4, 0.5, hi, hi, hi, hi, hi],  # len 5, k = round(1.5) = 2 (half to even)
    ])
    lengths = torch.tensor([10, 3, 1, 7, 5])
    mask = (torch.arange(10)[None, :] < lengths[:, None]).float()
    z = topk_select(scores, mask, 0.3)
    expected = torch.zeros_like(z)
    for row, picks in enumerate([[1, 2, 4], [1], [0], [0, 1], [3, 4]]):
        expected[row, picks] = 1.0
    assert torch.equal(z, expected)
    assert float((z * (1 - mask)).sum()) == 0.0


def test_topk_matches_a_plain_sort_on_random_ties():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 200)
    mask = (np.arange(60)[None, :] < lengths[:, None]).astype(np.float32)
    scores = rng.integers(0, 4, (200, 60)).astype(np.float32)  # many ties
    for s in (0.05, 0.13, 0.5):
        z = topk_select(torch.from_numpy(scores), torch.from_numpy(mask), s).numpy()
        k = np.maximum(np.rint(s * lengths), 1).astype(int)
        assert np.array_equal(z.sum(1), k)
        for row in range(0, 200, 7):  # the reference: highest score first, earlier position on ties
            picks = sorted(range(lengths[row]), key=lambda t: (-scores[row, t], t))[: k[row]]
            assert np.flatnonzero(z[row]).tolist() == sorted(picks)


def test_scores_are_normalised_per_example_and_zero_at_padding():
    scores = torch.tensor([[-2.0, 0.0, 2.0, 50.0], [1.0, 1.0, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    out = normalise_scores(scores, mask)
    assert torch.allclose(out, torch.tensor([[0.0, 0.5, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]]))


# -- 2. matched sparsity ----------------------------------------------------------------------------------------
def _prepared(method="attention", context=None, **params):
    m = method_class(method)(_cfg(method_params=params))
    m.prepare(CORPUS, CORPUS.train, {"seed": 1, "dataset": "toy", **(context or {})})
    return m


def test_matched_sparsity_reads_the_rnp_run_the_planner_found():
    rnp = {"path": "res/runs/toy/rnp/seed1-abcd.json", "metrics": {"S": 22.0, "F1": 50.0}}
    m = _prepared(context={"records": {"rnp": rnp}})
    assert m.sparsity == pytest.approx(0.22)
    assert m.notes == {"matched_sparsity": 22.0, "source": "rnp", "record": "res/runs/toy/rnp/seed1-abcd.json"}
    # a restored run keeps the S* its record holds, whatever records exist now
    restored = _prepared(context={"own_notes": m.notes})
    assert restored.notes == m.notes and restored.sparsity == pytest.approx(0.22)


def test_matched_sparsity_never_falls_back_silently():
    with pytest.raises(RatbenchError, match="Train it first"):
        _prepared()  # match_sparsity=rnp without RNP's record: a clear stop, not the target S
    with pytest.raises(RatbenchError, match="no finite test S"):
        _prepared(context={"records": {"rnp": {"path": "x.json", "metrics": {"S": float("nan")}}}})
    assert _prepared(match_sparsity="target").notes == {"matched_sparsity": 15.0, "source": "target", "record": None}
    gold = _prepared("lime", match_sparsity="gold")
    share = 100.0 * CORPUS.test.gold.sum() / CORPUS.test.lengths.sum()
    assert gold.notes["source"] == "gold" and gold.notes["matched_sparsity"] == pytest.approx(share)
    assert 5.0 < share < 20.0  # the toy test set's planted spans
    with pytest.raises(RatbenchError):
        method_class("attention")(_cfg(method_params={"match_sparsity": "nope"}))


def test_only_the_rnp_match_depends_on_rnp():
    cls = method_class("attention")
    assert cls.dependencies(_cfg()) == ("rnp",)
    assert cls.dependencies(_cfg(method_params={"match_sparsity": "target"})) == ()


# -- 3. LIME ----------------------------------------------------------------------------------------------------
TRUE_EFFECT = torch.tensor([0.1, -0.5, 2.0, 0.05, 1.0, -1.5, 0.3, 0.0])


def _stub_forward(x: torch.Tensor) -> torch.Tensor:
    """P(class 1) = sigmoid(sum of the effects of the kept (non-zero) positions - 0.5)."""
    kept = (x[..., 0] != 0).float()
    p1 = torch.sigmoid(kept @ TRUE_EFFECT - 0.5)
    return torch.stack([1 - p1, p1], -1)


def test_lime_ranks_positions_by_their_true_effect():
    emb = torch.ones(8, 3)
    w1 = lime_mod.lime_weights(_stub_forward, emb, 1, 1000, 25.0, seed=7)
    assert set(w1.topk(2).indices.tolist()) == {2, 4}
    assert int(w1.argmin()) == 5
    ranks = lambda v: v.argsort().argsort().float()  # noqa: E731
    assert torch.corrcoef(torch.stack([ranks(w1), ranks(TRUE_EFFECT)]))[0, 1] > 0.9
    # toward class 0 the surrogate of 1 - p is the negated surrogate
    w0 = lime_mod.lime_weights(_stub_forward, emb, 0, 1000, 25.0, seed=7)
    assert torch.allclose(w0, -w1, atol=1e-4)
    assert torch.equal(w1, lime_mod.lime_weights(_stub_forward, emb, 1, 1000, 25.0, seed=7))
    assert not torch.equal(w1, lime_mod.lime_weights(_stub_forward, emb, 1, 1000, 25.0, seed=8))


def test_lime_sampling_and_kernel_follow_the_lime_package():
    s = lime_mod.lime_samples(10, 4000, torch.Generator().manual_seed(0))
    assert bool((s[0] == 1).all()) and bool((s[1:].sum(1) <= 9).all())
    removed = 10 - s[1:].sum(1)
    assert abs(removed.float().mean().item() - 5.5) < 0.2  # U{1..10}
    assert set(removed.unique().tolist()) == set(range(1, 11))
    # lime: d = 100 * cosine distance of the binary vectors, weight = sqrt(exp(-d^2 / width^2))
    d = 100 * pairwise_distances(s.numpy(), s[:1].numpy(), metric="cosine").ravel()
    expected = np.sqrt(np.exp(-(d**2) / 25.0**2))
    assert np.allclose(lime_mod.lime_kernel(s, 25.0).numpy(), expected, atol=1e-6)


def _lime_method(**params):
    m = method_class("lime")(_cfg(method_params={"num_samples": 100, "match_sparsity": "target", **params}))
    m.prepare(CORPUS, CORPUS.train, {"seed": 3})
    torch.manual_seed(0)
    return m, m.build_model(gru_backbone(CORPUS, m.config)).eval()


def test_lime_rationale_memoised_padding_free_and_batch_independent(monkeypatch):
    method, model = _lime_method()
    calls = []
    real_weights = lime_mod.lime_weights
    monkeypatch.setattr(lime_mod, "lime_weights", lambda *a, **k: calls.append(1) or real_weights(*a, **k))
    a = make_batch(CORPUS.test, np.array([0, 1, 2]))
    b = make_batch(CORPUS.test, np.array([2, 5]))
    with torch.inference_mode():
        z, logits, scores = method.rationale(model, a, None)
        assert len(calls) == 3
        method.rationale(model, a, None)
        assert len(calls) == 3  # memoised
        _, _, scores_b = method.rationale(model, b, None)
    pad = a.mask == 0
    assert bool(pad.any()) and float(z[pad].sum()) == 0.0 and float(scores[pad].abs().sum()) == 0.0
    assert torch.equal(z.sum(1), torch.clamp(torch.round(0.15 * a.mask.sum(1)), min=1))
    n = int(a.mask[2].sum())
    assert torch.allclose(scores[2, :n], scores_b[0, :n], atol=1e-6)  # example 2 alone vs. with others
    # new weights (a training step) invalidate the memo
    opt = method.build_optimizers(model)
    method.train_step(model.train(), make_batch(CORPUS.train, np.arange(8)), opt)
    model.eval()
    assert not method._memo
    with torch.inference_mode():
        method.rationale(model, a, None)
    assert len(calls) == 3 + 2 + 3


# -- 4. short runs through the engine ----------------------------------------------------------------------------
def _check_post_hoc_metrics(m: dict, s_star: float) -> None:
    assert "Acc" not in m and m["classifier_acc"] > 70.0, m
    assert m["rationale_acc"] > 50.0, m
    assert abs(m["S"] - s_star) <= 1.0, (m["S"], s_star)
    assert m["F1"] > m["f1_random"] + 10.0, m
    for key in ("comprehensiveness", "sufficiency", "iou_f1", "auprc"):
        assert math.isfinite(m[key]), key


def test_attention_run_matches_rnp_sparsity_and_beats_random():
    cfg = _cfg()
    method = method_class("attention")(cfg)
    assert method.post_hoc and method.info.runs_after == ("rnp",) and method.explain_every_epoch
    rnp = {"path": "rnp.json", "metrics": {"S": 20.0}}
    engine = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu"),
                    context={"dataset": "toy", "records": {"rnp": rnp}})
    res = engine.fit()
    assert method.notes["matched_sparsity"] == 20.0 and method.notes["source"] == "rnp"
    _check_post_hoc_metrics(res.metrics, 20.0)
    assert all(abs(r["test_S"] - 20.0) <= 1.0 for r in res.curves)  # explained every epoch


def test_lime_run_explains_only_the_selected_epoch(monkeypatch):
    cfg = _cfg(test_limit=60, method_params={"num_samples": 200, "match_sparsity": "target"})
    method = method_class("lime")(cfg)
    assert method.post_hoc and not method.explain_every_epoch
    explained = []
    real_explain = method._explain
    monkeypatch.setattr(method, "_explain", lambda *a: explained.append(1) or real_explain(*a))
    res = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu")).fit()
    assert method.notes["source"] == "target"
    _check_post_hoc_metrics(res.metrics, 15.0)
    assert all(math.isnan(r["test_S"]) for r in res.curves)
    assert len(explained) == 1  # one test batch, explained once for evaluation, faithfulness and spans


def test_the_planner_adds_rnp_and_attention_matches_its_record(tmp_path):
    """`--methods attention` alone: the planner adds RNP's run with the same settings, trains it first, and
    Attention reads that record (its path and realised S are in Attention's record)."""
    specs = plan(["attention"], ["toy"], [1], "smoke", {"hidden_size": 16, "epochs": 2}, None, "cpu",
                 tmp_path / "data", tmp_path / "res")
    assert [w[0].method for w in waves(specs)] == ["rnp", "attention"]
    rnp_spec = next(s for s in specs if s.method == "rnp")
    att_spec = next(s for s in specs if s.method == "attention")
    assert att_spec.dependencies == {"rnp": str(rnp_spec.path)}
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished", "finished"], [o.error for o in outcomes]
    rnp, att = (load_record(s.path) for s in (rnp_spec, att_spec))
    assert att.method_notes == {"matched_sparsity": pytest.approx(rnp.metrics["S"]), "source": "rnp",
                                "record": str(rnp_spec.path)}
    assert abs(att.metrics["S"] - rnp.metrics["S"]) <= 1.0
