"""CR (docs/methods.md#cr): the Bernoulli KL, the necessity (PNS) term in both variants, the log-mask attention
bias (z = 0 drops a key, z = 0.5 halves its weight, in every layer), top-k evaluation at the target sparsity,
the settings and the `paper` profile, and a short training run on the toy corpus.

Models are tiny random BERTs built locally; expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.config import RunConfig, resolve
from ratbench.data.batching import Batch
from ratbench.engine.evaluation import evaluate
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import check_backbone, method_class, method_info
from ratbench.methods.cr import CR, CausalRationalizer, kl_to_prior, log_mask_bias, necessity_sites, pns_from_probs
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer

PIECES = ["good", "bad", "beer", "head", "foam", "dark", "nice", "taste", "sweet", "bitter"]
CLS, SEP = 2, 3  # wordpiece_tokenizer puts the specials first: [PAD] [UNK] [CLS] [SEP] [MASK]



def make_batch(rows: list[list[str]], labels: list[int] | None = None) -> Batch:
    """Rows written as position kinds: "c"/"s" [CLS]/[SEP] (forced), a digit = a selectable piece (its id is
    5 + the digit), "." padding."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask, forced, attention = (torch.zeros(len(rows), width) for _ in range(3))
    for i, row in enumerate(rows):
        for t, kind in enumerate(row):
            if kind == ".":
                continue
            attention[i, t] = 1
            if kind in "cs":
                ids[i, t] = CLS if kind == "c" else SEP
                forced[i, t] = 1
            else:
                ids[i, t] = 5 + int(kind)
                mask[i, t] = 1
    return Batch(ids=ids, mask=mask, lengths=attention.sum(1).long(), labels=torch.tensor(labels or [1] * len(rows)),
                 gold=None, index=np.arange(len(rows)), attention=attention, forced=forced,
                 token_type=torch.zeros_like(ids))


@pytest.fixture(scope="module")
def model() -> CausalRationalizer:
    tok = wordpiece_tokenizer(PIECES)
    enc = build_encoder(tiny_config(vocab_size=len(tok), dropout=0.0), tok, seed=0, attn_implementation="eager")
    torch.manual_seed(0)
    return CausalRationalizer(TransformerBackbone(enc), dropout=0.0).eval()


def cr_method(**params) -> CR:
    return CR(RunConfig(target_sparsity=params.pop("target_sparsity", 15.0), method_params=params))


# -- KL -----------------------------------------------------------------------------------------------------
def test_kl_of_bernoullis_by_hand():
    # pi = 0.2. KL(Bern(q) || Bern(pi)) = q ln(q/pi) + (1-q) ln((1-q)/(1-pi)):
    #   l = 0     -> q = 0.5:  0.5 ln 2.5 + 0.5 ln 0.625 = ln 1.25        = 0.2231435513
    #   l = ln 3  -> q = 0.75: 0.75 ln 3.75 + 0.25 ln 0.3125             = 0.7005291775
    #   l = -ln 4 -> q = 0.2 = pi                                          = 0
    # example 0 pieces (0, ln 3): mean 0.4618363644; example 1 pieces (-ln 4, ln 3, 0): mean 0.3078909096
    # batch mean 0.3848636370. [CLS], [SEP] and padding carry logit 7 and must not count.
    batch = make_batch([["c", "1", "2", "s", "."], ["c", "1", "2", "3", "s"]])
    big = 7.0
    logits = torch.tensor([[big, 0.0, math.log(3), big, big], [big, -math.log(4), math.log(3), 0.0, big]])
    assert kl_to_prior(logits, batch.mask, 0.2).item() == pytest.approx(0.3848636370, abs=1e-7)
    # saturated logits stay finite: q -> 1 gives ln(1/pi) = ln 5, q -> 0 gives ln(1/(1-pi)) = ln 1.25
    one = make_batch([["c", "1", "s"]])
    assert kl_to_prior(torch.tensor([[0.0, 100.0, 0.0]]), one.mask, 0.2).item() == pytest.approx(1.6094379, abs=1e-6)
    assert kl_to_prior(torch.tensor([[0.0, -100.0, 0.0]]), one.mask, 0.2).item() == pytest.approx(0.2231436, abs=1e-6)


