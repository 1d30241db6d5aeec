"""Post-hoc baselines on the transformer backbone (docs/methods.md#attention, #lime): the [CLS] attention scores
against Hugging Face's eager `output_attentions`, top-k at the matched sparsity, removal in `predict_with` and in
LIME's perturbations against the model run on the shorter input, and a short run of both through the grid.

Models are tiny random BERT/DistilBERT configs built locally (no download). References are computed by the
Hugging Face model's own forward (eager attention, `position_ids` given), never by the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers
from transformers import AutoModel

import ratbench.methods.attention  # noqa: F401  (registers "attention")
import ratbench.methods.lime as lime_mod  # registers "lime"
from ratbench import api
from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.methods.catalog import method_class, method_info
from ratbench.methods.posthoc import TransformerClassifier
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.transformer import build_encoder, last_layer_attention, tiny_config, wordpiece_tokenizer
from ratbench.plan import plan
from ratbench.results.record import load_record

PIECES = ["the", "beer", "is", "good", "bad", "head", "white", "foam", "taste", "smell", "dark", "light"]
CLS, SEP, PAD = 2, 3, 0  # wordpiece_tokenizer puts [PAD] [UNK] [CLS] [SEP] [MASK] first
# DistilBERT's layer stack takes the additive mask only from transformers 5 on (models/transformer.py)
MODEL_TYPES = ["bert", pytest.param("distilbert", marks=pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) < 5, reason="DistilBERT backbones need transformers >= 5"))]



@pytest.fixture(scope="module")
def tok():
    return wordpiece_tokenizer(PIECES)


def hand_batch(lengths=(12, 7, 4), seed=0) -> Batch:
    """[CLS] pieces... [SEP] then padding; every piece between the specials is selectable."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    attention = torch.zeros(len(lengths), width)
    forced = torch.zeros(len(lengths), width)
    for i, n in enumerate(lengths):
        ids[i, 1 : n - 1] = torch.randint(5, 5 + len(PIECES), (n - 2,), generator=g)
        ids[i, 0], ids[i, n - 1] = CLS, SEP
        attention[i, :n] = 1
        forced[i, [0, n - 1]] = 1
    return Batch(ids=ids, mask=attention - forced, lengths=torch.tensor(lengths), labels=torch.zeros(len(lengths),
                 dtype=torch.long), gold=None, index=np.arange(len(lengths)), attention=attention, forced=forced,
                 token_type=torch.zeros_like(ids))


def cfg(**params) -> RunConfig:
    return RunConfig(lr=1e-3, method_params={"match_sparsity": "target", **params})


