"""Inter_RAT (docs/methods.md#interrat): per-example regularisers, selected-count pooling, lr schedule, priors,
training with the shipped defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ratbench.methods.interrat  # noqa: F401  (registers "interrat"; not in ratbench.methods._MODULES yet)
from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.engine import Engine
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class
from ratbench.methods.interrat import InterRAT, InterRATModel, per_example_continuity, per_example_sparsity
from ratbench.models.backbones import gru_backbone
from tests.toy import toy_corpus

CORPUS = toy_corpus(n_train=800)



def _method(**params) -> InterRAT:
    return InterRAT(RunConfig(lr=1e-3, hidden_size=8, method_params=params))


# -- 1. per-example sparsity and continuity --------------------------------------------------------------
def test_per_example_terms_by_hand_and_padding_never_counts():
    # example A: 5 real tokens, z = 1 1 0 1 0; example B: 3 real tokens, z = 0 1 0. Padding is set to 1 so any
    # term that read it would change.
    z = torch.tensor([[1, 1, 0, 1, 0, 1, 1], [0, 1, 0, 1, 1, 1, 1]], dtype=torch.float32)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]], dtype=torch.float32)
    # sparsity: A 3/5 -> |0.6 - 0.2| = 0.4; B 1/3 -> |1/3 - 0.2| = 2/15; mean = 4/15 (pooled would be |4/8 - 0.2|)
    assert float(per_example_sparsity(z, mask, 0.2)) == pytest.approx(4 / 15)
    # continuity: A switches 3 times over 4 pairs, B 2 times over 2 pairs; mean = (0.75 + 1.0) / 2
    assert float(per_example_continuity(z, mask)) == pytest.approx(0.875)
    m = _method(lambda_s=0.5, lambda_c=0.25)
    m.alpha = 0.2
    assert float(m.regulariser(z, mask)) == pytest.approx(0.5 * 4 / 15 + 0.25 * 0.875)
    # a one-token review has no pair: it contributes 0, not a division by zero
    one = torch.tensor([[1.0, 0.0]])
    assert float(per_example_continuity(one, torch.tensor([[1.0, 0.0]]))) == 0.0


# -- 2. predictor pooling ----------------------------------------------------------------------------------
class OffsetGRU(nn.Module):
    """Stand-in encoder h_t = x_t + 1: unselected real tokens still carry a (known) state, as in a real GRU."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def test_pooling_sums_real_states_and_divides_by_selected_count():
    vectors = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4]], dtype=torch.float32)
    model = InterRATModel(vectors, hidden=4, dropout=0.0, gru_mode="masked", priors=(0.5, 0.5)).eval()
    model.predictor.gru = OffsetGRU()
    ids = torch.tensor([[1, 2, 3, 4], [2, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.float32)
    lengths = torch.tensor([4, 2])
    z = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.float32)  # B selects nothing real
    r = model.pooled(model.embed(ids, mask), z, mask, lengths)
    # A: states (e1 + 1) + (0 + 1) + (e3 + 1) + (0 + 1) = e1 + e3 + 4, over 2 selected tokens (not 4 real ones)
    assert torch.allclose(r[0], torch.tensor([1.0 + 4, 4, 3 + 4, 4]) / 2.0)
    # B: two real unselected states of ones, padding excluded, divided by max(1, 0) = 1
    assert torch.allclose(r[1], torch.tensor([2.0, 2, 2, 2]))

    # with the real GRU: r equals the manual sum of its outputs over real positions / selected count
    torch.manual_seed(0)
    model = InterRATModel(vectors, hidden=4, dropout=0.0, gru_mode="masked", priors=(0.5, 0.5)).eval()
    emb = model.embed(ids, mask)
    h = model.predictor.gru(emb * (z * mask).unsqueeze(-1), lengths)
    manual = torch.stack([h[0, :4].sum(0) / 2.0, h[1, :2].sum(0) / 1.0])
    assert torch.allclose(model.pooled(emb, z, mask, lengths), manual, atol=1e-6)


def test_confounder_mixture_is_prior_weighted_attention_over_class_embeddings():
    model = InterRATModel(torch.zeros(3, 2), hidden=2, dropout=0.0, gru_mode="masked", priors=(0.05, 0.95))
    with torch.no_grad():
        model.confounder.classes.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    r = torch.tensor([[0.0, 1.0]])  # scores r C^T = (0, 2) -> A = softmax(0, 2)
    a = torch.tensor([0.0, 2.0]).softmax(0)
    expected = torch.tensor([0.05 * a[0] * 1.0, 0.95 * a[1] * 2.0])
    assert torch.allclose(model.confounder.pooled_mixture(r)[0], expected)


# -- 3. learning-rate schedule -----------------------------------------------------------------------------
def test_lr_decays_per_epoch_down_to_the_floor():
    m = _method()
    model = m.build_model(gru_backbone(CORPUS, m.config))
    [opt] = m.build_optimizers(model)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable and len(opt.param_groups) == 1
    assert not any(p is model.embed.embedding.weight for p in opt.param_groups[0]["params"])
    for k in range(1, 121):  # 1e-3 * 0.97^k crosses 5e-5 near k = 98
        m.on_epoch_end(k, [opt])
        assert opt.param_groups[0]["lr"] == pytest.approx(max(5e-5, 1e-3 * 0.97**k), rel=1e-9), k
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    custom = _method(lr_decay=0.5, lr_floor=1e-4)
    [opt] = custom.build_optimizers(custom.build_model(gru_backbone(CORPUS, custom.config)))
    for _ in range(3):
        custom.on_epoch_end(1, [opt])
    assert opt.param_groups[0]["lr"] == pytest.approx(max(1e-4, 1e-3 * 0.5**3))


# -- 4. priors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dataset", "text", "expected"),
    [
        ("beer-appearance", "auto", (0.05, 0.95)),
        ("synth-aroma", "auto", (0.05, 0.95)),
        ("hotel-location", "auto", (0.5, 0.5)),
        ("beer-aroma", "0.5,0.5", (0.5, 0.5)),
        ("hotel-service", " 0.2, 0.8", (0.2, 0.8)),
    ],
)
def test_priors_per_dataset_and_override(dataset, text, expected):
    m = _method(priors=text)
    m.prepare(CORPUS, CORPUS.train, {"dataset": dataset, "seed": 1})
    assert m.priors == pytest.approx(expected)
    assert m.notes["priors"] == pytest.approx(list(expected))
    model = m.build_model(gru_backbone(CORPUS, m.config))
    assert model.confounder.priors.tolist() == pytest.approx(list(expected))


