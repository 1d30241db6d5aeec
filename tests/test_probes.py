"""Diagnostic probes: their numbers on hand-checkable cases, and `ratbench diagnose` end to end on a toy corpus."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from ratbench import api
from ratbench.cli.app import app
from ratbench.config import RunConfig
from ratbench.data.batching import eval_batches
from ratbench.data.corpus import Split
from ratbench.engine import Engine
from ratbench.methods.catalog import method_class, method_groups
from ratbench.models.backbones import gru_backbone
from ratbench.probes.base import ProbeRun
from ratbench.probes.catalog import probe_class
from ratbench.probes.lipschitz import lipschitz
from ratbench.probes.nonoverlap import length_normalised, non_overlap
from tests.toy import toy_corpus

TOY = toy_corpus(n_train=300, n_dev=100, n_test=100)
SMALL = ["--datasets", "toy", "--seeds", "1", "--profile", "smoke", "--set", "hidden_size=16", "--set", "epochs=2"]


def test_non_overlap_of_known_masks():
    m1 = torch.tensor([[1.0, 1, 0, 0], [0, 1, 1, 0]])
    m2 = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 0]])
    assert non_overlap(m1, m2) == pytest.approx(2 / 8)  # |diff| = 2, sums 4 + 4
    assert non_overlap(m1, m1) == 0.0
    assert non_overlap(torch.zeros(2, 4), torch.zeros(2, 4)) == 0.0
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 1, 1]])
    assert length_normalised(m1, m2, mask) == pytest.approx(2 / 14)


class _LinearPredictor(nn.Module):
    """logit_1 = sum_t w . x_t (logit_0 = 0): at x = 0, p1 = 1/2 and dp1/dx_t = w / 4 at every position."""

    class _ReadsWordVectors(nn.Module):  # what the probe checks before it applies: a GRU-style player
        reads_word_vectors = True

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)
        self.encoder = self._ReadsWordVectors()

    def forward(self, x, keep, batch):
        s = (x * self.w).sum((1, 2))
        return torch.stack([torch.zeros_like(s), s], -1)


class _StubModel(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.predictor = _LinearPredictor(w)

    def embed(self, ids, mask):
        return torch.zeros(*ids.shape, 16)


class _StubMethod:
    def select(self, model, batch, gen):
        z = torch.zeros_like(batch.mask)
        z[:, :2] = 1.0  # the first two tokens of every example
        return z * batch.mask


def test_lipschitz_of_a_linear_predictor_is_known():
    w = torch.arange(16, dtype=torch.float32) - 8.0
    model = _StubModel(w)
    split = TOY.train.subset(torch.arange(40).numpy())
    ours = lipschitz(_StubMethod(), model, split, torch.device("cpu"), batch_size=16)
    expected = 0.25 * float(w.norm())
    assert ours["max"] == pytest.approx(expected, rel=1e-5) and ours["mean"] == pytest.approx(expected, rel=1e-5)
    # the reference: gradient of the batch mean, x1000; batches of 16, 16, 8 -> the short batch is inflated
    ref = lipschitz(_StubMethod(), model, split, torch.device("cpu"), batch_size=16, reference=True)
    assert ref["max"] == pytest.approx(expected * 1000 / 8, rel=1e-5)


def _engine(**kw) -> Engine:
    settings = dict(epochs=2, batch_size=32, lr=5e-3, hidden_size=16, alpha=0.15, target_sparsity=15.0,
                    faithfulness=False)
    cfg = RunConfig(**{**settings, **kw})
    # the probes' hooks are engine callbacks, built from the `probes` setting as `ratbench run` builds them
    return Engine(method_class("rnp")(cfg), TOY, cfg, seed=1, device=torch.device("cpu"),
                  callbacks=api.probe_hooks(cfg))


def test_training_hooks_never_change_a_runs_numbers():
    plain = _engine().fit()
    probed = _engine(probes="nonoverlap,lipschitz").fit()
    assert probed.metrics == plain.metrics
    for a, b in zip(plain.curves, probed.curves):
        for k in ("train_loss", "dev_acc", "test_F1", "test_S"):
            assert a[k] == b[k]
    row = probed.curves[-1]
    assert 0.0 <= row["nonoverlap_floor"] <= 1.0 and row["lipschitz_max"] > 0


def test_without_updates_non_overlap_equals_its_noise_floor():
    engine = _engine(probes="nonoverlap", lr=0.0)
    row = engine.fit().curves[-1]
    assert row["nonoverlap"] == pytest.approx(row["nonoverlap_floor"], abs=0.03)
    assert row["nonoverlap"] > 0.2  # an untrained selector's samples differ a lot


def test_probe_hooks_are_not_part_of_the_config_hash():
    from ratbench.config import config_hash

    cfg = RunConfig()
    assert config_hash(cfg, "rnp", "x") == config_hash(dataclasses.replace(cfg, probes="nonoverlap"), "rnp", "x")


@pytest.fixture
def toy_data(tmp_path, monkeypatch):
    """A fresh data root: the registered `toy` dataset is generated there on first use."""
    root = tmp_path / "data"
    monkeypatch.setenv("RATBENCH_DATA", str(root))
    return root


@pytest.mark.parametrize("probe,methods,extra", [
    ("nonoverlap", "rnp,ver", []),
    ("gold", "rnp", []),
    ("lipschitz", "rnp", []),
    ("sweep", "ver", ["--values", "0,0.3"]),
    ("random-dz", "rnp", ["--set", "predictor_epochs=1"]),
])
def test_diagnose_writes_csv_png_and_prints_a_table(tmp_path, toy_data, probe, methods, extra):
    res = tmp_path / "res"
    args = ["diagnose", "--probe", probe, "--methods", methods, *SMALL, *extra, "--results", str(res)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    folder = res / "diagnose" / probe
    frame = pd.read_csv(folder / f"{probe}.csv")
    summary = pd.read_csv(folder / f"{probe}_summary.csv")
    assert len(frame) and len(summary)
    png = (folder / f"{probe}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # a second diagnose reuses the runs: nothing to train
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "0 to train" in r.output


class _GoldStub(nn.Module):
    """Players known by construction. Each token's vector is (v, c): the selector keeps it iff c = 1 (logits
    +-50, argmax evaluation); the predictor max-pools v * z over the positions of its pooling mask, as the real
    predictor max-pools its states, and returns logits (0, 2m + 1): class 1 iff m > -1/2."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def embed(self, ids, mask):
        return self.table[ids]

    def select_logits(self, emb, batch):
        s = (2 * emb[..., 1] - 1) * 50.0
        return torch.stack([torch.zeros_like(s), s], -1)

    def predict(self, emb, z, batch, pool=None, remove=False):
        mask = batch.attention if pool is None else pool
        m = (emb[..., 0] * z).masked_fill(mask == 0, float("-inf")).max(1).values
        return torch.stack([torch.zeros_like(m), 2 * m + 1], -1)