def built(tok, method="attention", model_type="bert", **params):
    """A method with S* = 30 % and its classifier over a tiny random SDPA encoder, in eval mode."""
    enc = build_encoder(tiny_config(model_type, vocab_size=len(tok), num_heads=4), tok, seed=0,
                        attn_implementation="sdpa")
    m = method_class(method)(cfg(**params))
    m._set(30.0, "target", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = m.build_model(TransformerBackbone(enc, num_classes=2))
    assert isinstance(model, TransformerClassifier)
    return m, model.eval()


def eager_copy(model: TransformerClassifier) -> torch.nn.Module:
    """The classifier's encoder weights in a fresh Hugging Face model with eager attention (the reference)."""
    hf = model.encoder.transformer.model
    kwargs = {"add_pooling_layer": False} if hf.config.model_type == "bert" else {}
    ref = AutoModel.from_config(hf.config, attn_implementation="eager", **kwargs)
    ref.load_state_dict(hf.state_dict())
    return ref.eval()


def hf_forward(hf: torch.nn.Module, ids: torch.Tensor, attention: torch.Tensor, **kw):
    if hf.config.model_type == "distilbert":
        kw.pop("token_type_ids", None)
    return hf(input_ids=ids, attention_mask=attention, **kw)


# -- Attention scores ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_cls_attention_equals_eager_output_attentions_averaged_over_heads(tok, model_type):
    method, model = built(tok, model_type=model_type)
    # a training step first, so the weights are not the initial ones the reference could share by accident
    method.train_step(model.train(), hand_batch(seed=3), method.build_optimizers(model))
    model.eval()
    batch = hand_batch()
    ref_model = eager_copy(model)
    with torch.no_grad():
        logits, alpha = model.full_text(batch, explain=True)
        with last_layer_attention(model.encoder.transformer) as full:
            model.full_text(batch)
        out = hf_forward(ref_model, batch.ids, batch.attention, token_type_ids=batch.token_type,
                         output_attentions=True)
    eager = out.attentions[-1]  # (B, heads, L, L)
    assert eager.shape[1] == 4 and len(full) == 1
    real = batch.attention > 0
    # every query row at real positions, every head (padding query rows are never read)
    torch.testing.assert_close(full[0].permute(0, 2, 1, 3)[real], eager.permute(0, 2, 1, 3)[real], rtol=0, atol=1e-6)
    torch.testing.assert_close(alpha, eager[:, :, 0, :].mean(1), rtol=0, atol=1e-6)
    assert torch.equal(alpha[~real], torch.zeros(int((~real).sum())))
    torch.testing.assert_close(alpha.sum(1), torch.ones(3), rtol=0, atol=1e-6)  # one softmax row per example
    # [CLS] pooling: the head reads the last hidden state of position 0
    torch.testing.assert_close(logits, model.head(out.last_hidden_state[:, 0]), rtol=0, atol=1e-5)


def test_rationale_is_topk_of_the_eager_cls_row_over_selectable_pieces(tok):
    method, model = built(tok)
    batch = hand_batch(lengths=(12, 7, 4, 3))
    with torch.no_grad():
        z, _, scores = method.rationale(model, batch, None)
        eager = hf_forward(eager_copy(model), batch.ids, batch.attention, token_type_ids=batch.token_type,
                           output_attentions=True).attentions[-1][:, :, 0, :].mean(1)
    # selectable pieces: 10, 5, 2, 1 -> k = max(1, round(0.3 n)) = 3, 2 (1.5 rounds to even), 1 (0.6), 1 (0.3, min 1)
    assert z.sum(1).tolist() == [3.0, 2.0, 1.0, 1.0]
    off = batch.mask == 0  # [CLS], [SEP], padding
    assert float(z[off].sum()) == 0.0 and float(scores[off].abs().sum()) == 0.0
    for row in range(4):
        positions = batch.mask[row].nonzero().flatten().tolist()
        ranked = sorted(positions, key=lambda t: (-float(eager[row, t]), t))
        assert z[row].nonzero().flatten().tolist() == sorted(ranked[: int(z[row].sum())])
        vals = eager[row, positions]
        if len(positions) > 1:  # min-max over the selectable pieces (one piece alone: 0.5)
            torch.testing.assert_close(scores[row, positions], (vals - vals.min()) / (vals.max() - vals.min()),
                                       rtol=0, atol=1e-5)
    assert float(scores[3, 1]) == 0.5


# -- removal -------------------------------------------------------------------------------------------------------
def shorter_input(model: TransformerClassifier, batch: Batch, row: int, kept: list[int]) -> torch.Tensor:
    """The classifier's logits on example `row` with only positions `kept`, the others deleted, positions unchanged."""
    hf = model.encoder.transformer.model
    idx = torch.tensor(kept)
    h = hf_forward(hf, batch.ids[row : row + 1, idx], torch.ones(1, len(kept)), position_ids=idx[None],
                   token_type_ids=batch.token_type[row : row + 1, idx]).last_hidden_state
    return model.head(h[:, 0])


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_removed_pieces_have_no_effect_in_predict_with(tok, model_type):
    method, model = built(tok, model_type=model_type)
    batch = hand_batch()
    keep = torch.ones_like(batch.mask)
    keep[0, [2, 5, 6]] = 0  # three pieces of example 0 removed
    keep[1] = 0  # every piece of example 1: [CLS] and [SEP] stay
    keep[2, 0] = 0  # a zero at [CLS] is ignored: specials are always read
    with torch.no_grad():
        got = method.predict_with(model, batch, keep)
        other = batch.ids.clone()
        other[0, [2, 5, 6]] = 5  # what a removed piece was does not matter
        got_other = method.predict_with(model, Batch(**{**batch.__dict__, "ids": other}), keep)
        ref0 = shorter_input(model, batch, 0, [0, 1, 3, 4, 7, 8, 9, 10, 11])
        ref1 = shorter_input(model, batch, 1, [0, 6])
        ref2 = shorter_input(model, batch, 2, [0, 1, 2, 3])
        full = method.predict_with(model, batch, torch.ones_like(batch.mask))
    torch.testing.assert_close(got[0], ref0[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got[1], ref1[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got[2], ref2[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got_other, got, rtol=0, atol=1e-6)
    assert (full[0] - got[0]).abs().max() > 1e-4  # the removed pieces did matter before removal


def test_lime_perturbations_remove_pieces_and_scores_stay_on_selectable_ones(tok, monkeypatch):
    method, model = built(tok, method="lime", num_samples=60)
    method.seed = 3
    seen = []
    real = lime_mod.lime_weights
    monkeypatch.setattr(lime_mod, "lime_weights", lambda fwd, emb, *a, **k: seen.append((fwd, emb)) or real(fwd, emb,
                                                                                                            *a, **k))
    batch = hand_batch()
    with torch.no_grad():
        z, _, scores = method.rationale(model, batch, None)
        assert [int(e.shape[0]) for _, e in seen] == [10, 5, 2]  # one feature per selectable piece
        # a sample of example 0 that drops its 2nd and 5th selectable pieces (positions 2 and 5)
        x = torch.ones(2, 10, 1)
        x[1, [1, 4]] = 0
        probs = seen[0][0](x)
        ref_full = shorter_input(model, batch, 0, list(range(12))).softmax(-1)
        ref_drop = shorter_input(model, batch, 0, [0, 1, 3, 4, 6, 7, 8, 9, 10, 11]).softmax(-1)
        alone = hand_batch(lengths=(7,))
        alone.ids[0], alone.index = batch.ids[1, :7], batch.index[1:2]  # the same example (LIME seeds by index)
        _, _, scores_alone = method.rationale(model, alone, None)
    torch.testing.assert_close(probs[0], ref_full[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(probs[1], ref_drop[0], rtol=0, atol=1e-5)
    off = batch.mask == 0
    assert float(z[off].sum()) == 0.0 and float(scores[off].abs().sum()) == 0.0
    assert z.sum(1).tolist() == [3.0, 2.0, 1.0]
    torch.testing.assert_close(scores_alone[0], scores[1, :7], rtol=0, atol=1e-5)  # batch-independent


# -- through the grid ----------------------------------------------------------------------------------------------
def test_backbones_declared():
    assert "transformer" in method_info("attention").backbones and "transformer" in method_info("lime").backbones


def test_short_transformer_runs_of_attention_and_lime_finish_with_their_metrics(tmp_path):
    # dev_limit stays above the toy dev split's size: a limited split without word-level gold loses its word
    # offsets (data/corpus.py Split.subset), which any transformer run's dev evaluation then trips on
    overrides = {"backbone": "transformer", "local_mlm_steps": 0, "match_sparsity": "target", "epochs": 2,
                 "train_limit": 200, "test_limit": 60, "faithfulness": True, "num_samples": 40, "num_threads": 1}
    specs = plan(["attention", "lime"], ["toy"], [1], "smoke", overrides, None, "cpu", tmp_path / "data",
                 tmp_path / "res")
    assert sorted(s.method for s in specs) == ["attention", "lime"]  # matched to the target: no RNP run added
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished", "finished"], [o.error for o in outcomes]
    for spec in specs:
        rec = load_record(spec.path)
        m = rec.metrics
        assert rec.backbone["backbone"] == "transformer" and rec.method_notes["source"] == "target"
        assert "Acc" not in m and m["classifier_acc"] > 50.0, m
        assert abs(m["S"] - 15.0) <= 1.5, m["S"]
        for key in ("F1", "F1_subword", "rationale_acc", "comprehensiveness", "sufficiency", "comp_aopc", "auprc",
                    "iou_f1"):
            assert math.isfinite(m[key]), (spec.method, key)