@pytest.mark.parametrize("text", ["0.5", "a,b", "-0.1,1.1", "0.3,0.3,0.4", "0,0"])
def test_malformed_priors_are_a_user_error(text):
    with pytest.raises(RatbenchError, match="priors"):  # at construction, before any data is loaded
        _method(priors=text)


# -- 5. a short real training run --------------------------------------------------------------------------
def test_short_training_with_the_shipped_defaults_beats_chance_and_reaches_the_target_sparsity():
    # The shipped method defaults (lambda_s 0.05, lambda_c 0.01, lr x0.97 per epoch) at the reference start lr
    # 1e-3 and the paper profile's start alpha 0.2, on the toy corpus, seed 1. Measured with these settings over
    # seeds 1-8 (6 epochs): selected-epoch test Acc 84.0-91.0 %, test S 10.9-17.9 % (|S - 15| <= 4.1), and every
    # seed had an epoch inside the +-3 selection window, so selection never fell back. S starts near 50 % and
    # falls ~30 points in 6 epochs while the calibrator holds alpha at its 0.005 floor. Hence 75 % and +-5.
    # Without the regulariser (lambda_s = lambda_c = 0) S falls too (the predictor's pooling divides by the
    # selected count), but less reliably: selected S 15.2-41.1 % over the same seeds, 4 of 8 falling back. Seed 1
    # is one of those landing in the window anyway (16.4 %), so this run alone does not prove the regulariser
    # pulls; test_training_loss_is_ce_plus_the_per_example_regulariser checks that it is in the loss.
    cfg = RunConfig(epochs=6, batch_size=32, lr=1e-3, hidden_size=16, alpha=0.2, target_sparsity=15.0,
                    faithfulness=True)
    method = method_class("interrat")(cfg)
    assert method.params == InterRAT.defaults  # nothing overridden
    engine = Engine(method, CORPUS, cfg, seed=1, device=torch.device("cpu"))
    res = engine.fit()
    m = res.metrics
    assert m["Acc"] > 75.0, m  # chance is 50 %
    assert res.selection == "dev_acc_matched_s", res.selection  # an epoch inside the window, no fallback
    assert abs(m["S"] - 15.0) < 5.0, m
    dev_s = [r["dev_S"] for r in res.curves]
    assert dev_s[-1] < dev_s[0] - 20.0, dev_s  # it got there by falling from ~50 %
    assert res.curves[-1]["train_loss"] < res.curves[0]["train_loss"]
    # the schedule ran: six decays of 0.97 from 1e-3
    assert engine.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.97**6, rel=1e-9)
    assert method.notes["priors"] == [0.5, 0.5]  # toy corpus: not beer-like
    for key in ("comprehensiveness", "sufficiency", "comp_aopc", "suff_aopc", "iou_f1", "auprc"):
        assert np.isfinite(m[key]), key
    # evaluation contract: z only on real tokens; predict_with takes any keep mask, even an empty one
    batch = make_batch(engine.test, np.arange(16))
    engine.model.eval()
    with torch.no_grad():
        z, logits, soft = method.rationale(engine.model, batch, torch.Generator().manual_seed(0))
        assert float((z * (1 - batch.mask)).abs().sum()) == 0.0 and logits.shape == (16, 2)
        assert bool(((soft >= 0) & (soft <= 1)).all())
        for keep in (torch.zeros_like(batch.mask), torch.rand(batch.mask.shape).round()):
            assert torch.isfinite(method.predict_with(engine.model, batch, keep)).all()