# -- PNS ----------------------------------------------------------------------------------------------------
class LinearStandIn:
    """A predictor whose logits are [0, s], s = sum_t w_t z_t, with w carried in the embeddings: P(y=1|z) =
    sigmoid(s), computable by hand for every ablated mask the method builds."""

    def predict(self, emb: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        s = (emb[..., 0] * z).sum(1)
        return torch.stack([torch.zeros_like(s), s], dim=1)


PNS_ROWS = [["c", "1", "2", "3", "4", "s"],  # n = 6: budget ceil(25% * 6) = 2
            ["c", "1", "2", "3", "s", "."],  # n = 5: budget ceil(1.25) = 2
            ["c", "1", "2", "s", ".", "."]]  # n = 4
PNS_Z = [[0.0, 0.9, 0.9, 0.3, 0.9, 0.0],  # candidates (z > 0.8) at 1, 2, 4: two of them drawn
         [0.0, 0.85, 0.2, 0.95, 0.0, 0.0],  # candidates 1, 3: both
         [0.95, 0.8, 0.5, 0.0, 0.0, 0.0]]  # none: 0.8 is not above 0.8, and [CLS] is never a candidate
PNS_W = [[0, 1, 1, 1, 1, 0], [0, 2, 1, -1, 0, 0], [0, 1, 1, 0, 0, 0]]
# example 0: s = 3.0, any ablation s = 2.1: sigmoid 0.9525741268 - 0.8909031788 = 0.0616709480
#            L0 = -ln(1.0616709480) = -0.0598440330 (whichever two are drawn)
# example 1: s = 1.7 + 0.2 - 0.95 = 0.95, sigmoid 0.7211151780
#            drop piece 1 (w 2): s = -0.75, sigmoid 0.3208213008, drop 0.4002938772 -> ln 1.4002938772 = 0.3366821269
#            drop piece 3 (w -1): s = 1.9, sigmoid 0.8698915256 > full -> max(0, .) = 0 -> ln 1 = 0
#            L1 = -(0.3366821269 + 0) / 2 = -0.1683410634
# example 2: no site: L2 = 0
L0, L1 = -0.0598440330, -0.1683410634


def pns_inputs(order: list[int]) -> tuple[torch.Tensor, torch.Tensor, Batch, torch.Tensor]:
    z = torch.tensor([PNS_Z[i] for i in order], requires_grad=True)
    emb = torch.tensor([PNS_W[i] for i in order], dtype=torch.float32)[..., None]
    prob_full = torch.sigmoid(torch.tensor([3.0, 0.95, 1.3]))[order].requires_grad_()
    return z, emb, make_batch([PNS_ROWS[i] for i in order]), prob_full


def test_pns_mean_over_all_examples_by_hand():
    z, emb, batch, prob_full = pns_inputs([0, 1, 2])
    method = cr_method(pns_k=25.0, cr_pns="mean")
    loss = method.necessity(LinearStandIn(), emb, z, batch, prob_full)
    assert loss.item() == pytest.approx((L0 + L1 + 0.0) / 3, abs=1e-7)  # -0.0760616988
    loss.backward()
    assert prob_full.grad is None  # the full-mask probability is detached
    # the gradient reaches z through the ablated masks, also at pieces that are never ablated (z = 0.3)
    assert z.grad[0, 3].abs().item() > 0 and z.grad[2].abs().sum().item() == 0


def test_pns_last_only_reproduces_the_reference_accumulator():
    # the last example has no piece above 0.8: the whole term is 0
    z, emb, batch, prob_full = pns_inputs([0, 1, 2])
    assert cr_method(pns_k=25.0, cr_pns="last_only").necessity(LinearStandIn(), emb, z, batch, prob_full).item() == 0
    # with example 1 last, only its L1 counts
    z, emb, batch, prob_full = pns_inputs([2, 0, 1])
    loss = cr_method(pns_k=25.0, cr_pns="last_only").necessity(LinearStandIn(), emb, z, batch, prob_full)
    assert loss.item() == pytest.approx(L1, abs=1e-7)
    # and the corrected mean does not depend on the order
    z, emb, batch, prob_full = pns_inputs([2, 0, 1])
    loss = cr_method(pns_k=25.0).necessity(LinearStandIn(), emb, z, batch, prob_full)
    assert loss.item() == pytest.approx((L0 + L1) / 3, abs=1e-7)


def test_ablation_sites_budget_candidates_and_uniform_draws():
    z, _, batch, _ = pns_inputs([0, 1, 2])
    pairs = set()
    for seed in range(60):
        rows, cols = necessity_sites(z, batch, 25.0, torch.Generator().manual_seed(seed))
        by_row = {r: sorted(cols[rows == r].tolist()) for r in range(3)}
        assert by_row[1] == [1, 3] and by_row[2] == []
        assert len(by_row[0]) == 2 and set(by_row[0]) <= {1, 2, 4}
        pairs.add(tuple(by_row[0]))
    assert pairs == {(1, 2), (1, 4), (2, 4)}  # each pair has probability 1/3
    # ceil(5% * 60) is exactly 3 (n * k first: 0.05 * 60 would round up to 4 through 3.0000000000000004)
    long = make_batch([["c", *["1"] * 58, "s"]])
    z_long = torch.zeros(1, 60)
    z_long[0, 1:11] = 0.9
    rows, cols = necessity_sites(z_long, long, 5.0, torch.Generator().manual_seed(0))
    assert len(rows) == 3 and set(cols.tolist()) <= set(range(1, 11))


def test_a_smaller_pns_k_estimates_the_same_necessity_mean():
    # the quick profile's pns_k = 1 ablates one of ten candidates (ceil(1% * 60) = 1) where 25 % ablates all ten
    # of them: averaged over draws, the per-example term must be the mean over all candidates, computed here by
    # hand. Piece j (1..10) drops P(y) from 0.95 to 0.90 - 0.05 j, so its term is -ln(1.05 + 0.05 j).
    batch = make_batch([["c", *["1"] * 58, "s"]])
    z = torch.zeros(1, 60)
    z[0, 1:11] = 0.9
    full = torch.tensor([0.95])
    terms = -np.array([math.log(1.05 + 0.05 * j) for j in range(1, 11)])
    exact = terms.mean()

    def term(k_percent: float, seed: int) -> float:
        rows, cols = necessity_sites(z, batch, k_percent, torch.Generator().manual_seed(seed))
        return pns_from_probs(full, 0.90 - 0.05 * cols.double(), rows, 1).item()

    assert term(25.0, 0) == pytest.approx(exact, abs=1e-6)  # every candidate: exact (float32)
    draws = [term(1.0, seed) for seed in range(2000)]
    assert set(np.round(draws, 5)) <= set(np.round(terms, 5))  # one candidate per draw
    standard_error = terms.std() / math.sqrt(len(draws))
    assert abs(np.mean(draws) - exact) < 4 * standard_error


# -- the log-mask bias ----------------------------------------------------------------------------------------
def test_log_mask_bias_values():
    batch = make_batch([["c", "1", "2", "3", "s", "."]])
    z = torch.tensor([[0.7, 1.0, 0.5, 0.0, 0.3, 0.9]])  # the values at [CLS], [SEP] and padding do not matter
    bias = log_mask_bias(z, batch)[0]
    # [CLS], [SEP]: log(1 + 1e-8) ~ 0; z = 1: ~0; z = 0.5: ln 0.5; z = 0: ln 1e-8 = -18.4207; padding: ln 1e-8
    expected = [0.0, 0.0, math.log(0.5), -18.420681, 0.0, -18.420681]
    torch.testing.assert_close(bias, torch.tensor(expected), rtol=0, atol=1e-5)


def test_zero_z_equals_deleting_the_piece(model):
    batch = make_batch([["c", "1", "2", "3", "4", "5", "s"]])
    z = torch.tensor([[0.0, 1, 1, 0, 1, 1, 0]])
    keep = [0, 1, 2, 4, 5, 6]
    with torch.no_grad():
        emb = model.embed(batch.ids, batch.mask)
        got = model.predict(emb, z, batch)
        # the deleted sequence, the other pieces keeping their positions; pooled over [CLS] and [SEP]
        tr = model.predictor.encoder.transformer
        h = tr.embed_words(emb, batch.token_type)
        states = tr.encode(h[:, keep], batch.attention[:, keep])
        pooled = states[:, [0, 5]].max(dim=1).values
        torch.testing.assert_close(got, model.predictor.head(pooled), rtol=0, atol=1e-5)
        full = model.predict(emb, torch.ones_like(z), batch)
        assert (got - full).abs().max() > 1e-4  # the piece mattered


def test_an_unselected_piece_never_reaches_the_prediction(model):
    """The predictor reads the ids of every piece; an unselected one must still not matter. Pooling over all
    positions would read it through its own state (residual path), so CR pools over [CLS]/[SEP] only."""
    batch = make_batch([["c", "1", "2", "3", "4", "s"]])
    other = make_batch([["c", "1", "2", "9", "4", "s"]])
    z = torch.tensor([[0.0, 1, 1, 0, 1, 0]])
    with torch.no_grad():
        a = model.predict(model.embed(batch.ids, batch.mask), z, batch)
        b = model.predict(model.embed(other.ids, other.mask), z, other)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        leaky = [model.predict(model.embed(x.ids, x.mask), z, x, pool=x.attention) for x in (batch, other)]
        assert (leaky[0] - leaky[1]).abs().max() > 1e-3


def test_half_z_on_two_copies_equals_one_full_copy_in_every_layer(model):
    """z = 0.5 halves a key's unnormalised attention weight: two identical copies of a piece at z = 0.5 weigh
    as much as the piece once at z = 1, for every other position and in every layer (both copies stay identical
    throughout, so the equivalence needs the bias in layer 2 as well as layer 1)."""
    one = make_batch([["c", "1", "2", "3", "s"]])
    dup = make_batch([["c", "1", "2", "3", "3", "s"]])
    tr = model.predictor.encoder.transformer
    with torch.no_grad():
        h = tr.embed_words(model.embed(one.ids, one.mask), one.token_type)
        h_dup = torch.cat([h[:, :4], h[:, 3:4], h[:, 4:]], dim=1)  # positions fixed before copying
        ref = tr.encode(h, one.attention, log_mask_bias(torch.ones(1, 5), one))
        half = tr.encode(h_dup, dup.attention, log_mask_bias(torch.tensor([[0, 1, 1, 0.5, 0.5, 0]]), dup))
        torch.testing.assert_close(half[:, [0, 1, 2, 3, 5]], ref, rtol=0, atol=2e-5)
        whole = tr.encode(h_dup, dup.attention, log_mask_bias(torch.tensor([[0, 1, 1, 1.0, 1.0, 0]]), dup))
        assert (whole[:, [0, 1, 2, 3, 5]] - ref).abs().max() > 1e-3


# -- evaluation -----------------------------------------------------------------------------------------------
class FixedLogits(nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.logits


def test_topk_evaluation_hits_the_target_sparsity_exactly(model):
    batch = make_batch([["c", "1", "2", "3", "4", "s", ".", ".", ".", "."],
                        ["c", "1", "2", "3", "4", "5", "6", "7", "8", "s"]], labels=[1, 0])
    hi = 9.0  # at [CLS], [SEP] and padding: never selected
    logits = torch.tensor([[hi, 0.1, 2.0, -1.0, 2.0, hi, hi, hi, hi, hi],
                           [hi, 0.0, 1.5, 0.2, -3.0, 0.3, 0.4, 3.0, 0.1, hi]])
    method = cr_method(target_sparsity=25.0)
    held, model.selector = model.selector, FixedLogits(logits)
    try:
        check_topk(method, model, batch)
    finally:
        model.selector = held


def check_topk(method: CR, model: CausalRationalizer, batch: Batch) -> None:
    with torch.no_grad():
        z, pred, scores = method.rationale(model, batch, None)
        # 25 % of 4 pieces = 1: the tie at 2.0 (pieces 2 and 4) goes to the earlier; 25 % of 8 = 2: 3.0 and 1.5
        assert z[0].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        assert z[1].tolist() == [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
        assert scores[0, 2].item() == pytest.approx(0.8807970780) and scores[0, 0].item() == 0  # sigmoid(2)
        torch.testing.assert_close(pred, method.predict_with(model, batch, z))
        # pooled S = (1 + 2) / (4 + 8) = 25 %, as the engine measures it
        assert evaluate(method, model, [batch], gold=False, generator=None)["S"] == 25.0


# -- settings, catalog, profile -------------------------------------------------------------------------------
def test_settings_prior_follows_the_target_and_errors_are_clear():
    m = cr_method(target_sparsity=12.0)
    assert m.pi == pytest.approx(0.12) and m.eval_fraction == pytest.approx(0.12)
    m = cr_method(target_sparsity=12.0, pi=0.1)  # the published prior; top-k still at the target
    assert m.pi == 0.1 and m.eval_fraction == pytest.approx(0.12)
    with pytest.raises(RatbenchError, match="cr_pns"):
        cr_method(cr_pns="first")
    with pytest.raises(RatbenchError, match="pi"):
        CR(RunConfig(target_sparsity=None))
    # CR selects top-k at the target: the engine's alpha calibrator never runs for it
    assert method_info("cr").sparsity == "top-k" and not method_info("cr").calibrates_alpha
    assert method_info("cr").backbones == ("transformer",) and method_class("cr") is CR
    with pytest.raises(RatbenchError, match="transformer"):
        check_backbone("cr", "gru")


def test_paper_profile_has_the_reference_settings():
    beer = resolve("paper", "cr", "beer-appearance", dict(CR.defaults), {"backbone": "transformer"})
    # 32 x 8 accumulation -> one step per 256 examples in 8 micro-batches; Look has mu = 1
    assert (beer.lr, beer.batch_size, beer.epochs) == (5e-6, 256, 10)
    assert beer.method_params == {**CR.defaults, "micro_batches": 8, "mu": 1.0}
    aroma = resolve("paper", "cr", "beer-aroma", dict(CR.defaults), {"backbone": "transformer"})
    assert aroma.method_params["mu"] == 0.1
    hotel = resolve("paper", "cr", "hotel-location", dict(CR.defaults), {"backbone": "transformer"})
    assert (hotel.lr, hotel.batch_size, hotel.epochs) == (5e-5, 256, 1)
    assert {k: hotel.method_params[k] for k in ("micro_batches", "beta", "cr_tau", "mu", "pns_k")} == \
        {"micro_batches": 16, "beta": 0.1, "cr_tau": 1.0, "mu": 0.1, "pns_k": 5.0}


# -- training -------------------------------------------------------------------------------------------------
def test_micro_batches_accumulate_the_whole_batch_gradient(model, monkeypatch):
    """Without randomness (z = sigmoid(l), no PNS, no dropout) two micro-batches give the whole batch's
    gradient: the mean over examples is the share-weighted sum of the parts' means."""
    monkeypatch.setattr("ratbench.methods.cr.relaxed_bernoulli", lambda logits, tau: torch.sigmoid(logits))
    batch = make_batch([["c", "1", "2", "3", "s"], ["c", "4", "5", "s", "."], ["c", "6", "s", ".", "."]],
                       labels=[1, 0, 1])
    grads = []
    for n in (1, 2):
        method = CR(RunConfig(target_sparsity=15.0, lr=0.0, method_params={"mu": 0.0, "micro_batches": n}))
        model.train()
        method.train_step(model, batch, method.build_optimizers(model))
        model.eval()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    model.zero_grad(set_to_none=True)


def test_short_toy_run_records_micro_and_macro_overlap(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "cr", "--datasets", "toy", "--seeds", "1", "--profile", "smoke",
                                 "--set", "backbone=transformer", "--set", "local_mlm_steps=0", "--set", "epochs=2",
                                 "--set", "train_limit=128", "--set", "num_threads=1", "--results", str(out)])
    assert r.exit_code == 0, r.output
    (path,) = out.glob("runs/toy/cr/*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "finished", rec.get("error")
    m = rec["metrics"]
    for key in ("P", "R", "F1", "p_macro", "r_macro", "f1_macro", "P_subword", "f1_macro_subword", "Acc"):
        assert math.isfinite(m[key]), key
    # top-k at 15 % of each example's pieces: dev S is the target up to rounding, so the matched-S rule applies
    assert abs(m["dev_S"] - 15.0) < 1.0 and abs(m["S"] - 15.0) < 1.0
    assert rec["selection"] == "dev_acc_matched_s"
    assert {c["alpha"] for c in rec["curves"]} == {rec["config"]["alpha"]}
    assert rec["method_notes"]["pi"] == pytest.approx(0.15)
