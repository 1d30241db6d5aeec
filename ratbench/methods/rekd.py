"""REKD (Dai & Goebel, ICML 2026): a smaller student rationalizer distilled from a trained teacher rationalizer
(docs/methods.md#rekd).

The teacher is another finished ratbench run of the same dataset, seed and data settings (`teacher`, RNP by
default), planned and trained first through the dependency mechanism and restored from its checkpoint; it stays
frozen, in eval mode and outside the student's model (so it is never trained, never checkpointed with the student,
and the engine's `model.train()` never reaches it). Per training batch, at the temperature tau of the schedule:

- student: selector logits a^s, Gumbel noise g^s, log pi^s = log_softmax((a^s + g^s) / tau), z = the
  straight-through hard sample of pi^s, predictor logits o^s on z; RE loss = RNP's (cls_weight * CE + Omega(z));
- teacher (no gradient): its selector's log pi^t = log_softmax((a^t + g^t) / tau) on the same batch, with its own
  noise draw g^t (reference) or the student's (`noise=shared`), and its predictor's logits o^t on the student's z;
- loss = w * RE + (1 - w) * (lambda_r * KL_r + tau^2 * KL_y), w = `re_weight`:
  KL_r = sum over selectable pieces and both classes of KL(pi^t || pi^s), divided by the batch size;
  KL_y = KL(softmax(o^t / tau) || softmax(o^s / tau)) summed over classes, divided by the batch size;
  `dist_part` keeps both, only KL_r (`rationale`) or only KL_y (`prediction`); `hard_label` replaces each KL by the
  cross-entropy of the student's distribution against the teacher's argmax.

tau_s = max(tau0 * exp(-gamma * s), tau_min), gamma = ln(tau0 / tau_min) / (epochs * batches per epoch), with s the
last multiple of `tau_every` at or below the current (1-based) update: tau0 for the first 99 updates, then a step
every 100. The same tau drives both models' Gumbel sampling and the prediction distillation.

Students: `student_backbone=transformer` keeps the first `student_layers` layers of the run's pretrained encoder
(0: half the layers, rounded up), or is another pretrained encoder on the same vocabulary (`student_encoder`: a
hub name, a directory or `minilm`; bert-small under bert-base in the paper), refused unless its tokenizer is the
teacher's; `student_backbone=gru` is a BiGRU (`hidden_size`) over the same pieces, read through the encoder's
frozen input-embedding table (not in the paper). Either way the student reads exactly the teacher's pieces, so
the two selection distributions align position by position and word-level metrics come from the pieces as for
every transformer run.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.data.corpus import Corpus, Split
from ratbench.data.subwords import tokenizer_digest
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, register_method, step_stats
from ratbench.methods.catalog import MethodInfo, method_info
from ratbench.models.backbones import GruBackbone, TransformerBackbone
from ratbench.models.gumbel import gumbel_noise, straight_through
from ratbench.models.rationalizer import Rationalizer
from ratbench.models.transformer import TransformerEncoder

DIST_PARTS = ("both", "rationale", "prediction")
NOISE_MODES = ("independent", "shared")
STUDENT_BACKBONES = ("transformer", "gru")
# what the student reads token by token from the teacher: these settings must be the teacher run's too
DATA_SETTINGS = ("backbone", "encoder", "vectors", "splits", "max_len", "max_query_len", "local_mlm_steps")


# -- the pieces of the objective ---------------------------------------------------------------------------
def temperature(step: int, total_steps: int, tau0: float = 5.0, tau_min: float = 0.1, every: int = 100) -> float:
    """The Gumbel and distillation temperature of the `step`-th update (1-based): tau0 * exp(-gamma * s) floored at
    tau_min, gamma = ln(tau0 / tau_min) / total_steps, s = the last multiple of `every` at or below `step`."""
    gamma = math.log(tau0 / tau_min) / max(total_steps, 1)
    s = every * (step // every)
    return max(tau0 * math.exp(-gamma * s), tau_min)


def perturbed_log_probs(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """log_softmax((a + g) / tau) over the two choices of every position: the Gumbel-perturbed selection
    distribution a straight-through sample is drawn from (its argmax is the hard selection)."""
    return ((logits + noise) / tau).log_softmax(-1)


def selection_distillation(log_teacher: torch.Tensor, log_student: torch.Tensor, mask: torch.Tensor,
                           hard_label: bool = False) -> torch.Tensor:
    """KL(teacher || student) of the per-position two-way distributions (B, L, 2), summed over the positions in
    `mask` (B, L) and both classes, divided by the batch size; `hard_label`: the student's cross-entropy against
    the teacher's argmax instead, with the same sum and divisor."""
    if hard_label:
        target = nn.functional.one_hot(log_teacher.argmax(-1), 2).to(log_student.dtype)
        per_position = -(target * log_student).sum(-1)
    else:
        per_position = (log_teacher.exp() * (log_teacher - log_student)).sum(-1)
    return (per_position * mask).sum() / log_student.shape[0]


