"""The Method contract: a small class over the shared engine.

The engine owns epochs, devices, seeding, evaluation and model selection. A method says how to build its
model and optimisers and what one training step does; RNP's step is written here once, as hooks that
methods override where they differ (`predictor_mask`, `extra_losses`), or replace `train_step` outright.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch, take_rows
from ratbench.data.corpus import Corpus, Split
from ratbench.methods.catalog import METHODS, MethodInfo
from ratbench.models.gumbel import sample_st
from ratbench.models.rationalizer import Rationalizer

CHANCE_CE = math.log(2.0)  # cross-entropy of a uniform two-class prediction


def capped_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of min(CE, ln 2): an adversarial term that stops paying once the other model is at
    chance, so it cannot run away to infinity (3PLAYER's complement, A2I's instruction)."""
    ce = nn.functional.cross_entropy(logits, labels, reduction="none")
    return ce.clamp(max=CHANCE_CE).mean()


def sparsity_loss(z: torch.Tensor, mask: torch.Tensor, alpha: float, count_padding: bool = False) -> torch.Tensor:
    """|sum(z*p)/sum(p) - alpha|, pooled over the batch (docs/methods.md#shared-pipeline); padding never counts.

    `count_padding` is the published code's form, |sum(z)/sum(p) - alpha|: selections at the padding positions
    of the (256-wide) batch count in the numerator."""
    selected = z.sum() if count_padding else (z * mask).sum()
    return (selected / mask.sum().clamp_min(1.0) - alpha).abs()


def continuity_loss(z: torch.Tensor, mask: torch.Tensor, max_len: int, count_padding: bool = False) -> torch.Tensor:
    """Sum of |z_t - z_{t-1}| over real adjacent pairs, divided by B*(max_len-1).

    The published code averages over all B x (L-1) pairs of its 256-wide batches, padding included. Keeping its
    denominator keeps lambda_continuity's published scale although batches here are padded only to their own
    length; the numerator counts real pairs only, so selections at padding never pay or earn continuity.
    `count_padding` is the published form: every adjacent pair of the batch counts (use with `pad_to=max_len`).
    """
    if count_padding:
        return (z[:, 1:] - z[:, :-1]).abs().sum() / (z.shape[0] * max(z.shape[1] - 1, 1))
    zm = z * mask
    pair = mask[:, 1:] * mask[:, :-1]
    diffs = (zm[:, 1:] - zm[:, :-1]).abs() * pair
    return diffs.sum() / (z.shape[0] * max(max_len - 1, 1))


