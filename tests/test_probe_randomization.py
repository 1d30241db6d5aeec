"""The randomization probe (docs/probes.md#randomization): insertion and removal on hand-made splits (both
backbones' layouts), its measures on hand-made passes, invariances a rationale-only predictor must show, a tiny
transformer kept within its position limit, and `ratbench diagnose --probe randomization` end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ratbench.methods.attention  # noqa: F401  (registers "attention")
from ratbench.cli.app import app
from ratbench.config import RunConfig
from ratbench.data.corpus import Split
from ratbench.methods.catalog import method_class
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.probes.randomization import (
    Pass,
    Perturbed,
    compare,
    counts_at,
    insert_tokens,
    randomization_table,
    remove_tokens,
    unperturbed,
)

CLS, SEP = 2, 3



def _split(examples: list[list[int]], labels: list[int], gold: list[list[int]] | None = None,
           forced: list[list[int]] | None = None, token_type: list[list[int]] | None = None) -> Split:
    lengths = [len(e) for e in examples]
    flat = lambda xs, dtype: np.array([v for x in xs for v in x], dtype)  # noqa: E731
    return Split(flat(examples, np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                 np.array(labels, np.int64), None if gold is None else flat(gold, np.uint8),
                 None if forced is None else flat(forced, np.uint8),
                 None if token_type is None else flat(token_type, np.int8))


def _examples(split: Split, values: np.ndarray) -> list[list[int]]:
    return [values[split.offsets[i]: split.offsets[i + 1]].tolist() for i in range(len(split))]


# -- insertion and removal -------------------------------------------------------------------------------------------
def test_counts_round_half_to_even_with_one_token_at_least():
    assert counts_at(0.5, np.array([4, 10, 1, 0, 5])).tolist() == [2, 5, 1, 0, 2]  # 2.5 -> 2, 0.5 -> 0 -> 1
    assert counts_at(0.0, np.array([4, 10])).tolist() == [0, 0]


def test_insertion_keeps_the_text_in_order_and_adds_k_vocabulary_tokens():
    split = _split([[11, 12, 13, 14], list(range(20, 30)), [40]], [1, 0, 1],
                   gold=[[0, 1, 1, 0], [1] * 10, [1]])
    vocab = np.array([101, 102, 103])
    pert = insert_tokens(split, 0.5, vocab, np.random.default_rng(0))
    assert pert.split.lengths.tolist() == [6, 15, 2] and pert.changed == 8 and pert.selectable == 15
    ids, origin = _examples(pert.split, pert.split.ids), _examples(pert.split, pert.origin)
    gold = _examples(pert.split, pert.split.gold)
    for i, original in enumerate(_examples(split, split.ids)):
        kept = [t for t, o in zip(ids[i], origin[i]) if o >= 0]
        assert kept == original  # every original token, in order
        assert all(t in vocab for t, o in zip(ids[i], origin[i]) if o < 0)
        assert all(g == 0 for g, o in zip(gold[i], origin[i]) if o < 0)  # an inserted token is never gold
        assert [o for o in origin[i] if o >= 0] == list(range(split.offsets[i], split.offsets[i + 1]))
    assert pert.split.labels.tolist() == [1, 0, 1]


def test_insertion_gaps_are_uniform_including_both_ends():
    split = _split([[11, 12, 13]] * 4000, [0] * 4000)
    pert = insert_tokens(split, 0.34, np.array([99]), np.random.default_rng(1))  # k = round(1.02) = 1 per text
    where = np.flatnonzero(pert.split.ids == 99) - pert.split.offsets[:-1]  # its position: 0..3 = the gap
    counts = np.bincount(where, minlength=4) / 4000
    assert np.allclose(counts, 0.25, atol=0.03), counts


def test_transformer_layout_inserts_between_the_specials_within_the_position_limit():
    # [CLS] a b c [SEP] q [SEP]: the query (segment 1) is forced, never perturbed
    ex = [CLS, 10, 11, 12, SEP, 20, SEP]
    forced = [1, 0, 0, 0, 1, 1, 1]
    tt = [0, 0, 0, 0, 0, 1, 1]
    split = _split([ex] * 300, [0] * 300, forced=[forced] * 300, token_type=[tt] * 300)
    pert = insert_tokens(split, 1.0, np.array([50, 51]), np.random.default_rng(2))
    for ids, f, t, o in zip(*(_examples(pert.split, v) for v in (pert.split.ids, pert.split.forced,
                                                                   pert.split.token_type, pert.origin))):
        assert len(ids) == 10 and ids[0] == CLS and ids[-3:] == [SEP, 20, SEP] and f[-3:] == [1, 1, 1]
        assert [i for i, oo in zip(ids, o) if oo >= 0] == ex
        assert all(tt_ == 0 and ff == 0 for tt_, ff, oo in zip(t, f, o) if oo < 0)  # the text's segment
    # a limit of 8 positions leaves room for one inserted piece per text
    capped = insert_tokens(split, 1.0, np.array([50]), np.random.default_rng(2), max_length=8)
    assert capped.split.lengths.max() == 8 and capped.changed == 300


def test_removal_deletes_only_removable_tokens_and_at_most_all_of_them():
    split = _split([[11, 12, 13, 14, 15, 16], [21, 22], [CLS, 31, 32, SEP]], [0, 1, 0],
                   forced=[[0] * 6, [0, 0], [1, 0, 0, 1]])
    rationale = np.zeros(len(split.ids), bool)
    rationale[[0, 3, 6]] = True  # tokens 11, 14 and 21
    pert = remove_tokens(split, 0.5, ~rationale, np.random.default_rng(3))
    ids = _examples(pert.split, pert.split.ids)
    # k = round(3) = 3 of the 4 removable of text 0; round(1) = 1 of text 1, only 22 removable; text 2: 1 of 2
    assert [len(x) for x in ids] == [3, 1, 3] and pert.changed == 5
    assert 11 in ids[0] and 14 in ids[0] and ids[1] == [21]
    assert ids[2][0] == CLS and ids[2][-1] == SEP
    for kept, original in zip(ids, _examples(split, split.ids)):
        assert kept == [t for t in original if t in kept]  # order kept
    everything = remove_tokens(split, 5.0, ~rationale, np.random.default_rng(3))
    assert _examples(everything.split, everything.split.ids)[:2] == [[11, 14], [21]]


# -- the measures ------------------------------------------------------------------------------------------------------
def test_compare_by_hand():
    # original: 2 texts of 4 tokens; perturbed: text 0 got a token inserted at position 1, text 1 unchanged
    original = Pass(z=np.array([1, 1, 0, 0, 0, 1, 0, 0], np.float32),
                    probs=np.array([[0.2, 0.8], [0.6, 0.4]]), comp=np.full(2, np.nan), suff=np.full(2, np.nan))
    split = _split([[1, 9, 2, 3, 4], [5, 6, 7, 8]], [1, 1], gold=[[1, 0, 1, 0, 0], [0, 1, 1, 0]])
    pert = Perturbed(split, np.array([0, -1, 1, 2, 3, 4, 5, 6, 7]), changed=1, selectable=8)
    perturbed = Pass(z=np.array([1, 1, 0, 1, 0, 0, 1, 1, 0], np.float32),
                     probs=np.array([[0.7, 0.3], [0.5, 0.5]]), comp=np.array([0.1, 0.3]),
                     suff=np.array([0.0, -0.2]))
    out = compare(original, perturbed, pert, split.labels)
    # surviving originals: orig z (1,1,0,0 | 0,1,0,0) vs perturbed (1,0,1,0 | 0,1,1,0): |diff| = 3, sums 3 + 4
    assert out["rationale_change"] == pytest.approx(100 * 3 / 7)
    assert out["rationale_kept"] == pytest.approx(100 * 2 / 3)
    assert out["inserted_selected"] == pytest.approx(100.0)  # the one inserted token was selected
    assert out["S"] == pytest.approx(100 * 5 / 9)
    # F1 vs gold: selected 5, gold 4, overlap (pos 0, 6, 7 of the flat perturbed split) = 3
    assert out["F1"] == pytest.approx(100 * 2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    # predictions 1, 0 -> 0, 0 (argmax of [0.5, 0.5] is 0): one change; p of the original class 0.8 -> 0.3, 0.6 -> 0.5
    assert out["pred_change"] == pytest.approx(50.0) and out["prob_drop"] == pytest.approx((0.5 + 0.1) / 2)
    assert out["acc"] == pytest.approx(0.0)
    assert out["comprehensiveness"] == pytest.approx(0.2) and out["sufficiency"] == pytest.approx(-0.1)


class _Stub:
    """Selects the tokens with id >= 100; the prediction reads only the selection: class 1 iff a selected id is
    odd. `predict_with` reads only `keep`."""

    def _logits(self, batch, keep):
        odd = ((batch.ids % 2 == 1).float() * (batch.ids >= 100).float() * keep).sum(1) > 0
        return torch.stack([(~odd).float(), odd.float()], -1) * 4.0

    def rationale(self, model, batch, generator):
        z = (batch.ids >= 100).float() * batch.mask
        return z, self._logits(batch, z), z

    def predict_with(self, model, batch, keep):
        return self._logits(batch, keep * batch.mask)


class _FullText(_Stub):
    """The same selection, but a prediction from the whole text: class 1 iff the text has an odd length."""

    def _logits(self, batch, keep):
        odd = (keep.sum(1) % 2) == 1
        return torch.stack([(~odd).float(), odd.float()], -1) * 4.0

    def rationale(self, model, batch, generator):
        z = (batch.ids >= 100).float() * batch.mask
        return z, self._logits(batch, batch.mask), z


def test_a_rationale_only_predictor_ignores_random_tokens_a_full_text_one_does_not():
    rng = np.random.default_rng(0)
    texts = [list(rng.integers(10, 40, rng.integers(6, 20))) + [101 + 2 * int(rng.integers(2))] for _ in range(60)]
    test = _split(texts, [1] * 60)
    train = _split([list(range(10, 40))], [0])  # the insertion vocabulary: fillers only
    rows = pd.DataFrame(randomization_table(_Stub(), nn.Module(), test, train, [0.0, 0.2, 1.0], 1, 5, batch_size=16))
    assert (rows["rationale_change"] == 0).all() and (rows["pred_change"] == 0).all()
    assert (rows["rationale_kept"] == 100).all() and (rows["prob_drop"].abs() < 1e-12).all()
    ins = rows[(rows.kind == "insert") & (rows.rate > 0)]
    assert (ins["inserted_selected"] == 0).all() and (ins["realised"] > 0.19).all()
    full = pd.DataFrame(randomization_table(_FullText(), nn.Module(), test, train, [0.0, 0.2], 1, 5, batch_size=16))
    assert (full["rationale_change"] == 0).all()  # same selector
    moved = full[full.rate > 0]
    assert (moved["pred_change"] > 20).all()  # lengths change parity about half the time
    assert (full[full.rate == 0]["pred_change"] == 0).all()


def test_a_tiny_transformer_stays_within_its_position_limit():
    tok = wordpiece_tokenizer(["the", "beer", "is", "good", "bad", "head", "white", "foam"])
    enc = build_encoder(tiny_config("bert", vocab_size=len(tok), num_heads=2, max_positions=16), tok, seed=0,
                        attn_implementation="sdpa")
    method = method_class("attention")(RunConfig(method_params={"match_sparsity": "target"}))
    method._set(30.0, "target", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = method.build_model(TransformerBackbone(enc, num_classes=2)).eval()
    rng = np.random.default_rng(0)
    texts = [[CLS, *rng.integers(5, len(tok), int(n)).tolist(), SEP] for n in rng.integers(3, 12, 24)]
    forced = [[1] + [0] * (len(t) - 2) + [1] for t in texts]
    test = _split(texts, [0, 1] * 12, forced=forced, token_type=[[0] * len(t) for t in texts])
    rows = pd.DataFrame(randomization_table(method, model, test, test, [0.0, 1.0], 1, 5, batch_size=8))
    zero = rows[rows.rate == 0]
    assert (zero["rationale_change"] == 0).all() and (zero["pred_change"] == 0).all()  # top-k: deterministic
    ins = rows[(rows.kind == "insert") & (rows.rate == 1.0)].iloc[0]
    assert 0 < ins["realised"] < 1.0  # capped: the longer texts had no room for as many pieces as tokens
    assert np.isfinite(rows[["comprehensiveness", "sufficiency", "acc"]].to_numpy()).all()
    assert np.allclose(unperturbed(test).split.ids, test.ids)


# -- ratbench diagnose -----------------------------------------------------------------------------------------------
def test_diagnose_randomization_writes_csv_png_and_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    res = tmp_path / "res"
    args = ["diagnose", "--probe", "randomization", "--methods", "rnp", "--datasets", "toy", "--seeds", "1",
            "--profile", "smoke", "--set", "hidden_size=16", "--set", "epochs=2", "--values", "0.1,0.5",
            "--results", str(res)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    folder = res / "diagnose" / "randomization"
    frame = pd.read_csv(folder / "randomization.csv")
    assert sorted(set(frame["rate"])) == [0.0, 0.1, 0.5] and set(frame["kind"]) == {"insert", "remove"}
    assert (frame["n"] == frame["n"].iloc[0]).all() and 0 < frame["n"].iloc[0] <= 200  # smoke: test_limit 200
    summary = pd.read_csv(folder / "randomization_summary.csv")
    assert len(summary) == 6 and "rationale_change" in summary.columns
    png = (folder / "randomization.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "0 to train" in CliRunner().invoke(app, args).output
