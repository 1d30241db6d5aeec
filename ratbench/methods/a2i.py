"""A2I (Liu et al., ICML 2025): an attacker generator searches for rationales that flip the predictor; the
predictor is instructed to stay uninformative on them (docs/methods.md#a2i)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.methods.base import (
    Method,
    capped_cross_entropy,
    continuity_loss,
    frozen,
    register_method,
    sparsity_loss,
    step_stats,
)
from ratbench.methods.catalog import MethodInfo
from ratbench.models.gumbel import sample_st
from ratbench.models.players import SelectorPlayer
from ratbench.models.rationalizer import Rationalizer


class AttackedRationalizer(Rationalizer):
    """The RNP players plus an attacker generator of the selector's shape."""

    def __init__(self, backbone: Any, dropout: float = 0.2, num_classes: int = 2):
        super().__init__(backbone, dropout=dropout, num_classes=num_classes)
        self.attacker = SelectorPlayer(backbone.encoder(), backbone.width, dropout)


def instruction_loss(logits: torch.Tensor, flipped: torch.Tensor, hinge: bool) -> torch.Tensor:
    """The predictor's term on attacker rationales, to be minimised.

    hinge: -mean(min(CE(logits, flipped), ln 2)): pushes p(flipped label) down to at most 1/2 and stops there.
    otherwise: CE against the uniform distribution [0.5, 0.5].
    """
    if hinge:
        return -capped_cross_entropy(logits, flipped)
    return nn.functional.cross_entropy(logits, torch.full_like(logits, 0.5))


INFO = MethodInfo(
    name="a2i",
    title="A2I",
    description="A2I: an attacker finds label-flipping rationales, the predictor learns to ignore them",
    family="cooperative + adversarial attacker",
    citation="Liu et al., Adversarial Cooperative Rationalization, ICML 2025",
    order=70,
    groups=("table1",),
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class A2I(Method):
    """A2I: attack-then-instruct; an attacker finds label-flipping rationales, the predictor learns to ignore them."""

    defaults = {"lambda_adv": 1.0, "use_hinge": True, "gamma_sparsity": 1.0, "gamma_continuity": 1.0,
                "attacker_lr_rate": 1.0, "open_epoch": 0}
    model_class = AttackedRationalizer

    def __init__(self, config):
        super().__init__(config)
        self.epoch = 0  # epochs completed; the attack term is on from `open_epoch`

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        rate = float(self.params["attacker_lr_rate"])
        attacker = torch.optim.Adam(self.param_groups("attacker", model.attacker, self.config.lr * rate, scale=rate))
        return [*super().build_optimizers(model), attacker]

    def on_epoch_end(self, epoch: int, optimizers: list[torch.optim.Optimizer]) -> None:
        self.epoch = epoch

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c = self.config
        main, attacker_opt = optimizers
        flipped = 1 - batch.labels
        attack_on = self.epoch >= int(self.params["open_epoch"])
        emb = model.embed(batch.ids, batch.mask)
        # 1) selector and predictor; the attacker's mask is a constant here
        z, _ = sample_st(model.select_logits(emb, batch), c.tau)
        logits = model.predict(emb, z, batch)
        cls = nn.functional.cross_entropy(logits, batch.labels)
        loss = c.cls_weight * cls + self.regulariser(z, batch.mask)
        if attack_on:
            with torch.no_grad():
                z_a, _ = sample_st(model.attacker(emb, batch), c.tau)
            on_attack = model.predict(emb, z_a, batch)
            loss = loss + float(self.params["lambda_adv"]) * c.cls_weight * instruction_loss(
                on_attack, flipped, bool(self.params["use_hinge"]))
        self.backward_step(loss, [main])
        # 2) the attacker, against the frozen selector and predictor, with a fresh sample
        if attack_on:
            with frozen(model.selector, model.predictor):
                z_a, _ = sample_st(model.attacker(emb, batch), c.tau)
                att_cls = nn.functional.cross_entropy(model.predict(emb, z_a, batch), flipped)
                att_loss = (c.cls_weight * att_cls
                            + float(self.params["gamma_sparsity"]) * c.lambda_sparsity
                            * sparsity_loss(z_a, batch.mask, self.alpha, c.pad_to == "max_len")
                            + float(self.params["gamma_continuity"]) * c.lambda_continuity
                            * continuity_loss(z_a, batch.mask, c.max_len, c.pad_to == "max_len"))
                self.backward_step(att_loss, [attacker_opt])
        return step_stats(loss, cls, logits, z, batch)
