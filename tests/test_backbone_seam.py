"""The backbone seam: a method's players over a transformer behave as select-then-predict requires.

A tiny random BERT over a hand-given WordPiece vocabulary (no download), through the same Rationalizer, Batch
and methods the engine uses: an unselected piece's id never reaches the predictor; [CLS]/[SEP] are always read
and never count as selected; padding changes nothing; the selector learns through the straight-through path
while the shared word table gets no gradient; a checkpoint leaves that table out and reloads to identical
logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import make_batch
from ratbench.data.pieces import piece_split
from ratbench.data.subwords import tokenize_split
from ratbench.engine.evaluation import evaluate, to_words
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.gumbel import sample_st
from ratbench.models.state import load_trainable_state, trainable_state
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.plan import plan

PIECES = ["the", "beer", "is", "good", "bad", "head", "white", "un", "##believ", "##able", "!", "."]
WORDS = [["the", "beer", "is", "unbelievable", "!"], ["white", "head", "."], ["the", "head", "is", "bad", "."]]
GOLD = [np.array([0, 0, 0, 1, 0]), np.array([1, 1, 0]), np.array([0, 1, 0, 1, 0])]


@pytest.fixture(scope="module")
def tok():
    return wordpiece_tokenizer(PIECES)


@pytest.fixture(scope="module")
def split(tok):
    return piece_split(tokenize_split(tok, WORDS, [1, 1, 0], GOLD, max_len=32))


def _model(tok, method: str = "rnp", seed: int = 0, **settings):
    torch.manual_seed(seed)
    pretrained = build_encoder(tiny_config(vocab_size=len(tok), hidden_size=16, num_heads=2, intermediate_size=32),
                               tok, seed=seed)
    m = method_class(method)(RunConfig(backbone="transformer", dropout=0.0, **settings))
    return m, m.build_model(TransformerBackbone(pretrained)).eval(), pretrained


def test_forced_and_selectable_positions_of_the_pieces(tok, split):
    batch = make_batch(split, np.arange(3))
    # example 0: [CLS] the beer is un ##believ ##able ! [SEP]: 7 selectable pieces, [CLS]/[SEP] forced
    assert batch.forced[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert batch.mask[0].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]
    # example 1 is shorter: [CLS] white head . [SEP] then padding, which is neither forced nor selectable
    assert batch.attention[1].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert batch.mask[1].tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert batch.word_index[0].tolist() == [-1, 0, 1, 2, 3, 3, 3, 4, -1]
    assert batch.gold[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0]


def test_an_unselected_piece_has_no_effect_whatever_its_id(tok, split):
    _, model, _ = _model(tok)
    batch = make_batch(split, np.arange(3))
    z = batch.mask.clone()
    z[0, 2] = 0.0  # "beer" of example 0 not selected
    with torch.no_grad():
        base = model.predict(model.embed(batch.ids, batch.mask), z, batch)
        for other in (tok.convert_tokens_to_ids("bad"), tok.convert_tokens_to_ids("!"), 1):
            ids = batch.ids.clone()
            ids[0, 2] = other
            assert torch.equal(model.predict(model.embed(ids, batch.mask), z, batch), base)
        ids = batch.ids.clone()
        ids[0, 3] = tok.convert_tokens_to_ids("bad")  # a selected piece does reach the prediction
        assert not torch.allclose(model.predict(model.embed(ids, batch.mask), z, batch)[0], base[0])


def test_cls_and_sep_are_read_whatever_z_says_and_never_count_as_selected(tok, split):
    method, model, _ = _model(tok)
    batch = make_batch(split, np.arange(3))
    emb = model.embed(batch.ids, batch.mask)
    z = batch.mask.clone()
    z_on_specials = z + batch.forced  # a selector output of 1 at [CLS]/[SEP] changes nothing
    with torch.no_grad():
        assert torch.equal(model.predict(emb, z, batch), model.predict(emb, z_on_specials, batch))

    class SelectEverything:
        post_hoc = False

        def rationale(self, model, batch, generator):
            z = torch.ones_like(batch.mask)  # every position, specials and padding included
            return z, model.predict(model.embed(batch.ids, batch.mask), z, batch), z

    out = evaluate(SelectEverything(), model, [batch], gold=True, generator=torch.Generator())
    # S over selectable pieces only: 100 %; piece precision = gold pieces / selectable pieces = (3+2+2)/(7+3+5)
    assert out["S"] == pytest.approx(100.0) and out["S_subword"] == pytest.approx(100.0)
    assert out["P_subword"] == pytest.approx(100.0 * 7 / 15)
    # word level: 5 + 3 + 5 words, gold words 1 + 2 + 2
    assert out["P"] == pytest.approx(100.0 * 5 / 13) and out["R"] == pytest.approx(100.0)


def test_a_word_is_selected_when_any_of_its_pieces_is(tok, split):
    batch = make_batch(split, np.arange(1))
    z = torch.zeros_like(batch.mask)
    z[0, 5] = 1.0  # "##believ" only
    assert to_words(z, batch)[0].tolist() == [0, 0, 0, 1, 0]


def test_padding_changes_no_logit(tok, split):
    _, model, _ = _model(tok)
    batch = make_batch(split, np.arange(3))
    z = (torch.rand(batch.mask.shape, generator=torch.Generator().manual_seed(3)) > 0.5).float() * batch.mask
    with torch.no_grad():
        together = model.predict(model.embed(batch.ids, batch.mask), z, batch)
        sel = model.select_logits(model.embed(batch.ids, batch.mask), batch)
        for i in range(3):
            alone = make_batch(split, np.array([i]))
            n = alone.ids.shape[1]
            emb = model.embed(alone.ids, alone.mask)
            torch.testing.assert_close(model.predict(emb, z[i:i + 1, :n], alone), together[i:i + 1])
            torch.testing.assert_close(model.select_logits(emb, alone), sel[i:i + 1, :n])


def test_selector_learns_through_the_straight_through_path_and_the_word_table_gets_nothing(tok, split):
    method, model, _ = _model(tok)
    model.train()
    batch = make_batch(split, np.arange(3))
    emb = model.embed(batch.ids, batch.mask)
    z, _ = sample_st(model.select_logits(emb, batch), 1.0, torch.Generator().manual_seed(0))
    loss = nn.functional.cross_entropy(model.predict(emb, z, batch), batch.labels)  # no regulariser: CE only
    loss.backward()
    table = model.embed.table.weight
    assert not table.requires_grad and table.grad is None
    assert model.selector.head.weight.grad.abs().sum() > 0  # CE reached the selector only through z
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.selector.encoder.parameters())
    # the players' encoders read the one shared table (not copies that could drift)
    assert model.selector.encoder.transformer.word_embeddings is model.embed.table
    assert model.predictor.encoder.transformer.word_embeddings is model.embed.table


def test_checkpoint_leaves_the_word_table_out_and_reloads_to_identical_logits(tok, split):
    method, model, pretrained = _model(tok, seed=1)
    opt = method.build_optimizers(model)
    model.train()
    method.train_step(model, make_batch(split, np.arange(3)), opt)  # move the weights away from the encoder's
    state = trainable_state(model)
    assert not [k for k in state if "word_embeddings" in k or k.startswith("embed.")]
    again = method.build_model(TransformerBackbone(pretrained)).eval()
    load_trainable_state(again, state)
    model.eval()
    batch = make_batch(split, np.arange(3))
    with torch.no_grad():
        z = batch.mask
        for m in (model, again):
            m.out = (m.select_logits(m.embed(batch.ids, batch.mask), batch),
                     m.predict(m.embed(batch.ids, batch.mask), z, batch))
    assert torch.equal(model.out[0], again.out[0]) and torch.equal(model.out[1], again.out[1])


def test_fr_shares_one_encoder_and_encoder_lr_is_its_own_group(tok):
    method, model, _ = _model(tok, "fr", encoder_lr=1e-5, lr=1e-4)
    assert model.selector.encoder is model.predictor.encoder
    (opt,) = method.build_optimizers(model)
    rates = {g["name"]: g["lr"] for g in opt.param_groups}
    assert rates == {"encoder": 1e-5, "all": 1e-4}
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids))  # every parameter once


def test_encoder_lr_splits_every_players_group(tok):
    method, model, _ = _model(tok, "mgr", encoder_lr=1e-5, lr=1e-4)
    (opt,) = method.build_optimizers(model)
    rates = {g["name"]: g["lr"] for g in opt.param_groups}
    # generator i at i x lr (heads) and i x encoder_lr (encoders); the predictor at lr / n and encoder_lr / n
    assert rates["generator2.encoder"] == pytest.approx(2e-5) and rates["generator2"] == pytest.approx(2e-4)
    assert rates["predictor.encoder"] == pytest.approx(1e-5 / 3) and rates["predictor"] == pytest.approx(1e-4 / 3)


def test_a_group_leaves_out_methods_of_another_backbone_and_a_named_one_is_an_error(tmp_path):
    def grid(methods, named, backbone):
        return plan(methods, ["synth-appearance"], [1], "smoke", {"backbone": backbone}, None, "cpu", tmp_path,
                    tmp_path / "results", named=named)

    assert {s.method for s in grid(["rnp", "cr", "dmr"], set(), "gru")} == {"rnp", "dmr"}
    assert {s.method for s in grid(["rnp", "cr", "dmr"], set(), "transformer")} == {"rnp", "cr"}
    with pytest.raises(RatbenchError, match="cr does not run on the gru backbone"):
        grid(["rnp", "cr"], {"cr"}, "gru")