def test_gold_probe_numbers_by_hand():
    # four test reviews, tokens as (v, selected by the selector, gold):
    reviews = [
        (1, [(2.0, 0, 1), (-1.0, 0, 0), (1.5, 1, 0)]),
        (0, [(-1.0, 0, 1), (1.5, 1, 0), (-3.0, 0, 1), (-1.0, 0, 0)]),
        (0, [(-2.0, 1, 0), (-3.0, 1, 1)]),
        (1, [(-2.0, 0, 0), (-1.0, 1, 0), (-3.0, 0, 1)]),
    ]
    # m = max of v*z over the pooled positions, d = 2m + 1; correct iff (d > 0) == y;
    # CE = softplus(-d) for y = 1, softplus(d) for y = 0.
    # gold (keep g, pool over all real tokens: the zeros of the non-gold tokens are pooled too):
    #   m = 2, 0, 0, 0 -> d = 5, 1, 1, 1 -> right, wrong, wrong, right; CE sp(-5), sp(1), sp(1), sp(-1)
    # gold_pooled (pool over gold positions only):
    #   m = 2, -1, -3, -3 -> d = 5, -1, -5, -5 -> right, right, right, wrong; CE sp(-5), sp(-1), sp(-5), sp(5)
    # own (the selector's z, pool over real tokens):
    #   m = 1.5, 1.5, -2, 0 -> d = 4, 4, -3, 1 -> right, wrong, right, right; CE sp(-4), sp(4), sp(-3), sp(-1)
    # full (every real token):
    #   m = 2, 1.5, -2, -1 -> d = 5, 4, -3, -1 -> right, wrong, right, wrong; CE sp(-5), sp(4), sp(-3), sp(1)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = {
        "gold": (50.0, [sp(-5), sp(1), sp(1), sp(-1)]),
        "gold_pooled": (75.0, [sp(-5), sp(-1), sp(-5), sp(5)]),
        "own": (75.0, [sp(-4), sp(4), sp(-3), sp(-1)]),
        "full": (50.0, [sp(-5), sp(4), sp(-3), sp(1)]),
    }
    rows = [[0.0, 0.0]] + [[v, float(c)] for _, toks in reviews for v, c, _ in toks]
    lengths = [len(toks) for _, toks in reviews]
    test = Split(ids=np.arange(1, len(rows), dtype=np.int64), offsets=np.concatenate([[0], np.cumsum(lengths)]),
                 labels=np.array([y for y, _ in reviews]),
                 gold=np.array([g for _, toks in reviews for _, _, g in toks], dtype=np.uint8))
    method = method_class("rnp")(RunConfig(eval_mode="argmax"))
    model = _GoldStub(torch.tensor(rows))
    record = SimpleNamespace(dataset="toy", method="rnp", seed=1)
    restore = lambda: (method, model, SimpleNamespace(test=test))  # noqa: E731
    frame = probe_class("gold")().compute(None, [ProbeRun(Path("run.json"), record, restore)]).set_index("input")
    assert set(frame.index) == set(expected)
    for name, (acc, ce) in expected.items():
        row = frame.loc[name]
        assert row["acc"] == pytest.approx(acc), name
        assert row["median_ce"] == pytest.approx((sorted(ce)[1] + sorted(ce)[2]) / 2, rel=1e-5), name
        assert row["mean_ce"] == pytest.approx(sum(ce) / 4, rel=1e-5), name
        assert row["n"] == 4
    # a predictor that does not max-pool word vectors has no pooled-over-gold reading
    interrat = method_class("interrat")
    assert not interrat.pools_over_positions


