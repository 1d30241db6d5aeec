"""RTP (docs/methods.md#rtp): the smooth mask formula and the regulariser against hand computations, the
rationale/complement terms and blending, the frozen copy (refreshed after every step, never trained, never
saved), that only the gold class's mask meets the frozen copy, the warm-up, gradient accumulation and
clipping by value, the evaluation rules (predicted / gold class, top-k over words, threshold, oracle k), the
settings, and a short toy run with `ratbench show` printing its class-wise rationales.

Models are tiny random BERTs built locally; expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import check_backbone, method_class, method_info
from ratbench.methods.rtp import RTP, RTPModel, blend, enforcement_terms, regulariser_terms, select, smooth_masks
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.state import load_trainable_state, trainable_state
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer

PIECES = ["good", "bad", "beer", "head", "foam", "dark", "nice", "taste", "sweet", "bitter"]
CLS, SEP = 2, 3  # wordpiece_tokenizer puts the specials first: [PAD] [UNK] [CLS] [SEP] [MASK]



def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def make_batch(rows: list[list[str]], labels: list[int] | None = None) -> Batch:
    """Rows written as position kinds: "c"/"s" [CLS]/[SEP] (forced), "q" a query piece (forced), a digit = a
    selectable piece (its id is 5 + the digit), "." padding."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask, forced, attention = (torch.zeros(len(rows), width) for _ in range(3))
    for i, row in enumerate(rows):
        for t, kind in enumerate(row):
            if kind == ".":
                continue
            attention[i, t] = 1
            if kind in "csq":
                ids[i, t] = {"c": CLS, "s": SEP, "q": 5}[kind]
                forced[i, t] = 1
            else:
                ids[i, t] = 5 + int(kind)
                mask[i, t] = 1
    return Batch(ids=ids, mask=mask, lengths=attention.sum(1).long(), labels=torch.tensor(labels or [1] * len(rows)),
                 gold=None, index=np.arange(len(rows)), attention=attention, forced=forced,
                 token_type=torch.zeros_like(ids))


def tiny_model(seed: int = 0) -> RTPModel:
    tok = wordpiece_tokenizer(PIECES)
    enc = build_encoder(tiny_config(vocab_size=len(tok), dropout=0.0), tok, seed=0, attn_implementation="eager")
    torch.manual_seed(seed)
    return RTPModel(TransformerBackbone(enc))


