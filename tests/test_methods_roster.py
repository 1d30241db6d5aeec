"""What makes each roster method different from RNP, checked on tiny cases, plus a smoke run of each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.data.corpus import Split
from ratbench.engine import Engine
from ratbench.methods.a2i import instruction_loss
from ratbench.methods.a2r import js_divergence
from ratbench.methods.catalog import method_class
from ratbench.methods.dr import predictor_lr
from ratbench.methods.nir import tfidf_noise
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=800)
CFG = dict(epochs=4, batch_size=32, lr=5e-3, hidden_size=32, alpha=0.15, target_sparsity=15.0, faithfulness=False)


def _method(name: str, **params):
    cfg = RunConfig(**CFG, method_params=params)
    return method_class(name)(cfg), cfg


def _engine(name: str, **params) -> Engine:
    method, cfg = _method(name, **params)
    return Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu"))


def _batch(engine: Engine, n: int = 8):
    return make_batch(engine.train, np.arange(n))


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


# -- NIR ------------------------------------------------------------------------------------------------
def test_nir_tfidf_statistics_by_hand():
    # docs: [1 1 2], [2 3]; vocab 4. df: w1=1, w2=2, w3=1 -> idf log2, 0, log2
    split = Split(np.array([1, 1, 2, 2, 3]), np.array([0, 3, 5]), np.array([0, 1]))
    noise = tfidf_noise(split, 4, rate=0.1)
    # l2 = ln 2. doc 0: r = (2/3 l2, 2/3 l2, 0); max - r = (0, 0, 2/3 l2); r_hat = (0, 0, 3); q = (0, 0, 0.3)
    # doc 1: r = (0, 1/2 l2); r_hat = (2, 0); q = (0.2, 0)
    np.testing.assert_allclose(noise.replace_prob, [0, 0, 0.3, 0.2, 0], atol=1e-6)
    # atf: w1 2/3, w2 1/3 + 1/2, w3 1/2; v = atf*idf = (2/3 l2, 0, 1/2 l2); P ∝ max v - v = (0, 2/3 l2, 1/6 l2)
    np.testing.assert_allclose(noise.noise_dist, [0, 0, 0.8, 0.2], atol=1e-9)


def test_nir_replaces_only_selected_real_tokens_and_only_in_training():
    engine = _engine("nir", noise_rate=50.0)
    method, batch = engine.method, _batch(engine)
    z = (torch.rand(batch.ids.shape, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    noisy = method.noisy_ids(z, batch)
    changed = noisy != batch.ids
    assert changed.any()
    assert not (changed & ((z * batch.mask) == 0)).any()  # never outside the selected real tokens
    # evaluation reads the clean text: the rationale's predictor logits do not depend on the noise draws
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    engine.model.eval()
    with torch.no_grad():
        a = method.rationale(engine.model, batch, gen())[1]
        torch.manual_seed(123)
        b = method.rationale(engine.model, batch, gen())[1]
    assert torch.equal(a, b)


# -- DR ---------------------------------------------------------------------------------------------------
def test_dr_predictor_learning_rate_follows_the_rationale_ratio():
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    z = torch.tensor([[1.0, 1, 0, 0, 1], [1, 0, 0, 0, 0]])  # padding selected in row 0 does not count
    assert predictor_lr(1e-3, z, mask, 0.05) == pytest.approx(1e-3 * 3 / 9)
    assert predictor_lr(1e-3, z * 0, mask, 0.05) == pytest.approx(1e-3)  # nothing selected: eta_G
    sparse = torch.zeros_like(mask)
    sparse[1, 0] = 1
    assert predictor_lr(1e-3, sparse, mask, 0.2) == pytest.approx(1e-3 * 0.2)  # the floor
    engine = _engine("dr")
    batch = _batch(engine, 32)
    engine.method.train_step(engine.model, batch, engine.optimizers)
    lrs = {g["name"]: g["lr"] for g in engine.optimizers[0].param_groups}
    assert lrs["selector"] == CFG["lr"]
    assert 0.05 * CFG["lr"] <= lrs["predictor"] < CFG["lr"]


# -- 3PLAYER ----------------------------------------------------------------------------------------------
def test_3player_complement_sees_exactly_the_unselected_real_tokens():
    engine = _engine("3player")
    model, batch = engine.model, _batch(engine)
    seen = {}
    def capture(module, inputs, output) -> None:
        seen["x"] = inputs[0]

    handle = model.complement.encoder.gru.register_forward_hook(capture)  # the BiGRU reads the masked input
    emb = model.embed(batch.ids, batch.mask)
    z = (torch.rand(batch.ids.shape, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    model.predict_complement(emb, z, batch)
    handle.remove()
    keep = (1 - z) * batch.mask
    torch.testing.assert_close(seen["x"], emb * keep.unsqueeze(-1))
    assert (seen["x"][(z == 1) | (batch.mask == 0)] == 0).all()


def test_3player_complement_is_updated_only_by_its_own_loss():
    engine = _engine("3player")
    main, comp = engine.optimizers
    comp_ids = {id(p) for p in engine.model.complement.parameters()}
    assert not comp_ids & {id(p) for g in main.param_groups for p in g["params"]}
    assert comp_ids == {id(p) for g in comp.param_groups for p in g["params"]}
    before_sel = _params(engine.model.selector)
    engine.method.train_step(engine.model, _batch(engine, 32), engine.optimizers)
    assert _changed(before_sel, engine.model.selector)
    assert all(p.requires_grad for p in engine.model.complement.parameters())  # unfrozen again


# -- A2R ----------------------------------------------------------------------------------------------------
def test_a2r_js_divergence_by_hand_and_soft_head_trained():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert float(js_divergence(p, q)) == pytest.approx(math.log(2) / 2, abs=1e-6)  # mean of ln2 and 0
    engine = _engine("a2r")
    in_opt = {id(p) for g in engine.optimizers[0].param_groups for p in g["params"]}
    assert {id(p) for p in engine.model.soft_head.parameters()} <= in_opt
    before = _params(engine.model.soft_head)
    engine.method.train_step(engine.model, _batch(engine, 32), engine.optimizers)
    assert _changed(before, engine.model.soft_head)


# -- A2I ----------------------------------------------------------------------------------------------------
def test_a2i_instruction_hinge_stops_at_chance():
    flipped = torch.tensor([1, 1])
    fooled = torch.tensor([[0.0, 4.0], [0.0, 4.0]], requires_grad=True)  # confident in the flipped label
    loss = instruction_loss(fooled, flipped, hinge=True)
    loss.backward()
    assert fooled.grad.abs().sum() > 0  # still pushed away from the flipped label
    safe = torch.tensor([[4.0, 0.0], [4.0, 0.0]], requires_grad=True)  # CE above ln 2
    loss = instruction_loss(safe, flipped, hinge=True)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-math.log(2))
    assert safe.grad.abs().sum() == 0  # past chance: nothing more to gain
    uniform = instruction_loss(torch.zeros(2, 2), flipped, hinge=False)
    assert float(uniform) == pytest.approx(math.log(2))


def test_a2i_attacker_and_players_update_in_separate_steps():
    engine = _engine("a2i")
    main, attacker_opt = engine.optimizers
    att_ids = {id(p) for p in engine.model.attacker.parameters()}
    assert not att_ids & {id(p) for g in main.param_groups for p in g["params"]}
    before = {n: _params(getattr(engine.model, n)) for n in ("selector", "predictor", "attacker")}
    engine.method.train_step(engine.model, _batch(engine, 32), engine.optimizers)
    for name, params in before.items():
        assert _changed(params, getattr(engine.model, name)), name
    off = _engine("a2i", open_epoch=1)  # before open_epoch the attacker does not train
    before = _params(off.model.attacker)
    off.method.train_step(off.model, _batch(off, 32), off.optimizers)
    assert not _changed(before, off.model.attacker)


# -- FR, MGR ------------------------------------------------------------------------------------------------
def test_fr_shares_encoder_and_layernorm():
    engine = _engine("fr")
    m = engine.model
    assert m.predictor.encoder is m.selector.encoder and m.predictor.norm is m.selector.norm
    in_opt = [p for g in engine.optimizers[0].param_groups for p in g["params"]]
    assert len(in_opt) == len({id(p) for p in in_opt}) == len([p for p in m.parameters() if p.requires_grad])


def test_mgr_generators_are_registered_with_their_learning_rates():
    engine = _engine("mgr", n_generators=3)
    m = engine.model
    keys = m.state_dict().keys()
    for i in range(3):
        assert any(k.startswith(f"generators.{i}.") for k in keys)
    lrs = {g["name"]: g["lr"] for g in engine.optimizers[0].param_groups}
    assert lrs == pytest.approx({"generator1": CFG["lr"], "generator2": 2 * CFG["lr"], "generator3": 3 * CFG["lr"],
                                 "predictor": CFG["lr"] / 3})
    m.eval()
    assert all(not g.training for g in m.generators)
    before = [_params(g) for g in m.generators]
    m.train()
    engine.method.train_step(m, _batch(engine, 32), engine.optimizers)
    assert all(_changed(b, g) for b, g in zip(before, m.generators))
    # the paper's inference rule reads the first generator only
    batch = _batch(engine)
    m.eval()
    with torch.no_grad():
        z = engine.method.rationale(m, batch, torch.Generator().manual_seed(0))[0]
        emb = m.embed(batch.ids, batch.mask)
        from ratbench.models.gumbel import sample_st

        ref = sample_st(m.generators[0](emb, batch), 1.0, torch.Generator().manual_seed(0))[0]
    assert torch.equal(z, ref)


# -- every roster method trains for real --------------------------------------------------------------------
# DR's predictor learns at ~15 % of the base rate by design, so it gets more epochs
@pytest.mark.parametrize("name,epochs", [("nir", 4), ("a2i", 4), ("3player", 4), ("a2r", 4), ("fr", 4), ("dr", 8),
                                         ("mgr", 4)])
def test_smoke_run_learns_and_moves_toward_the_target(name, epochs):
    method, cfg = _method(name)
    cfg.epochs = epochs
    engine = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu"))
    result = engine.fit()
    m = result.metrics
    assert m["Acc"] > 70.0, m  # chance is 50 %
    assert abs(m["S"] - 15.0) < 10.0, m
