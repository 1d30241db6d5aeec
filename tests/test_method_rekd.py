"""REKD (docs/methods.md#rekd): the temperature schedule, both distillation terms (direction, masking, divisor,
tau^2, hard labels), the student's truncated encoder, the frozen teacher (no gradient, eval mode, outside the
student), the teacher-configuration check, learning a teacher's selection by distillation alone, and a short grid
in which REKD takes its teacher from the RNP run of the same grid.

Models are tiny random BERTs built locally; expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ratbench import api
from ratbench.config import RunConfig, to_dict
from ratbench.data.batching import Batch
from ratbench.data.families.toy import FILLER, NEG, POS, toy_reviews
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_info
from ratbench.methods.rekd import (
    REKD,
    check_teacher,
    distillation_loss,
    first_layers,
    prediction_distillation,
    selection_distillation,
    temperature,
)
from ratbench.methods.rnp import RNP
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.rationalizer import Rationalizer
from ratbench.models.transformer import build_encoder, tiny_config, wordpiece_tokenizer
from ratbench.plan import plan
from ratbench.results.record import load_record

WORDS = POS + NEG + FILLER
CLS, SEP, FIRST = 2, 3, 5  # wordpiece_tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK], then the pieces in order
POLAR = set(range(FIRST, FIRST + len(POS) + len(NEG)))



def encoder(layers: int = 2, dropout: float = 0.0, seed: int = 0):
    tok = wordpiece_tokenizer(WORDS)
    return build_encoder(tiny_config(vocab_size=len(tok), num_layers=layers, dropout=dropout), tok, seed=seed,
                         attn_implementation="eager")


def toy_batches(n: int, batch_size: int, seed: int) -> list[Batch]:
    """[CLS] review [SEP] as pieces (one per word), [CLS]/[SEP] forced; gold = the planted polarity span."""
    reviews = toy_reviews(n, seed)
    out = []
    for start in range(0, n, batch_size):
        part = reviews[start:start + batch_size]
        width = max(len(t) for t, _, _ in part) + 2
        ids = torch.zeros(len(part), width, dtype=torch.long)
        mask, forced, attention, gold = (torch.zeros(len(part), width) for _ in range(4))
        for i, (toks, _, (s, e)) in enumerate(part):
            n_tok = len(toks)
            ids[i, 0], ids[i, n_tok + 1] = CLS, SEP
            ids[i, 1:n_tok + 1] = torch.tensor([FIRST + WORDS.index(w) for w in toks])
            attention[i, :n_tok + 2] = 1
            forced[i, 0] = forced[i, n_tok + 1] = 1
            mask[i, 1:n_tok + 1] = 1
            gold[i, 1 + s:1 + e] = 1
        out.append(Batch(ids=ids, mask=mask, lengths=attention.sum(1).long(),
                         labels=torch.tensor([y for _, y, _ in part]), gold=gold, index=np.arange(len(part)),
                         attention=attention, forced=forced, token_type=torch.zeros_like(ids)))
    return out


def rekd(**params) -> REKD:
    cfg = RunConfig(target_sparsity=params.pop("target_sparsity", 15.0), dropout=params.pop("dropout", 0.0),
                    lr=params.pop("lr", 1e-2), epochs=params.pop("epochs", 1), batch_size=32, hidden_size=32,
                    backbone="transformer", method_params=params)
    return REKD(cfg)


# -- temperature schedule ----------------------------------------------------------------------------------------
def test_temperature_schedule_first_value_decay_and_floor():
    # tau0 = 5, tau_min = 0.1, 1000 updates: gamma = ln(50) / 1000; tau changes only at multiples of 100
    assert temperature(1, 1000) == 5.0 and temperature(99, 1000) == 5.0  # the first value, for 99 updates
    # at update 100: 5 * exp(-100 ln 50 / 1000) = 5 * 50^-0.1 = 5 * 0.6762433 = 3.3812167
    assert temperature(100, 1000) == pytest.approx(3.3812167, abs=1e-6)
    assert temperature(199, 1000) == temperature(100, 1000)
    # at 250 the last step was at 200: 5 * 50^-0.2 = 5 * 0.4573050 = 2.2865248
    assert temperature(250, 1000) == pytest.approx(2.2865248, abs=1e-6)
    # the last update reaches tau_min exactly (5 * 50^-1), later ones stay at the floor (5 * 50^-1.1 = 0.068)
    assert temperature(1000, 1000) == pytest.approx(0.1, abs=1e-12)
    assert temperature(1100, 1000) == 0.1 and temperature(5000, 1000) == 0.1
    # other settings: tau0 = 2, floor 0.5, every 10 of 40 updates: at 20, 2 * exp(-20 ln 4 / 40) = 2 * 4^-0.5 = 1
    assert temperature(25, 40, tau0=2.0, tau_min=0.5, every=10) == pytest.approx(1.0)


# -- distillation terms --------------------------------------------------------------------------------------------
# Two examples, three positions; the teacher's p and the student's q per position; the mask keeps (0, 0), (0, 1),
# (1, 0). KL(p || q):
#   (0, 0): p (.8, .2), q (.5, .5): .8 ln 1.6 + .2 ln .4    = 0.3760031 - 0.1832581 = 0.1927451
#   (0, 1): p (.3, .7), q (.9, .1): .3 ln(1/3) + .7 ln 7    = -0.3295837 + 1.3621371 = 1.0325534
#   (1, 0): p = q                                             = 0
# sum 1.2252985, over the batch size 2: 0.6126493. KL(q || p) would give (0.2231436 + 0.7941596) / 2 = 0.5086516,
# a mean over the 3 kept positions 0.4084328; the masked positions (distinct p, q) must not count.
P = torch.tensor([[[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], [[0.8, 0.2], [0.6, 0.4], [0.5, 0.5]]])
Q = torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]], [[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
# predictions at tau = 2: o^t = (2 ln 3, 0) and (0, 2) -> softmax(o^t / 2) = (.75, .25) and (0.2689414, 0.7310586);
# o^s = (0, 0) and (2 ln 4, 0) -> (.5, .5) and (.8, .2)
#   KL row 1: .75 ln 1.5 + .25 ln .5 = 0.1308120;  row 2: .2689414 ln(.2689414/.8) + .7310586 ln(.7310586/.2)
#   = 0.6544038; sum / 2 = 0.3926079, times tau^2 = 4: 1.5704316
O_T = torch.tensor([[2 * math.log(3), 0.0], [0.0, 2.0]])
O_S = torch.tensor([[0.0, 0.0], [2 * math.log(4), 0.0]])


def test_selection_kl_is_teacher_to_student_over_kept_positions_per_example():
    kl = selection_distillation(P.log(), Q.log(), MASK)
    assert kl.item() == pytest.approx(0.6126493, abs=1e-6)
    assert selection_distillation(Q.log(), P.log(), MASK).item() == pytest.approx(0.5086516, abs=1e-6)


def test_selection_hard_label_is_cross_entropy_against_the_teachers_argmax():
    # argmax p: class 0, class 1, class 0 -> -ln .5 - ln .1 - ln .8 = 0.6931472 + 2.3025851 + 0.2231436, / 2
    assert selection_distillation(P.log(), Q.log(), MASK, hard_label=True).item() == pytest.approx(1.6094379, abs=1e-6)


def test_prediction_kl_direction_temperature_and_tau_squared():
    assert prediction_distillation(O_T, O_S, 2.0).item() == pytest.approx(0.3926079, abs=1e-6)
    # reversed it would be KL(.5,.5 || .75,.25) + KL(.8,.2 || .269,.731) over 2 = (0.1438410 + 0.7946... ) / 2
    assert prediction_distillation(O_S, O_T, 2.0).item() != pytest.approx(0.3926079, abs=1e-3)
    kd_r, kd_y = torch.tensor(0.6126493), prediction_distillation(O_T, O_S, 2.0)
    assert distillation_loss(kd_r, kd_y, 2.0, 0.5, "prediction").item() == pytest.approx(1.5704316, abs=1e-5)
    assert distillation_loss(kd_r, kd_y, 2.0, 0.5, "rationale").item() == pytest.approx(0.3063247, abs=1e-6)
    # both: 0.5 * 0.6126493 + 4 * 0.3926079
    assert distillation_loss(kd_r, kd_y, 2.0, 0.5, "both").item() == pytest.approx(1.8767563, abs=1e-5)
    # hard labels: argmax o^t = 0, 1 -> -(ln .5 + ln .2) / 2 = (0.6931472 + 1.6094379) / 2
    assert prediction_distillation(O_T, O_S, 2.0, hard_label=True).item() == pytest.approx(1.1512925, abs=1e-6)


def test_settings_are_checked():
    with pytest.raises(RatbenchError, match="dist_part"):
        rekd(dist_part="everything")
    with pytest.raises(RatbenchError, match="teacher"):
        rekd(teacher="lime")
    with pytest.raises(RatbenchError, match="teacher"):
        rekd(teacher="rekd")
    assert REKD.dependencies(RunConfig(method_params={"teacher": "ver"})) == ("ver",)
    assert method_info("rekd").backbones == ("transformer",)


# -- the student -----------------------------------------------------------------------------------------------------
def test_first_layers_is_the_first_k_layers_of_the_pretrained_encoder():
    full = encoder(layers=3).eval()
    small = first_layers(full, 2).eval()
    assert (full.num_layers, small.num_layers) == (3, 2)
    assert small.word_embeddings is full.word_embeddings  # shared frozen table, not a copy
    ids = torch.tensor([[CLS, 5, 9, 20, SEP, 0]])
    att = torch.tensor([[1.0, 1, 1, 1, 1, 0]])
    states = full.model(input_ids=ids, attention_mask=att, output_hidden_states=True).hidden_states
    torch.testing.assert_close(small(ids, att)[0, :5], states[2][0, :5], rtol=0, atol=1e-6)
    with pytest.raises(RatbenchError, match="student_layers"):
        first_layers(full, 4)


def test_student_sizes():
    backbone = TransformerBackbone(encoder(layers=2))
    method = rekd()
    half = method.build_model(backbone)  # student_layers = 0: half the teacher's layers, rounded up
    assert half.selector.encoder.transformer.num_layers == 1 and method.notes["student"]["num_layers"] == 1
    gru = rekd(student_backbone="gru").build_model(backbone)
    assert gru.selector.encoder.gru is not None and gru.embed.embedding.weight.shape == (len(WORDS) + 5, 32)


def test_student_encoder_is_a_separately_pretrained_encoder_on_the_same_vocabulary(tmp_path):
    # the paper's case (bert-small under bert-base): a narrower, shallower encoder saved to a directory and loaded
    # through the api's loader, as `--set student_encoder=<dir>` does
    tok = wordpiece_tokenizer(WORDS)
    small = build_encoder(tiny_config(vocab_size=len(tok), hidden_size=16, num_layers=1, intermediate_size=32), tok)
    small.save(tmp_path / "small")
    method = rekd(student_encoder=str(tmp_path / "small"))
    method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1,
                                       "load_encoder": api.encoder_loader(method.config)})
    student = method.build_model(TransformerBackbone(encoder(layers=2)))
    assert method.notes["student"]["hidden_size"] == 16 and method.notes["student"]["num_layers"] == 1
    assert student.selector.head.in_features == 16
    other = wordpiece_tokenizer(WORDS[::-1])  # same pieces, other ids: the student would misread every piece
    method = rekd(student_encoder="other")
    method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1, "load_encoder": lambda name: build_encoder(
        tiny_config(vocab_size=len(other)), other)})
    with pytest.raises(RatbenchError, match="tokenises differently"):
        method.build_model(TransformerBackbone(encoder()))


# -- the teacher -------------------------------------------------------------------------------------------------
def fake_records(teacher: nn.Module, config: RunConfig, dataset: str = "toy", seed: int = 1, **changes):
    record = SimpleNamespace(config={**to_dict(config), **changes}, dataset=dataset, seed=seed, method="rnp")
    restored = SimpleNamespace(record=record, method=RNP(config), model=teacher, corpus=CORPUS)
    return {"rnp": {"path": "runs/toy/rnp/seed1-x.json", "metrics": {}, "restore": lambda: restored}}


CORPUS = SimpleNamespace(encoder="tiny", train=SimpleNamespace(ids=np.arange(7)))


def test_teacher_is_frozen_in_eval_mode_and_outside_the_student():
    torch.manual_seed(0)
    teacher = Rationalizer(TransformerBackbone(encoder(dropout=0.3)), dropout=0.3)  # dropout: eval mode matters
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    method = rekd(dropout=0.2, tau_every=1)
    method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1, "records": fake_records(teacher, method.config)})
    assert method.notes["teacher"].endswith("seed1-x.json")
    student = method.build_model(TransformerBackbone(encoder(seed=1)))
    assert not {id(p) for p in teacher.parameters()} & {id(p) for p in student.parameters()}
    opt = method.build_optimizers(student)
    student.train()
    taus = [method.train_step(student, batch, opt)["tau"] for batch in toy_batches(64, 32, seed=5)]
    assert all(not m.training for m in teacher.modules())
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # 1 epoch of 64 examples in batches of 32: 2 updates; tau every update: 5 * 50^-(1/2) = 0.7071068, then 0.1
    assert method.total_steps == 2 and taus == pytest.approx([0.7071068, 0.1], abs=1e-6)


def test_teacher_with_other_settings_stops_before_training():
    teacher = Rationalizer(TransformerBackbone(encoder()))
    method = rekd()
    for changes, word in (({"encoder": "minilm"}, "encoder"), ({"max_len": 128}, "max_len")):
        records = fake_records(teacher, method.config, **changes)
        with pytest.raises(RatbenchError, match=rf"{word} is .* there and .* here.*--methods rnp,rekd"):
            method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1, "records": records})
    with pytest.raises(RatbenchError, match="seed is 2 there and 1 here"):
        method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1,
                                           "records": fake_records(teacher, method.config, seed=2)})
    with pytest.raises(RatbenchError, match="has not finished"):
        method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1, "records": {}})
    record = SimpleNamespace(config=to_dict(method.config), dataset="toy", seed=1, method="ver")
    with pytest.raises(RatbenchError, match="ver run, not rnp"):
        check_teacher(record, method.config, "toy", 1, "rnp", "p")
    method.prepare(CORPUS, range(64), {"dataset": "toy", "seed": 1})  # restoring this run: no teacher needed
    assert method.teacher is None


@pytest.mark.parametrize("noise", ["shared", "independent"])
def test_an_identical_teacher_gives_zero_distillation_only_under_shared_noise(noise):
    # teacher = an exact copy of the student (dropout 0): on the same batch its selector gives the same logits, so
    # with the student's noise pi^t = pi^s (KL_r = 0); its predictor on the student's rationale gives the student's
    # logits (KL_y = 0), which it would not on the full text or on its own sample. Independent noise: KL_r > 0.
    method = rekd(noise=noise)
    method.total_steps = 10
    torch.manual_seed(0)
    student = method.build_model(TransformerBackbone(encoder()))
    method.teacher = copy.deepcopy(student).eval().requires_grad_(False)
    opt = method.build_optimizers(student)
    student.train()
    stats = method.train_step(student, toy_batches(16, 16, seed=2)[0], opt)
    assert stats["kd_y"] == pytest.approx(0.0, abs=1e-6)
    if noise == "shared":
        assert stats["kd_r"] == pytest.approx(0.0, abs=1e-6)
    else:
        assert stats["kd_r"] > 1.0  # tau = 5 on ~35 pieces per review


class OracleTeacher(nn.Module):
    """Selects exactly the polarity words (logit +-3) and predicts from the kept ones (stand-in for a trained
    RNP): what a student distilled from it alone must learn to select."""

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return ids.float().unsqueeze(-1)

    def select_logits(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        polar = torch.isin(batch.ids, torch.tensor(sorted(POLAR))).float()
        return torch.stack([torch.zeros_like(polar), 6.0 * polar - 3.0], dim=-1)

    def predict(self, emb: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        pos = ((batch.ids >= FIRST) & (batch.ids < FIRST + len(POS))).float()
        score = (z * (2 * pos - 1) * torch.isin(batch.ids, torch.tensor(sorted(POLAR)))).sum(1)
        return torch.stack([-score, score], dim=1)


# The 1-layer transformer student over frozen random piece vectors learns more slowly than the GRU, and diverges
# at lr 1e-2; with independent noise draws it needs about twice the updates (F1 0.77 after 100).
@pytest.mark.parametrize(("student_backbone", "lr", "epochs", "noise"), [("transformer", 3e-3, 12, "shared"),
                                                                       ("gru", 1e-2, 6, "independent")])
def test_distillation_alone_teaches_the_teachers_selection(student_backbone, lr, epochs, noise):
    # re_weight 0: no label, no sparsity term; only KL(pi^t || pi^s) can make the student select polarity words
    method = rekd(re_weight=0.0, dist_part="rationale", student_backbone=student_backbone, tau_every=10, lr=lr,
                  noise=noise)
    method.teacher = OracleTeacher()
    method.total_steps = 10 * epochs
    torch.manual_seed(0)
    student = method.build_model(TransformerBackbone(encoder(layers=2)))
    opt = method.build_optimizers(student)
    train = toy_batches(320, 32, seed=1)
    student.train()
    for _ in range(epochs):
        for batch in train:
            method.train_step(student, batch, opt)
    # tau steps every 10 updates; the last update is the schedule's last: tau = tau_min
    assert method.step == 10 * epochs and method.tau == pytest.approx(0.1)
    student.eval()
    hits = chosen = polar = 0.0
    with torch.no_grad():
        for batch in toy_batches(100, 50, seed=3):
            logits = student.select_logits(student.embed(batch.ids, batch.mask), batch)
            z = (logits[..., 1] > logits[..., 0]).float() * batch.mask
            truth = torch.isin(batch.ids, torch.tensor(sorted(POLAR))).float()
            hits += float((z * truth).sum())
            chosen += float(z.sum())
            polar += float(truth.sum())
    f1 = 2 * hits / (chosen + polar)
    assert f1 > 0.85, f1  # a random student selecting 11 % would be near 0.11


# -- through the grid ------------------------------------------------------------------------------------------
def test_short_grid_rekd_reads_the_rnp_run_of_the_same_grid(tmp_path):
    overrides = {"backbone": "transformer", "local_mlm_steps": 0, "epochs": 3, "train_limit": 200, "test_limit": 60,
                 "num_threads": 1}
    specs = plan(["rekd"], ["toy"], [1], "smoke", overrides, None, "cpu", tmp_path / "data", tmp_path / "res")
    by_method = {s.method: s for s in specs}
    assert sorted(by_method) == ["rekd", "rnp"] and by_method["rekd"].dependencies == {
        "rnp": str(by_method["rnp"].path)}
    outcomes = api.run_grid(specs)
    assert [o.status for o in outcomes] == ["finished", "finished"], [o.error for o in outcomes]
    rec = load_record(by_method["rekd"].path)
    notes = rec.method_notes
    assert notes["teacher"] == str(by_method["rnp"].path) and notes["student"]["num_layers"] == 1
    assert notes["student"]["student_parameters"] < notes["teacher_parameters"]
    assert abs(rec.metrics["dev_S"] - 15.0) <= 3.0, rec.metrics["dev_S"]
    for key in ("Acc", "S", "F1", "F1_subword"):
        assert math.isfinite(rec.metrics[key]), key
    # the checkpoint holds the student alone and restores without the teacher
    restored = api.restore(by_method["rekd"].path, tmp_path / "data")
    assert restored.method.teacher is None and restored.model.selector.encoder.transformer.num_layers == 1
    # a GRU student in a second grid reuses the finished RNP teacher (same settings, same record)
    gru = plan(["rekd"], ["toy"], [1], "smoke", {**overrides, "student_backbone": "gru"}, None, "cpu",
               tmp_path / "data", tmp_path / "res")
    assert {s.method: str(s.path) for s in gru}["rnp"] == str(by_method["rnp"].path)