def rtp_method(n_train: int = 4, **params) -> RTP:
    config = RunConfig(target_sparsity=params.pop("target_sparsity", 25.0), lr=params.pop("lr", 1e-2),
                       epochs=params.pop("epochs", 3), method_params=params)
    method = RTP(config)
    labels = np.array([0, 1] * (n_train // 2))
    method.prepare(SimpleNamespace(label_names=["neg", "pos"]), SimpleNamespace(labels=labels), {})
    return method


TRAIN_ROWS = [["c", "1", "2", "3", "4", "s"], ["c", "5", "6", "7", "s", "."], ["c", "8", "9", "s", ".", "."],
              ["c", "2", "4", "6", "8", "s"]]


# -- the mask ----------------------------------------------------------------------------------------------------
def test_smooth_mask_by_hand():
    # one row [CLS] a b c [SEP], K = 1: sigma = exp(s) = (1, 2, 0.5), w = (1, -2, 0.5) at ranks 0, 1, 2
    #   m_a = sigmoid(1 - 2 e^{-1/2} + 0.5 e^{-4/0.5})  = sigmoid(-0.2128935881) = 0.4469767194
    #   m_b = sigmoid(e^{-1} - 2 + 0.5 e^{-1/0.5})       = sigmoid(-1.5644529172) = 0.1730086107
    #   m_c = sigmoid(e^{-4} - 2 e^{-1/2} + 0.5)          = sigmoid(-0.6947456805) = 0.3329782058
    # [CLS]/[SEP] carry s = 5, w = 9: they neither contribute nor get a mask value
    batch = make_batch([["c", "1", "2", "3", "s"]])
    s = torch.tensor([[5.0, 0.0, math.log(2.0), math.log(0.5), 5.0]])[..., None]
    w = torch.tensor([[9.0, 1.0, -2.0, 0.5, 9.0]])[..., None]
    m, sigma = smooth_masks(s, w, batch.mask)
    torch.testing.assert_close(m[0, :, 0], torch.tensor([0.0, 0.4469767194, 0.1730086107, 0.3329782058, 0.0]),
                               rtol=0, atol=1e-7)
    torch.testing.assert_close(sigma[0, 1:4, 0], torch.tensor([1.0, 2.0, 0.5]), rtol=0, atol=1e-7)


def test_kernel_distance_is_the_rank_among_selectable_pieces_and_classes_are_independent():
    # [CLS] a q b [SEP]: a query piece between a and b; w = 1 at a only, sigma = 1. Rank distance 1:
    #   m_b = sigmoid(e^{-1}) = 0.5909464775 (by positions it would be sigmoid(e^{-4}) = 0.5045787817)
    # class 1 has w = 0 everywhere: m = 0.5 at both pieces, whatever class 0 does
    batch = make_batch([["c", "1", "q", "2", "s"]])
    s = torch.zeros(1, 5, 2)
    w = torch.zeros(1, 5, 2)
    w[0, 1, 0] = 1.0
    m, _ = smooth_masks(s, w, batch.mask)
    assert m[0, 3, 0].item() == pytest.approx(0.5909464775, abs=1e-7)
    assert m[0, 1, 0].item() == pytest.approx(sigmoid(1.0), abs=1e-7)
    assert m[0, 2].tolist() == [0.0, 0.0]  # the query piece is never masked
    torch.testing.assert_close(m[0, [1, 3], 1], torch.tensor([0.5, 0.5]))


def test_masks_built_a_few_rows_at_a_time_are_the_same(monkeypatch):
    torch.manual_seed(0)
    s, w = torch.randn(5, 12, 2) * 0.5, torch.randn(5, 12, 2)
    mask = (torch.rand(5, 12) > 0.2).float()
    whole = smooth_masks(s, w, mask)[0]
    monkeypatch.setattr("ratbench.methods.rtp.KERNEL_ELEMENTS", 12 * 12 * 2 * 2)  # two rows per chunk
    torch.testing.assert_close(smooth_masks(s, w, mask)[0], whole)


def test_regulariser_terms_by_hand():
    # selectable pieces 1..3 (n = 3); class 0 mask (0.2, 0.4, 0.6), mean 0.4; class 1 mask (0.9, 0.6, 0.0), mean 0.5
    # sigma class 0 (3, 4, 1): mean (sigma - 3)^2 = 5/3; class 1 (2, 3, 5): 5/3
    # gold y = 1:  L2 own 0.2 * 0.25 = 0.05; L2 other 0.05 * 0.16 = 0.008; L1 0.001 * 0.9 = 0.0009;
    #              sigma 0.02 * 10/3 = 0.0666666667; smooth: class 0 0.04 + 0.04, class 1 0.09 + 0.36, mean 0.265,
    #              x 0.05 = 0.01325
    # gold y = 0:  L2 own 0.2 * 0.16 = 0.032, L2 other 0.05 * 0.25 = 0.0125, the rest unchanged
    # [CLS], [SEP] and padding hold junk (0.7, sigma 9) that must not count
    batch = make_batch([["c", "1", "2", "3", "s", "."]] * 2, labels=[1, 0])
    m = torch.full((2, 6, 2), 0.7)
    m[:, 1:4, 0] = torch.tensor([0.2, 0.4, 0.6])
    m[:, 1:4, 1] = torch.tensor([0.9, 0.6, 0.0])
    sigma = torch.full((2, 6, 2), 9.0)
    sigma[:, 1:4, 0] = torch.tensor([3.0, 4.0, 1.0])
    sigma[:, 1:4, 1] = torch.tensor([2.0, 3.0, 5.0])
    terms = regulariser_terms(m, sigma, batch.mask, batch.labels)
    expected = {"l2_own": [0.05, 0.032], "l2_other": [0.008, 0.0125], "l1": [0.0009, 0.0009],
                "sigma": [0.0666666667, 0.0666666667], "smooth": [0.01325, 0.01325]}
    for key, values in expected.items():
        torch.testing.assert_close(terms[key], torch.tensor(values), rtol=0, atol=1e-7, msg=key)


def test_rationale_and_complement_terms_by_hand():
    # rationale: -log(sigmoid(l[y]) * 0.9999 + 5e-5): y = 1, l = (0.3, 1.2) -> 0.2633174082 (a softmax would give
    #   -log(sigmoid(0.9)) = 0.3411); y = 0, l = (-0.4, 3.0) -> 0.9129906615
    # complement: ReLU(softmax(l)[y] - 1/2): l = (2, 0): y = 1 -> softmax 0.1192 -> 0;
    #   y = 0 -> 0.8808 - 0.5 = 0.3807970780
    rat, comp = enforcement_terms(torch.tensor([[0.3, 1.2], [-0.4, 3.0]]), torch.tensor([[2.0, 0.0], [2.0, 0.0]]),
                                  torch.tensor([1, 0]))
    torch.testing.assert_close(rat, torch.tensor([0.2633174082, 0.9129906615]), rtol=0, atol=1e-6)
    torch.testing.assert_close(comp, torch.tensor([0.0, 0.3807970780]), rtol=0, atol=1e-6)


def test_blend_mixes_with_the_pad_embedding_at_selectable_pieces_only():
    batch = make_batch([["c", "1", "q", "2", "s", "."]])
    h = torch.arange(1.0, 7.0).view(1, 6, 1).repeat(1, 1, 2)
    h_pad = torch.full((1, 6, 2), -1.0)
    m = torch.tensor([[0.9, 0.25, 0.8, 1.0, 0.7, 0.6]])  # values off the selectable pieces must not matter
    rat, comp = blend(h, h_pad, m, batch.mask)
    # piece 1 (h = 2): 0.25 * 2 + 0.75 * -1 = -0.25 and 0.75 * 2 + 0.25 * -1 = 1.25; piece 3 (h = 4, m = 1): 4 and -1
    assert rat[0, :, 0].tolist() == [1.0, -0.25, 3.0, 4.0, 5.0, 6.0]
    assert comp[0, :, 0].tolist() == [1.0, 1.25, 3.0, -1.0, 5.0, 6.0]


def test_pad_embedding_replaces_selectable_pieces_only():
    model = tiny_model().eval()
    batch = make_batch([["c", "1", "2", "s"]])
    with torch.no_grad():
        h, h_pad = model.embedding_outputs(batch)
        tr = model.player.encoder.transformer
        pad_ids = torch.tensor([[CLS, 0, 0, SEP]])  # [PAD] is id 0
        expected = tr.embed_words(model.embed(pad_ids), batch.token_type)
    torch.testing.assert_close(h_pad, expected)
    torch.testing.assert_close(h_pad[:, [0, 3]], h[:, [0, 3]])  # [CLS]/[SEP] (and their positions) untouched


# -- the frozen copy --------------------------------------------------------------------------------------------------
def test_frozen_copy_equals_the_live_model_after_every_step_and_gets_no_gradient():
    model = tiny_model()
    method = rtp_method(warmup_epochs=0.0, lr=5e-2)
    opt = method.build_optimizers(model)
    frozen_params = list(model.frozen.parameters())
    in_optimizer = {id(p) for group in opt[0].param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen_params}
    assert all(not p.requires_grad for p in frozen_params)
    batch = make_batch(TRAIN_ROWS, labels=[0, 1, 1, 0])
    model.train()
    assert not model.frozen.training and not any(m.training for m in model.frozen.modules())  # always eval
    for _ in range(2):
        before = {k: v.clone() for k, v in model.frozen.state_dict().items()}
        method.train_step(model, batch, opt)
        live = {**{f"encoder.{k}": v for k, v in model.player.encoder.state_dict().items()},
                **{f"classifier.{k}": v for k, v in model.player.classifier.state_dict().items()}}
        after = model.frozen.state_dict()
        assert set(after) == set(live)
        for key, value in after.items():
            assert torch.equal(value, live[key]), key
        moved = [k for k in after if not torch.equal(after[k], before[k])]
        assert len(moved) > 10  # the step changed the model and the copy followed
        assert all(p.grad is None for p in frozen_params)  # gradient passed through it, never into it
    # the rationale and complement terms train the mask head through the frozen copy
    assert model.player.mask_head.weight.grad is not None and model.player.mask_head.weight.grad.abs().sum() > 0


def test_checkpoint_leaves_the_copy_out_and_a_restore_rebuilds_it():
    model = tiny_model()
    method = rtp_method(warmup_epochs=0.0, lr=5e-2)
    model.train()
    method.train_step(model, make_batch(TRAIN_ROWS, labels=[0, 1, 1, 0]), method.build_optimizers(model))
    state = trainable_state(model)
    assert state and not any(k.startswith("frozen.") for k in state) and all(k.startswith("player.") for k in state)
    fresh = tiny_model(seed=5)
    load_trainable_state(fresh, state)
    model.eval(), fresh.eval()
    batch = make_batch(TRAIN_ROWS, labels=[0, 1, 1, 0])
    with torch.no_grad():
        for a, b in zip(method.rationale(model, batch, None), method.rationale(fresh, batch, None)):
            assert torch.equal(a, b)
        for (ka, va), (kb, vb) in zip(model.frozen.state_dict().items(), fresh.frozen.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka  # the copy follows the loaded live weights


# -- only the gold class's mask meets the frozen copy -------------------------------------------------------------
def mask_head_gradient(method: RTP, model: RTPModel, batch: Batch) -> torch.Tensor:
    """d loss / d (mask head output) (B, L, K, 2) for one evaluation of `losses`."""
    store = {}

    def keep(module, inputs, output):
        output.retain_grad()
        store["out"] = output

    handle = model.player.mask_head.register_forward_hook(keep)
    try:
        method.losses(model, batch, masks=True)["loss"].backward()
    finally:
        handle.remove()
    model.zero_grad(set_to_none=True)
    return store["out"].grad.view(*store["out"].shape[:2], 2, 2)


def test_only_the_gold_class_mask_is_trained_by_the_frozen_copy():
    model = tiny_model().eval()  # no dropout anywhere: both passes see the same numbers
    batch = make_batch(TRAIN_ROWS[:2], labels=[0, 1])
    method = rtp_method(warmup_epochs=0.0)
    method.weights = (0.0, 5.0, 5.0, 0.0)  # rationale and complement terms alone
    enforce = mask_head_gradient(method, model, batch)
    assert enforce[0, :, 1].abs().max() == 0 and enforce[1, :, 0].abs().max() == 0  # the other class: nothing
    assert enforce[0, :, 0].abs().max() > 0 and enforce[1, :, 1].abs().max() > 0
    # with every term, the other class's mask moves by the regulariser alone
    method.weights = (2.0, 5.0, 5.0, 3.0)
    full = mask_head_gradient(method, model, batch)
    method.weights = (0.0, 0.0, 0.0, 3.0)
    reg_only = mask_head_gradient(method, model, batch)
    torch.testing.assert_close(full[0, :, 1], reg_only[0, :, 1])
    torch.testing.assert_close(full[1, :, 0], reg_only[1, :, 0])
    assert (full[0, :, 0] - reg_only[0, :, 0]).abs().max() > 1e-6


# -- schedule, accumulation, clipping -------------------------------------------------------------------------
def test_warm_up_trains_the_classifier_alone_and_is_not_selectable():
    model = tiny_model()
    method = rtp_method(n_train=4, warmup_epochs=1.5, epochs=3, lr=1e-3)  # 6 examples of warm-up
    assert method.warmup_examples() == 6
    opt = method.build_optimizers(model)
    batch = make_batch(TRAIN_ROWS[:2], labels=[0, 1])
    model.train()
    active = []
    for step in range(4):
        if step == 0:
            model.eval()  # deterministic: compare the step's loss with CE computed here
            with torch.no_grad():
                logits, _ = model.full(batch)
                ce = torch.nn.functional.cross_entropy(logits, batch.labels).item()
            stats = method.train_step(model, batch, opt)
            assert stats["loss"] == pytest.approx(2.0 * ce, rel=1e-5)  # w_clf = 2, nothing else
            assert model.player.mask_head.weight.grad is None
            assert not method.selectable_epoch(1)
            model.train()
        else:
            stats = method.train_step(model, batch, opt)
        active.append(stats["masks"])
    assert active == [0.0, 0.0, 0.0, 1.0]  # 0, 2, 4 examples seen: warm-up; 6: masks
    assert method.selectable_epoch(3)
    # a run that never leaves the warm-up keeps every epoch selectable
    short = rtp_method(n_train=4, warmup_epochs=3.0, epochs=2)
    assert short.selectable_epoch(1)


def test_micro_batches_accumulate_the_batch_gradient_and_clipping_is_by_value():
    model = tiny_model().eval()  # train_step does not switch modes: no dropout, both runs see the same numbers
    batch = make_batch(TRAIN_ROWS, labels=[0, 1, 1, 0])
    grads = []
    for n in (1, 2):
        method = rtp_method(warmup_epochs=0.0, lr=0.0, clip_value=0.0, micro_batches=n)
        method.train_step(model, batch, method.build_optimizers(model))
        grads.append([p.grad.clone() for p in model.player.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 10
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    biggest = max(g.abs().max().item() for g in grads[0])
    assert biggest > 2e-3
    method = rtp_method(warmup_epochs=0.0, lr=0.0, clip_value=1e-3)
    method.train_step(model, batch, method.build_optimizers(model))
    clipped = [p.grad for p in model.player.parameters() if p.grad is not None]
    assert max(g.abs().max().item() for g in clipped) == pytest.approx(1e-3)
    model.zero_grad(set_to_none=True)


# -- evaluation -------------------------------------------------------------------------------------------------
def word_batch() -> Batch:
    """[CLS] p1..p5 [SEP]: three words, w0 = (p1, p2), w1 = p3, w2 = (p4, p5); gold words w1, w2."""
    batch = make_batch([["c", "1", "2", "3", "4", "5", "s"]])
    batch.word_index = torch.tensor([[-1, 0, 0, 1, 2, 2, -1]])
    batch.word_mask = torch.ones(1, 3)
    batch.word_gold = torch.tensor([[0.0, 1.0, 1.0]])
    return batch


def test_selection_rules_over_words():
    batch = word_batch()
    scores = torch.tensor([[0.99, 0.1, 0.9, 0.5, 0.2, 0.3, 0.99]])  # [CLS]/[SEP] never count
    # word scores (best piece): w0 0.9, w1 0.5, w2 0.3
    # 1/3 of 3 words = 1 -> w0 (both its pieces); 0.6 * 3 = 1.8 -> 2 words: w0, w1
    assert select(scores, batch, "topk", 1 / 3).tolist() == [[0, 1, 1, 0, 0, 0, 0]]
    assert select(scores, batch, "topk", 0.6).tolist() == [[0, 1, 1, 1, 0, 0, 0]]
    # threshold: pieces above 0.5 (0.5 itself is not)
    assert select(scores, batch, "threshold", 0.6).tolist() == [[0, 0, 1, 0, 0, 0, 0]]
    # oracle k: 2 gold words -> the 2 best words, w0 and w1
    assert select(scores, batch, "oracle_k", 0.1).tolist() == [[0, 1, 1, 1, 0, 0, 0]]
    # without words (one piece per token): top round(0.4 * 5) = 2 pieces
    plain = make_batch([["c", "1", "2", "3", "4", "5", "s"]])
    assert select(scores, plain, "topk", 0.4).tolist() == [[0, 0, 1, 1, 0, 0, 0]]
    with pytest.raises(RatbenchError, match="gold"):
        select(scores, plain, "oracle_k", 0.4)


class StandIn:
    """`full` returns fixed logits and class masks: the rationale is a choice between them."""

    def __init__(self, logits: torch.Tensor, masks: torch.Tensor):
        self.logits, self.masks = logits, masks

    def full(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.logits, self.masks


def test_rationale_is_the_predicted_class_mask_and_variants_read_others():
    batch = make_batch([["c", "1", "2", "3", "4", "s"]] * 2, labels=[0, 0])
    masks = torch.zeros(2, 6, 2)
    masks[:, 1:5, 0] = torch.tensor([0.9, 0.1, 0.2, 0.3])  # class 0 likes piece 1
    masks[:, 1:5, 1] = torch.tensor([0.1, 0.2, 0.3, 0.8])  # class 1 likes piece 4
    model = StandIn(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), masks)  # predicts 0, then 1; gold is 0 for both
    method = rtp_method(target_sparsity=25.0)
    z, logits, scores = method.rationale(model, batch, None)
    assert z.tolist() == [[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]  # each row: its predicted class's mask
    assert torch.equal(logits, model.logits) and scores[1, 4].item() == pytest.approx(0.8)
    with method.using({"rtp_mask_class": "gold"}):
        assert method.rationale(model, batch, None)[0].tolist() == [[0, 1, 0, 0, 0, 0]] * 2
    with method.using({"rtp_mask_class": "class:1"}):
        assert method.rationale(model, batch, None)[0].tolist() == [[0, 0, 0, 0, 1, 0]] * 2
    per_class = method.class_rationales(model, batch, None)
    assert per_class.shape == (2, 6, 2) and per_class[0, :, 1].tolist() == [0, 0, 0, 0, 1, 0]
    names = set(method.evaluation_variants())
    assert names == {"select=threshold", "mask=gold", "mask=gold,select=oracle_k", "mask=class:0", "mask=class:1"}
    assert method.label_leak() is None
    assert "gold" in rtp_method(rtp_mask_class="gold").label_leak()


# -- settings, catalog, profile -----------------------------------------------------------------------------------
def test_settings_and_catalog():
    assert rtp_method().weights == (2.0, 5.0, 5.0, 3.0)
    assert rtp_method(loss_weights="wrapper").weights == (1.0, 2.5, 2.5, 1.5)
    for bad in ({"loss_weights": "other"}, {"rtp_select": "oracle_k"}, {"rtp_mask_class": "best"},
                {"frozen_input": "x"}, {"micro_batches": 0}):
        with pytest.raises(RatbenchError):
            rtp_method(**bad)
    with pytest.raises(RatbenchError, match="target_sparsity"):
        RTP(RunConfig(target_sparsity=None))
    info = method_info("rtp")
    assert info.backbones == ("transformer",) and info.sparsity == "top-k" and info.title == "RTP"
    assert info.kind == "explained-classifier" and method_class("rtp") is RTP
    with pytest.raises(RatbenchError, match="transformer"):
        check_backbone("rtp", "gru")
    # inverse class frequencies, mean 1: 3 negatives and 1 positive -> (1/3, 1) / (2/3) = (0.5, 1.5)
    m = RTP(RunConfig(target_sparsity=15.0))
    m.prepare(SimpleNamespace(label_names=["a", "b"]), SimpleNamespace(labels=np.array([0, 0, 0, 1])), {})
    assert m.class_weight.tolist() == [0.5, 1.5]


def test_reference_input_path_re_embeds_the_blend():
    """frozen_input=reembed feeds the blended embedding-layer outputs through the embedding layer again, as the
    reference's `inputs_embeds` call does; the default enters the encoder stack directly."""
    model = tiny_model().eval()
    batch = make_batch([["c", "1", "2", "s"]], labels=[1])
    with torch.no_grad():
        h, _ = model.embedding_outputs(batch)
        tr = model.frozen.encoder.transformer
        direct = model.frozen(h, batch)
        again = model.frozen(h, batch, reembed=True)
        torch.testing.assert_close(direct, model.frozen.classifier(tr.encode(h, batch.attention)[:, 0]))
        torch.testing.assert_close(again, model.frozen.classifier(
            tr.encode(tr.embed_words(h, batch.token_type), batch.attention)[:, 0]))
        assert (direct - again).abs().max() > 1e-4


# -- a short run ------------------------------------------------------------------------------------------------
def test_toy_run_beats_random_at_the_target_sparsity_and_show_prints_each_class(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", "--methods", "rtp", "--datasets", "toy", "--seeds", "1", "--profile", "smoke",
                                 "--set", "backbone=transformer", "--set", "local_mlm_steps=0", "--set", "epochs=4",
                                 "--set", "warmup_epochs=1", "--set", "train_limit=300", "--set", "num_threads=1",
                                 "--results", str(out)])
    assert r.exit_code == 0, r.output
    (path,) = out.glob("runs/toy/rtp/*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "finished", rec.get("error")
    m = rec["metrics"]
    assert abs(m["S"] - 15.0) < 1.0 and abs(m["dev_S"] - 15.0) < 1.0  # top-k at the target
    assert m["F1"] > m["f1_random"] + 5.0 and m["Acc"] > 60.0  # beats both chances
    assert rec["selected_epoch"] >= 2  # epoch 1 is warm-up: never selected
    variants = rec["variants"]
    assert set(variants) == {"select=threshold", "mask=gold", "mask=gold,select=oracle_k", "mask=class:0",
                             "mask=class:1"}
    oracle = variants["mask=gold,select=oracle_k"]
    assert oracle["P"] == pytest.approx(oracle["R"], abs=1e-6)  # k = the gold count: as many selected as gold
    assert rec["method_notes"]["class_wise_masks"] is True
    shown = CliRunner().invoke(app, ["show", "--method", "rtp", "--dataset", "toy", "--seed", "1", "--n", "2",
                                     "--results", str(out)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("test #") == 2
    assert shown.output.count("class 0") == 2 and shown.output.count("class 1") == 2