def test_sweep_refuses_methods_without_p_flip(tmp_path, toy_data):
    r = CliRunner().invoke(app, ["diagnose", "--probe", "sweep", "--methods", "rnp", *SMALL, "--results",
                                 str(tmp_path)])
    assert r.exit_code == 1 and "p_flip" in r.output


def test_random_dz_predictor_is_trained_first_then_frozen():
    cfg = RunConfig(epochs=2, batch_size=32, lr=5e-3, hidden_size=16, alpha=0.15, target_sparsity=15.0,
                    faithfulness=False, method_params={"predictor_epochs": 1})
    engine = Engine(method_class("rnp-random-dz")(cfg), TOY, cfg, seed=1, device=torch.device("cpu"))
    initial = [p.detach().clone() for p in engine.model.predictor.parameters()]
    selector_initial = [p.detach().clone() for p in engine.model.selector.parameters()]
    pretrained = {}

    def keep(model, batches, original=engine.method.pretrain):
        original(model, batches)
        pretrained["state"] = [p.detach().clone() for p in model.predictor.parameters()]

    engine.method.pretrain = keep
    engine.fit()
    assert any(not torch.equal(a, b) for a, b in zip(initial, pretrained["state"]))  # phase 1 trained it
    assert all(torch.equal(a, b) for a, b in zip(pretrained["state"], engine.model.predictor.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(selector_initial, engine.model.selector.parameters()))
    assert "rnp-random-dz" not in method_groups()["all"]


def test_random_rationale_keeps_real_tokens_at_the_rate():
    from ratbench.methods.random_dz import random_rationale

    torch.manual_seed(0)
    mask = torch.ones(200, 100)
    mask[:, 80:] = 0
    z = random_rationale(mask, 0.15)
    assert float(z[:, 80:].sum()) == 0.0
    assert float(z[:, :80].mean()) == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize("name,params", [("rnp", {}), ("mgr", {"infer": "average_sample"})])
def test_select_draws_what_rationale_draws(name, params):
    cfg = RunConfig(hidden_size=16, method_params=params)
    method = method_class(name)(cfg)
    torch.manual_seed(0)
    model = method.build_model(gru_backbone(TOY, method.config)).eval()
    batch = eval_batches(TOY.test, 32)[0]
    with torch.no_grad():
        a = method.select(model, batch, torch.Generator().manual_seed(5))
        b = method.rationale(model, batch, torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)