class Method:
    """RNP semantics by default; subclasses change only what differs."""

    info: ClassVar[MethodInfo]  # set by @register_method: name, title, kind, ... (methods/catalog.py)
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # False when a rationale is too costly to compute every epoch (LIME): epochs are then selected on dev
    # accuracy alone and rationales are computed once, for the selected epoch.
    explain_every_epoch: ClassVar[bool] = True
    # The players: a Rationalizer (sub)class built over the run's backbone.
    model_class: ClassVar[type[nn.Module]] = Rationalizer

    @classmethod
    def dependencies(cls, config: RunConfig) -> tuple[str, ...]:
        """Methods whose run of the same dataset, seed and settings this run reads (the planner adds them)."""
        return cls.info.runs_after

    @property
    def post_hoc(self) -> bool:
        """Post-hoc explainers explain a full-text classifier: their accuracy is not a rationale's accuracy, so
        the table shows Acc as not applicable and the record keeps the classifier's accuracy apart."""
        return self.info.post_hoc

    @property
    def explains_full_text(self) -> bool:
        """The prediction reads the whole text and the rationale explains it (post-hoc explainers and explained
        classifiers): evaluation also records the classifier's accuracy on its rationale alone (`rationale_acc`)."""
        return self.info.kind in ("post-hoc", "explained-classifier")

    def __init__(self, config: RunConfig):
        self.config = config
        self.params = {**self.defaults, **config.method_params}
        self.alpha = config.alpha  # moved by dev calibration between epochs
        self.notes: dict[str, Any] = {}  # method-specific facts the run record keeps (e.g. matched sparsity)

    def evaluation_variants(self) -> dict[str, dict[str, Any]]:
        """Alternative evaluation rules the engine also applies to the selected model and records beside the
        main metrics ({name: params}); e.g. DMR's choice of generator by the gold label or the teacher."""
        return {}

    @contextlib.contextmanager
    def using(self, params: dict[str, Any]) -> Iterator[None]:
        """Temporarily evaluate with other method parameters (see `evaluation_variants`)."""
        saved = dict(self.params)
        self.params.update(params)
        try:
            yield
        finally:
            self.params = saved

    def label_leak(self) -> str | None:
        """Why this run's test numbers use the test labels, or None (report flags such rows, never bolds them)."""
        return None

    # -- lifecycle hooks (no-ops for RNP) -------------------------------------------------------------
    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """Before the model is built: statistics of the training split (NIR), records of other runs
        (post-hoc matched sparsity). `context` holds `results`, `dataset`, `seed`, `profile` when known."""

    def pretrain(self, model: nn.Module, epoch_batches: Callable[[], Iterator[Batch]]) -> None:
        """Before the first epoch: e.g. DMR's teacher. `epoch_batches()` yields one shuffled training epoch."""

    def on_epoch_end(self, epoch: int, optimizers: list[torch.optim.Optimizer]) -> None:
        """After each epoch's evaluation: learning-rate schedules (Inter_RAT)."""

    def selectable_epoch(self, epoch: int) -> bool:
        """Whether the epoch just trained may be selected as the run's model (RTP: not during its warm-up)."""
        return True

    # -- construction ------------------------------------------------------------------------------
    def build_model(self, backbone: Any) -> nn.Module:
        """The players over `backbone` (models/backbones.py: the GRU over frozen vectors or a transformer)."""
        return self.model_class(backbone, dropout=self.config.dropout, num_classes=backbone.num_classes)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam with groups {selector} and {predictor} (docs/methods.md#shared-pipeline), so methods can scale
        them; with `encoder_lr` each player's encoder gets its own group at that rate (transformers: encoders
        1e-5, heads 1e-4 in the published BERT code)."""
        lr = self.config.lr
        groups = [*self.param_groups("selector", model.selector, lr, params=model.selector_parameters()),
                  *self.param_groups("predictor", model.predictor, lr, params=model.predictor_parameters())]
        return [torch.optim.Adam(groups)]

    def param_groups(self, name: str, player: nn.Module, lr: float, scale: float = 1.0,
                     params: list[nn.Parameter] | None = None) -> list[dict[str, Any]]:
        """A player's trainable parameters (or `params`: the player's plus heads a model attaches to it, A2R's
        soft head) as one group at `lr`, or two ({name}.encoder at `encoder_lr` x `scale`, {name} at `lr`) when
        `encoder_lr` is set and the player has an encoder. Methods that scale a player's rate (MGR's i x lr,
        A2I's attacker) pass the same factor as `scale`."""
        params = [p for p in player.parameters() if p.requires_grad] if params is None else list(params)
        encoder = getattr(player, "encoder", None)
        if self.config.encoder_lr is None or encoder is None:
            return [{"params": params, "lr": lr, "name": name}]
        enc = [p for p in encoder.parameters() if p.requires_grad]
        held = {id(p) for p in enc}
        return [{"params": enc, "lr": self.config.encoder_lr * scale, "name": f"{name}.encoder"},
                {"params": [p for p in params if id(p) not in held], "lr": lr, "name": name}]

    # -- training ------------------------------------------------------------------------------------
    def predictor_mask(self, z: torch.Tensor, soft: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The mask the predictor reads during training (VER perturbs it)."""
        return z

    def predictor_embedding(self, model: nn.Module, emb: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The word vectors the predictor reads during training (NIR replaces some inside the rationale)."""
        return emb

    def extra_losses(
        self, model: nn.Module, batch: Batch, emb: torch.Tensor, sel_logits: torch.Tensor, z: torch.Tensor,
        pred_logits: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Terms added to the RNP loss, given the selector's logits, the sampled z and the predictor's logits."""
        return {}

    def before_update(self, optimizers: list[torch.optim.Optimizer], z: torch.Tensor, batch: Batch) -> None:
        """Called after the loss and before backward/step: per-batch learning-rate rules (DR)."""

    def regulariser(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Omega(z) = lambda1 * sparsity + lambda2 * continuity (docs/methods.md#shared-pipeline), the term every method
        shares."""
        c = self.config
        ref = c.pad_to == "max_len"
        return (c.lambda_sparsity * sparsity_loss(z, mask, self.alpha, ref)
                + c.lambda_continuity * continuity_loss(z, mask, c.max_len, ref))

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c = self.config
        emb = model.embed(batch.ids, batch.mask)
        logits = model.select_logits(emb, batch)
        z, soft = sample_st(logits, c.tau)
        pred_emb = self.predictor_embedding(model, emb, z, batch)
        pred_logits = model.predict(pred_emb, self.predictor_mask(z, soft, batch), batch)
        cls = nn.functional.cross_entropy(pred_logits, batch.labels)
        loss = c.cls_weight * cls + self.regulariser(z, batch.mask)
        for value in self.extra_losses(model, batch, emb, logits, z, pred_logits).values():
            loss = loss + value
        self.before_update(optimizers, z, batch)
        self.backward_step(loss, optimizers)
        return step_stats(loss, cls, pred_logits, z, batch)

    @staticmethod
    def backward_step(loss: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        backward(loss)
        for opt in optimizers:
            opt.step()

    def classify(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Logits without a rationale; the engine calls it on epochs where `explain_every_epoch` is False."""
        return self.predict_with(model, batch, torch.ones_like(batch.mask))

    # -- evaluation ----------------------------------------------------------------------------------
    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hard selection (unmasked, as sampled), predictor logits on it, soft selection scores.

        `eval_mode=sample` draws Gumbel noise from `generator` (reference behaviour, reproducible);
        `argmax` selects iff a1 > a0.
        """
        emb = model.embed(batch.ids, batch.mask)
        logits = model.select_logits(emb, batch)
        if self.config.eval_mode == "argmax":
            z = (logits[..., 1] > logits[..., 0]).float()
        else:
            z, _ = sample_st(logits, self.config.tau, generator)
        pred = model.predict(emb, z, batch)
        return z, pred, logits.softmax(-1)[..., 1]

    def select(self, model: nn.Module, batch: Batch, generator: torch.Generator | None) -> torch.Tensor:
        """The hard selection alone, without the predictor (probes sample it several times per step). Methods
        that select differently override `rationale`; for them this falls back to it."""
        if type(self).rationale is not Method.rationale:
            return self.rationale(model, batch, generator)[0]
        logits = model.select_logits(model.embed(batch.ids, batch.mask), batch)
        if self.config.eval_mode == "argmax":
            return (logits[..., 1] > logits[..., 0]).float()
        return sample_st(logits, self.config.tau, generator)[0]

    def class_rationales(self, model: nn.Module, batch: Batch,
                         generator: torch.Generator | None) -> torch.Tensor | None:
        """One hard rationale per class (B, L, K) for methods that have class-wise rationales (RTP), else None."""
        return None

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """Predictor logits when only `keep` (B, L) of the real tokens are visible (comp/suff, probes)."""
        emb = model.embed(batch.ids, batch.mask)
        return model.predict(emb, keep * batch.mask, batch, remove=True)

    # whether `predict_pooled_over` applies (a max-pooling predictor over masked word vectors)
    pools_over_positions: ClassVar[bool] = True

    def predict_pooled_over(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """Predictor logits reading `keep` with max-pooling restricted to `keep`'s positions: the published gold
        probe passes the gold mask as the predictor's padding mask (docs/probes.md#gold)."""
        emb = model.embed(batch.ids, batch.mask)
        pool = keep * batch.mask
        return model.predict(emb, pool, batch, pool=pool)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """While open, the modules' parameters get no gradient (they still pass it on to their inputs); each
    parameter's own flag is restored after, so a table that was frozen before stays frozen."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def register_method(info: MethodInfo) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: binds a method class to its catalog entry (the same INFO object the catalog reads)."""

    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({info.name!r}) must decorate a subclass of Method, got {cls!r}")
        cls.info = info
        cls.name = info.name
        METHODS.add(info.name, cls)
        return cls

    return deco


def step_stats(
    loss: torch.Tensor, cls: torch.Tensor, pred_logits: torch.Tensor, z: torch.Tensor, batch: Batch
) -> dict[str, float]:
    """What the engine accumulates per training step (loss, accuracy, selected and real token counts)."""
    with torch.no_grad():
        zm = z.detach() * batch.mask
        return {
            "loss": float(loss.detach()),
            "cls_loss": float(cls.detach()),
            "correct": float((pred_logits.argmax(-1) == batch.labels).sum()),
            "selected": float(zm.sum()),
            "tokens": float(batch.mask.sum()),
            "selected_ref": float(z.detach().sum()),
        }


def backward(loss: torch.Tensor) -> None:
    """loss.backward() outside mixed precision, stopping on a non-finite loss."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss became {float(loss)}; try a smaller lr")
    with torch.autocast(loss.device.type, enabled=False):
        loss.backward()


def accumulate_parts(batch: Batch, micro_batches: int, losses: Callable[[Batch], dict[str, torch.Tensor]]
                     ) -> list[dict[str, torch.Tensor]]:
    """Gradient accumulation: the batch in `micro_batches` parts, one backward per part of its loss weighted by
    its share of the examples (so the gradients add up to the whole batch's); the parts' terms, detached, with
    scalars weighted the same way (their sum is the batch's value)."""
    n = min(int(micro_batches), len(batch))
    chunks = [None] if n == 1 else list(torch.arange(len(batch), device=batch.labels.device).tensor_split(n))
    parts: list[dict[str, torch.Tensor]] = []
    for rows in chunks:
        part = batch if rows is None else take_rows(batch, rows)
        terms = losses(part)
        share = len(part) / len(batch)
        backward(terms["loss"] * share)
        parts.append({k: v.detach() * share if v.dim() == 0 else v.detach() for k, v in terms.items()})
    return parts