def prediction_distillation(teacher_logits: torch.Tensor, student_logits: torch.Tensor, tau: float,
                            hard_label: bool = False) -> torch.Tensor:
    """KL(softmax(o^t / tau) || softmax(o^s / tau)) summed over classes, divided by the batch size (without the
    tau^2 factor); `hard_label`: the cross-entropy of softmax(o^s / tau) against the teacher's argmax."""
    log_s = (student_logits / tau).log_softmax(-1)
    if hard_label:
        return nn.functional.nll_loss(log_s, teacher_logits.argmax(-1))
    log_t = (teacher_logits / tau).log_softmax(-1)
    return (log_t.exp() * (log_t - log_s)).sum() / student_logits.shape[0]


def distillation_loss(kd_r: torch.Tensor, kd_y: torch.Tensor, tau: float, lambda_r: float, dist_part: str
                      ) -> torch.Tensor:
    """lambda_r * KL_r + tau^2 * KL_y (tau^2 keeps the soft-target gradients' scale as tau changes), or one of
    the two (`dist_part`)."""
    if dist_part not in DIST_PARTS:
        raise RatbenchError(f"dist_part must be one of {', '.join(DIST_PARTS)}, got {dist_part!r}.")
    total = torch.zeros((), device=kd_r.device)
    if dist_part in ("both", "rationale"):
        total = total + lambda_r * kd_r
    if dist_part in ("both", "prediction"):
        total = total + tau ** 2 * kd_y
    return total


# -- the student ---------------------------------------------------------------------------------------------
def first_layers(pretrained: TransformerEncoder, layers: int) -> TransformerEncoder:
    """A copy of `pretrained` with only its first `layers` encoder layers (embedding layer included); the frozen
    word-embedding table is shared with the original, not copied."""
    model = pretrained.model
    stack_owner = model.transformer if pretrained.model_type == "distilbert" else model.encoder
    if not 1 <= layers <= len(stack_owner.layer):
        raise RatbenchError(f"student_layers must be between 1 and the encoder's {len(stack_owner.layer)} layers, "
                            f"got {layers}.")
    held_words, held_stack = model.embeddings.word_embeddings, stack_owner.layer
    model.embeddings.word_embeddings = nn.Identity()
    stack_owner.layer = nn.ModuleList(list(held_stack)[:layers])  # only the kept layers are copied
    try:
        student = copy.deepcopy(pretrained)
    finally:
        model.embeddings.word_embeddings, stack_owner.layer = held_words, held_stack
    student.model.embeddings.word_embeddings = held_words
    student.model.config.num_hidden_layers = layers
    return student


INFO = MethodInfo(
    name="rekd",
    title="REKD",
    description="REKD: a smaller student rationalizer distilled from a trained teacher's selections and predictions",
    family="teacher-student distillation",
    citation="Dai & Goebel, Learn from A Rationalist: Distilling Intermediate Interpretable Rationales, ICML 2026",
    order=140,
    backbones=("transformer",),
    runs_after=("rnp",),
    provenance="adaptation",
)