class _SpyInterRAT(InterRAT):
    def regulariser(self, z, mask):
        value = super().regulariser(z, mask)
        self.seen = (z.detach().clone(), float(value.detach()))
        return value


def test_training_loss_is_ce_plus_the_per_example_regulariser():
    # one real step: the loss is CE (no cls_weight) + the regulariser of the selection masked to real tokens,
    # recomputed here per review with numpy at the calibrated alpha
    cfg = RunConfig(lr=1e-3, hidden_size=8, cls_weight=0.9, lambda_sparsity=11.0, alpha=0.2)
    method = _SpyInterRAT(cfg)
    method.alpha = 0.3  # as calibration would have moved it
    torch.manual_seed(0)
    model = method.build_model(gru_backbone(CORPUS, method.config))
    batch = make_batch(CORPUS.train, np.arange(12))
    stats = method.train_step(model, batch, method.build_optimizers(model))
    z, value = method.seen
    mask = batch.mask.numpy()
    zn = z.numpy()
    assert not (zn * (1 - mask)).any()  # padding never selected
    sparsity, continuity = [], []
    for row, m in zip(zn, mask):
        n = int(m.sum())
        sparsity.append(abs(row[:n].sum() / n - 0.3))
        continuity.append(np.abs(np.diff(row[:n])).sum() / max(n - 1, 1))
    expected = 0.05 * np.mean(sparsity) + 0.01 * np.mean(continuity)
    assert value == pytest.approx(expected, rel=1e-5)
    assert stats["loss"] == pytest.approx(stats["cls_loss"] + expected, rel=1e-5)
