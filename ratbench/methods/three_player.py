"""3PLAYER (Yu et al., EMNLP 2019): a complement predictor reads what the selector left out (docs/methods.md#3player).

The original trains the generator with REINFORCE; this is the Gumbel re-host on the shared backbone that
docs/methods.md#3player names as ratbench's default (docs/methods.md#quirks (Q26)).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.methods.base import Method, capped_cross_entropy, frozen, register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.models.gumbel import sample_st
from ratbench.models.players import PredictorPlayer
from ratbench.models.rationalizer import Rationalizer


class ComplementRationalizer(Rationalizer):
    """Selector, predictor on e*z, and a complement predictor of the same shape on e*(1-z)."""

    def __init__(self, backbone: Any, dropout: float = 0.2, num_classes: int = 2):
        super().__init__(backbone, dropout=dropout, num_classes=num_classes)
        self.complement = PredictorPlayer(backbone.encoder(), backbone.width, dropout, num_classes)

    def predict_complement(self, emb: torch.Tensor, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.complement(emb, (1.0 - z) * batch.mask, batch)


INFO = MethodInfo(
    name="3player",
    title="3PLAYER",
    description="3PLAYER: RNP plus an adversarial complement predictor; the selector must leave nothing predictive out",
    family="cooperative + adversarial complement",
    citation="Yu et al., Rethinking Cooperative Rationalization, EMNLP 2019",
    order=80,
    provenance="adaptation",
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class ThreePlayer(Method):
    """3PLAYER: RNP plus an adversarial complement predictor; the selector must leave nothing predictive out."""

    defaults = {"lambda_comp": 1.0}
    model_class = ComplementRationalizer


    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """[selector+predictor, complement]: the complement predictor is updated in its own step only."""
        comp = self.param_groups("complement", model.complement, self.config.lr)
        return [*super().build_optimizers(model), torch.optim.Adam(comp)]

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c = self.config
        main, comp_opt = optimizers
        emb = model.embed(batch.ids, batch.mask)
        z, _ = sample_st(model.select_logits(emb, batch), c.tau)
        # 1) the complement predictor learns from the detached complement
        comp_loss = c.cls_weight * nn.functional.cross_entropy(
            model.predict_complement(emb, z.detach(), batch), batch.labels)
        self.backward_step(comp_loss, [comp_opt])
        # 2) selector and predictor; the complement predictor is frozen but passes gradient to z
        with frozen(model.complement):
            logits = model.predict(emb, z, batch)
            cls = nn.functional.cross_entropy(logits, batch.labels)
            comp_ce = capped_cross_entropy(model.predict_complement(emb, z, batch), batch.labels)
            loss = c.cls_weight * cls - float(self.params["lambda_comp"]) * c.cls_weight * comp_ce
            loss = loss + self.regulariser(z, batch.mask)
            self.backward_step(loss, [main])
        return step_stats(loss, cls, logits, z, batch)