@register_method(INFO)
class REKD(Method):
    """REKD: a smaller student rationalizer distilled from a trained teacher's selections and predictions."""

    defaults: ClassVar[dict[str, Any]] = {
        "teacher": "rnp", "student_backbone": "transformer", "student_encoder": "", "student_layers": 0,
        "re_weight": 0.5,
        "lambda_r": 0.5, "tau0": 5.0, "tau_min": 0.1, "tau_every": 100, "dist_part": "both", "hard_label": False,
        "noise": "independent",
    }

    def __init__(self, config: RunConfig):
        super().__init__(config)
        p = self.params
        self.teacher_method = self.teacher_name(config)
        for key, allowed in (("dist_part", DIST_PARTS), ("noise", NOISE_MODES),
                             ("student_backbone", STUDENT_BACKBONES)):
            if p[key] not in allowed:
                raise RatbenchError(f"rekd: {key} must be one of {', '.join(allowed)}, got {p[key]!r}.")
        if not 0.0 <= float(p["re_weight"]) <= 1.0:
            raise RatbenchError(f"rekd: re_weight mixes the student's own loss with distillation and lies in [0, 1], "
                                f"got {p['re_weight']}.")
        if not 0.0 < float(p["tau_min"]) <= float(p["tau0"]) or int(p["tau_every"]) < 1:
            raise RatbenchError("rekd: the temperature schedule needs 0 < tau_min <= tau0 and tau_every >= 1, got "
                                f"tau0={p['tau0']}, tau_min={p['tau_min']}, tau_every={p['tau_every']}.")
        if p["student_encoder"] and p["student_backbone"] != "transformer":
            raise RatbenchError("rekd: student_encoder names a transformer; it needs student_backbone=transformer.")
        self.teacher: nn.Module | None = None
        self.student_pretrained: TransformerEncoder | None = None
        self.step = 0
        self.total_steps = 1
        self.tau = float(p["tau0"])

    @classmethod
    def teacher_name(cls, config: RunConfig) -> str:
        name = str({**cls.defaults, **config.method_params}["teacher"])
        info = method_info(name)  # an unknown name raises the did-you-mean error
        if name == cls.info.name or info.kind != "rationalizer" or info.sparsity != "alpha":
            raise RatbenchError(f"rekd: the teacher must be another select-then-predict method trained with Gumbel "
                                f"selections (e.g. rnp, ver, fr); {name!r} is not (kind {info.kind}, sparsity "
                                f"{info.sparsity}). Set --set teacher=rnp.")
        return name

    @classmethod
    def dependencies(cls, config: RunConfig) -> tuple[str, ...]:
        """The teacher's run of the same dataset, seed and settings (the planner adds it to the grid)."""
        return (cls.teacher_name(config),)

    # -- the teacher ------------------------------------------------------------------------------------------
    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """Fix the temperature schedule's length and restore the frozen teacher from its record (not when this
        run itself is being restored for evaluation: the student alone is evaluated)."""
        c = self.config
        self.total_steps = c.epochs * max(math.ceil(len(train) / c.batch_size), 1)
        self.step = 0
        if self.params["student_encoder"]:  # loaded here (also when restoring): build_model has only the backbone
            self.student_pretrained = context["load_encoder"](str(self.params["student_encoder"]))
        records = context.get("records")
        if records is None:
            return
        dep = records.get(self.teacher_method)
        dataset, seed = context.get("dataset"), context.get("seed")
        if dep is None:
            raise RatbenchError(
                f"rekd distils the {self.teacher_method} run of {dataset} seed {seed} with the same settings, and that "
                f"run has not finished (or failed: see its record under runs/{dataset}/{self.teacher_method}/). "
                f"Train it first: `ratbench run --methods {self.teacher_method},rekd ...` trains it in the same grid.")
        restored = dep["restore"]()
        check_teacher(restored.record, c, dataset, seed, self.teacher_method, dep["path"])
        if not isinstance(restored.model, Rationalizer) or type(restored.method).rationale is not Method.rationale:
            raise RatbenchError(f"rekd: the teacher {self.teacher_method} does not select by Gumbel sampling of one "
                                "selector's two-way logits, which REKD distils; use rnp, ver, nir, fr, dr, a2r, "
                                "3player or a2i.")
        if restored.corpus.encoder != corpus.encoder or not np.array_equal(restored.corpus.train.ids,
                                                                             corpus.train.ids):
            raise RatbenchError(f"rekd: the teacher {dep['path']} tokenises {dataset} differently from this run "
                                f"(encoder {restored.corpus.encoder} vs {corpus.encoder}); retrain the teacher in "
                                "the same grid with the same settings.")
        teacher = restored.model.eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        self.teacher = teacher
        self.notes.update(teacher=str(dep["path"]), teacher_method=self.teacher_method,
                          teacher_parameters=sum(p.numel() for p in teacher.parameters()))

    def _teacher_on(self, device: torch.device) -> nn.Module:
        if self.teacher is None:
            raise RuntimeError("rekd: prepare() with the teacher's record must run before training.")
        param = next(self.teacher.parameters(), None)
        if param is not None and param.device != device:
            self.teacher.to(device)
        return self.teacher

    # -- the student ------------------------------------------------------------------------------------------
    def student_backbone(self, backbone: Any) -> Any:
        if not isinstance(backbone, TransformerBackbone):
            raise RatbenchError("rekd runs on the transformer backbone (its teacher is a transformer run); set "
                                "--set backbone=transformer.")
        if self.params["student_backbone"] == "gru":
            table = backbone.pretrained.word_embeddings.weight.detach().clone()
            return GruBackbone(table, self.config.hidden_size, self.config.gru_mode, backbone.num_classes)
        if self.student_pretrained is None:  # a smaller copy of the run's (the teacher's) pretrained encoder
            layers = int(self.params["student_layers"]) or math.ceil(backbone.pretrained.num_layers / 2)
            return TransformerBackbone(first_layers(backbone.pretrained, layers), backbone.num_classes)
        own = self.student_pretrained
        if tokenizer_digest(own.tokenizer) != tokenizer_digest(backbone.pretrained.tokenizer):
            raise RatbenchError(
                f"rekd: the student encoder {self.params['student_encoder']!r} tokenises differently from the "
                f"teacher's ({backbone.pretrained.source}); the student must read the teacher's pieces. Choose a "
                "student on the same vocabulary (bert-small or bert-mini under bert-base-uncased, minilm under an "
                "uncased BERT), or leave student_encoder empty to use the first student_layers layers of the "
                "teacher's encoder.")
        layers = int(self.params["student_layers"]) or own.num_layers
        return TransformerBackbone(first_layers(own, layers) if layers != own.num_layers else own,
                                   backbone.num_classes)

    def build_model(self, backbone: Any) -> nn.Module:
        student = self.student_backbone(backbone)
        model = Rationalizer(student, dropout=self.config.dropout, num_classes=backbone.num_classes)
        self.notes["student"] = {**student.describe(),
                                 "student_parameters": sum(p.numel() for p in model.parameters())}
        return model

    # -- training ---------------------------------------------------------------------------------------------
    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c, p = self.config, self.params
        teacher = self._teacher_on(batch.ids.device)
        self.step += 1
        tau = self.tau = temperature(self.step, self.total_steps, float(p["tau0"]), float(p["tau_min"]),
                                     int(p["tau_every"]))
        emb = model.embed(batch.ids, batch.mask)
        logits = model.select_logits(emb, batch)
        noise = gumbel_noise(logits.shape, logits.device)
        log_s = perturbed_log_probs(logits, noise, tau)
        soft = log_s.exp()
        z = straight_through((soft[..., 1] > soft[..., 0]).to(soft.dtype), soft)
        pred = model.predict(emb, z, batch)
        cls = nn.functional.cross_entropy(pred, batch.labels)
        re_loss = c.cls_weight * cls + self.regulariser(z, batch.mask)
        with torch.no_grad():
            t_emb = teacher.embed(batch.ids, batch.mask)
            t_logits = teacher.select_logits(t_emb, batch)
            t_noise = noise if p["noise"] == "shared" else gumbel_noise(t_logits.shape, t_logits.device)
            log_t = perturbed_log_probs(t_logits, t_noise, tau)
            t_pred = teacher.predict(t_emb, z.detach(), batch)  # the teacher's predictor on the student's rationale
        hard = bool(p["hard_label"])
        kd_r = selection_distillation(log_t, log_s, batch.mask, hard)
        kd_y = prediction_distillation(t_pred, pred, tau, hard)
        w = float(p["re_weight"])
        loss = w * re_loss + (1.0 - w) * distillation_loss(kd_r, kd_y, tau, float(p["lambda_r"]), str(p["dist_part"]))
        self.backward_step(loss, optimizers)
        stats = step_stats(loss, cls, pred, z, batch)
        stats.update(tau=tau, kd_r=float(kd_r.detach()), kd_y=float(kd_y.detach()))
        return stats

    def on_epoch_end(self, epoch: int, optimizers: list[torch.optim.Optimizer]) -> None:
        self.notes["tau_last"] = self.tau


def check_teacher(record: Any, config: RunConfig, dataset: str | None, seed: int | None, teacher: str,
                  path: str) -> None:
    """Stop before training unless the teacher run shares the student's dataset, seed and data settings."""
    theirs = dict(record.config or {})
    wanted: list[tuple[str, Any, Any]] = [("dataset", record.dataset, dataset), ("seed", record.seed, seed)]
    wanted += [(key, theirs.get(key), getattr(config, key)) for key in DATA_SETTINGS]
    wrong = [(key, t, s) for key, t, s in wanted if s is not None and t != s]
    if wrong or record.method != teacher:
        what = "; ".join(f"{key} is {t!r} there and {s!r} here" for key, t, s in wrong) or \
            f"it is a {record.method} run, not {teacher}"
        raise RatbenchError(
            f"rekd: the teacher record {path} does not match this student run: {what}. The student learns the "
            f"teacher's selection piece by piece, so both runs must share the dataset, seed and data settings "
            f"({', '.join(DATA_SETTINGS)}). Give {teacher} and rekd the same settings (remove the profile entry or "
            f"--set value that differs for one of them), and let `ratbench run --methods {teacher},rekd` train the "
            "teacher in the same grid.")
