"""The Method contract: a small class over the shared engine.

The engine owns epochs, devices, seeding, evaluation and model selection. A method says how to build its
model and optimisers and what one training step does; RNP's step is written here once, as hooks that
methods override where they differ (`predictor_mask`, `extra_losses`), or replace `train_step` outright.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.models.gumbel import sample_st
from ratbench.models.rationalizer import Rationalizer


def sparsity_loss(z: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """|sum(z*p)/sum(p) - alpha|, pooled over the batch (methods.md §1); padding never counts."""
    return ((z * mask).sum() / mask.sum().clamp_min(1.0) - alpha).abs()


def continuity_loss(z: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    """Mean |z_t - z_{t-1}| over real adjacent pairs, divided by B*(max_len-1).

    The reference averages over all B x 255 pairs, padding included (quirk A3). Keeping its denominator keeps
    lambda_continuity's published scale although batches here are padded only to their own length; the
    numerator counts real pairs only, so selections at padding never pay or earn continuity.
    """
    zm = z * mask
    pair = mask[:, 1:] * mask[:, :-1]
    diffs = (zm[:, 1:] - zm[:, :-1]).abs() * pair
    return diffs.sum() / (z.shape[0] * max(max_len - 1, 1))


class Method:
    """RNP semantics by default; subclasses change only what differs."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: RunConfig):
        self.config = config
        self.params = {**self.defaults, **config.method_params}
        self.alpha = config.alpha  # moved by dev calibration between epochs

    # -- construction ------------------------------------------------------------------------------
    def build_model(self, vectors: torch.Tensor) -> nn.Module:
        c = self.config
        return Rationalizer(vectors, hidden=c.hidden_size, dropout=c.dropout, gru_mode=c.gru_mode)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam with groups {selector} and {everything else} (§0.3), so methods can scale them."""
        groups = [
            {"params": model.selector_parameters(), "lr": self.config.lr, "name": "selector"},
            {"params": model.predictor_parameters(), "lr": self.config.lr, "name": "predictor"},
        ]
        return [torch.optim.Adam(groups)]

    # -- training ------------------------------------------------------------------------------------
    def predictor_mask(self, z: torch.Tensor, soft: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The mask the predictor reads during training (VER perturbs it)."""
        return z

    def extra_losses(
        self, model: nn.Module, batch: Batch, emb: torch.Tensor, z: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {}

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c = self.config
        emb = model.embed(batch.ids, batch.mask)
        logits = model.select_logits(emb, batch.lengths)
        z, soft = sample_st(logits, c.tau)
        pred_logits = model.predict(emb, self.predictor_mask(z, soft, batch), batch.mask, batch.lengths)
        cls = nn.functional.cross_entropy(pred_logits, batch.labels)
        sp = sparsity_loss(z, batch.mask, self.alpha)
        ct = continuity_loss(z, batch.mask, c.max_len)
        loss = c.cls_weight * cls + c.lambda_sparsity * sp + c.lambda_continuity * ct
        extras = self.extra_losses(model, batch, emb, z)
        for value in extras.values():
            loss = loss + value
        self.backward_step(loss, optimizers)
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

    @staticmethod
    def backward_step(loss: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {float(loss)}; try a smaller lr")
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()

    # -- evaluation ----------------------------------------------------------------------------------
    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hard selection (unmasked, as sampled), predictor logits on it, soft selection scores.

        `eval_mode=sample` draws Gumbel noise from `generator` (reference behaviour, reproducible);
        `argmax` selects iff a1 > a0.
        """
        emb = model.embed(batch.ids, batch.mask)
        logits = model.select_logits(emb, batch.lengths)
        if self.config.eval_mode == "argmax":
            z = (logits[..., 1] > logits[..., 0]).float()
        else:
            z, _ = sample_st(logits, self.config.tau, generator)
        pred = model.predict(emb, z, batch.mask, batch.lengths)
        return z, pred, logits.softmax(-1)[..., 1]

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """Predictor logits when only `keep` (B, L) of the real tokens are visible (comp/suff, probes)."""
        emb = model.embed(batch.ids, batch.mask)
        return model.predict(emb, keep * batch.mask, batch.mask, batch.lengths)
