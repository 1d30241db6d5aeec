"""FRESH (docs/methods.md#fresh): the snippet its predictor reads, highlights taken from the explainer run's
trained model, a short real run that beats chance at the target sparsity, and a run through the grid that reads
the explainer's record and restores from its own checkpoint alone."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ratbench import api
from ratbench.config import RunConfig, to_dict
from ratbench.data.batching import Batch, eval_batches, make_batch, padded_view
from ratbench.engine import Engine, limit_split
from ratbench.engine.evaluation import eval_generator, evaluate
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class, method_info
from ratbench.methods.fresh import extracted
from ratbench.plan import plan, waves
from ratbench.results.record import load_record
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=300, n_dev=80, n_test=120)
CPU = torch.device("cpu")



def _cfg(**kw) -> RunConfig:
    base = dict(epochs=3, batch_size=32, lr=5e-3, hidden_size=16, target_sparsity=15.0, faithfulness=False)
    return RunConfig(**{**base, **kw})


# -- the snippet ----------------------------------------------------------------------------------------------------
def test_extracted_keeps_the_kept_tokens_in_order_from_position_zero():
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 11, 0, 0]])
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    gold = torch.tensor([[0.0, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    batch = Batch(ids=ids, mask=mask, lengths=torch.tensor([4, 3]), labels=torch.tensor([1, 0]), gold=gold,
                  index=np.array([0, 1]))
    keep = torch.tensor([[0.0, 1, 0, 1, 1], [1, 0, 1, 0, 0]])  # padding kept by mistake is never read
    snip = extracted(batch, keep)
    assert snip.ids.tolist() == [[6, 8], [9, 11]] and snip.mask.tolist() == [[1, 1], [1, 1]]
    assert snip.lengths.tolist() == [2, 2] and snip.gold.tolist() == [[1, 0], [1, 0]]
    assert torch.equal(snip.attention, snip.mask) and snip.forced is None
    # transformer pieces: [CLS] a b c [SEP] / [CLS] d [SEP]; the specials always stay, in place
    tids = torch.tensor([[2, 5, 6, 7, 3], [2, 9, 3, 0, 0]])
    attention = torch.tensor([[1.0, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    forced = torch.tensor([[1.0, 0, 0, 0, 1], [1, 0, 1, 0, 0]])
    tb = Batch(ids=tids, mask=attention - forced, lengths=torch.tensor([5, 3]), labels=torch.tensor([1, 0]),
               gold=None, index=np.array([0, 1]), attention=attention, forced=forced,
               token_type=torch.tensor([[0, 0, 0, 0, 0], [0, 1, 1, 0, 0]]))
    snip = extracted(tb, torch.tensor([[0.0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    assert snip.ids.tolist() == [[2, 6, 3], [2, 3, 0]]
    assert snip.attention.tolist() == [[1, 1, 1], [1, 1, 0]] and snip.forced.tolist() == [[1, 0, 1], [1, 1, 0]]
    assert snip.mask.tolist() == [[0, 1, 0], [0, 0, 0]] and snip.token_type.tolist() == [[0, 0, 0], [0, 1, 0]]
    assert snip.lengths.tolist() == [3, 2]


# -- a real run on the toy corpus ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """Attention at S* = target (15 %), then FRESH on its highlights, both through the engine."""
    cfg = _cfg(method_params={"match_sparsity": "target"})
    att = method_class("attention")(cfg)
    att_engine = Engine(att, CORPUS, cfg, seed=1, device=CPU)
    att_result = att_engine.fit()
    att_engine.model.eval()
    record = SimpleNamespace(config=to_dict(cfg), method_notes=dict(att.notes), final_alpha=att_result.final_alpha,
                             metrics=att_result.metrics)
    dep = {"path": "runs/toy/attention/seed1-x.json", "metrics": att_result.metrics,
           "restore": lambda: SimpleNamespace(method=att, model=att_engine.model, record=record)}
    fresh = method_class("fresh")(_cfg())
    engine = Engine(fresh, CORPUS, fresh.config, seed=1, device=CPU,
                    context={"dataset": "toy", "records": {"attention": dep}})
    explainer_before = {k: v.clone() for k, v in engine.model.explainer.state_dict().items()}
    predictor_before = [p.detach().clone() for p in engine.model.predictor.parameters()]
    result = engine.fit()
    return SimpleNamespace(att=att, att_engine=att_engine, att_result=att_result, fresh=fresh, engine=engine,
                           result=result, explainer_before=explainer_before, predictor_before=predictor_before)


def test_training_highlights_are_the_trained_explainers_top_k(trained):
    fresh, engine, att, att_model = trained.fresh, trained.engine, trained.att, trained.att_engine.model
    n_agree, n_sel = 0, 0
    with torch.inference_mode():
        for start in range(0, len(engine.train), 64):
            batch = make_batch(engine.train, np.arange(start, min(start + 64, len(engine.train))))
            z_att = att.rationale(att_model, batch, None)[0]  # Attention's own rationale at S* = 15 %
            h, _ = padded_view(engine.train, batch.index, fresh._train_highlights, batch.ids.shape[1])
            h = torch.from_numpy(h)
            assert torch.equal(h, z_att), start
            n_agree += int((h * z_att).sum())
            n_sel += int(h.sum())
    assert n_sel == n_agree and 0.12 < n_sel / engine.train.lengths.sum() < 0.18
    # the explainer stays frozen; only the predictor learns
    after = engine.model.explainer.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in trained.explainer_before.items())
    assert any(not torch.equal(a, b) for a, b in zip(trained.predictor_before, engine.model.predictor.parameters()))
    assert all(not p.requires_grad for p in engine.model.explainer.parameters())


def test_fresh_run_beats_chance_at_the_target_sparsity_on_the_explainers_highlights(trained):
    m, att = trained.result.metrics, trained.att_result.metrics
    assert abs(m["S"] - 15.0) <= 1.0, m["S"]
    assert m["Acc"] > 80.0, m  # balanced toy test set: chance is 50
    assert m["F1"] == pytest.approx(att["F1"])  # the very highlights Attention selects at the same S
    assert trained.fresh.notes["explainer"] == "attention" and trained.fresh.notes["highlight_sparsity"] == 15.0
    assert trained.fresh.notes["explainer_acc"] == att["classifier_acc"]
    info = method_info("fresh")
    assert info.kind == "rationalizer" and info.sparsity == "top-k" and not info.calibrates_alpha
    assert "Acc" in m and "classifier_acc" not in m  # its accuracy is the predictor's on the highlight


def test_the_extract_predictor_reads_nothing_but_the_snippet(trained):
    fresh, model = trained.fresh, trained.engine.model.eval()
    batch = make_batch(trained.engine.test, np.arange(6))
    keep = trained.fresh.highlight(model, batch, None)[0]
    noisy = make_batch(trained.engine.test, np.arange(6))
    # every token outside the highlight replaced by another word: the prediction cannot move
    noisy.ids = torch.where(keep > 0, batch.ids, (batch.ids + 3) % (len(CORPUS.words) - 1) + 1) * batch.mask.long()
    with torch.inference_mode():
        a = fresh._predict(model, batch, keep, remove=False)
        b = fresh._predict(model, noisy, keep, remove=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # mask mode reads blanked positions, so the text's length still reaches the predictor
    masked = method_class("fresh")(_cfg(method_params={"predictor_input": "mask"}))
    longer = make_batch(trained.engine.test, np.arange(6))
    pad = torch.zeros(6, 5, dtype=torch.long)
    longer = Batch(ids=torch.cat([batch.ids, pad], 1), mask=torch.cat([batch.mask, torch.ones(6, 5)], 1),
                   lengths=batch.lengths + 5, labels=batch.labels, gold=None, index=batch.index)
    wide_keep = torch.cat([keep, torch.zeros(6, 5)], 1)
    with torch.inference_mode():
        same = fresh._predict(model, longer, wide_keep, remove=False)
        differs = masked._predict(model, longer, wide_keep, remove=False)
        short = masked._predict(model, batch, keep, remove=False)
    torch.testing.assert_close(same, a, rtol=0, atol=1e-6)
    assert not torch.allclose(differs, short, atol=1e-4)


def test_missing_or_mismatched_explainer_runs_are_clear_errors(trained):
    with pytest.raises(RatbenchError, match="Train it first"):
        Engine(method_class("fresh")(_cfg()), CORPUS, _cfg(), seed=1, device=CPU, context={"dataset": "toy"})
    dep = {"path": "x.json", "metrics": {}, "restore": lambda: SimpleNamespace(
        method=trained.att, model=trained.att_engine.model,
        record=SimpleNamespace(config=to_dict(_cfg(max_len=64)), method_notes={}, final_alpha=0.1, metrics={}))}
    with pytest.raises(RatbenchError, match="max_len"):
        Engine(method_class("fresh")(_cfg()), CORPUS, _cfg(), seed=1, device=CPU,
               context={"dataset": "toy", "records": {"attention": dep}})
    with pytest.raises(RatbenchError, match="another method"):
        method_class("fresh")(_cfg(method_params={"explainer": "fresh"}))
    with pytest.raises(RatbenchError, match="predictor_input"):
        method_class("fresh")(_cfg(method_params={"predictor_input": "both"}))
    cls = method_class("fresh")
    assert cls.dependencies(_cfg()) == ("attention",)
    assert cls.dependencies(_cfg(method_params={"explainer": "lime"})) == ("lime",)


# -- through the grid ------------------------------------------------------------------------------------------------
def test_grid_run_reads_the_explainer_record_and_restores_alone(tmp_path):
    overrides = {"match_sparsity": "target", "hidden_size": 16, "epochs": 2}
    specs = plan(["attention", "fresh"], ["toy"], [1], "smoke", overrides, None, "cpu", tmp_path / "data",
                 tmp_path / "res")
    assert [w[0].method for w in waves(specs)] == ["attention", "fresh"]
    att_spec, fresh_spec = (next(s for s in specs if s.method == m) for m in ("attention", "fresh"))
    assert fresh_spec.dependencies == {"attention": str(att_spec.path)}
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished", "finished"], [o.error for o in outcomes]
    rec = load_record(fresh_spec.path)
    assert rec.method_notes["record"] == str(att_spec.path)
    assert abs(rec.metrics["S"] - 15.0) <= 1.0 and rec.metrics["F1"] == pytest.approx(
        load_record(att_spec.path).metrics["F1"])
    # the restored run rebuilds its explainer from its own record and checkpoint: same test numbers
    restored = api.restore(fresh_spec.path, tmp_path / "data")
    cfg = restored.method.config
    test = eval_batches(limit_split(restored.corpus.test, cfg.test_limit), 256)
    again = evaluate(restored.method, restored.model, test, True, eval_generator(CPU, cfg.eval_seed))
    for key in ("S", "Acc", "F1"):
        assert math.isclose(again[key], rec.metrics[key], abs_tol=1e-9), key
