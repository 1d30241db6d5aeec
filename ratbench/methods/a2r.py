"""A2R (Yu et al., NeurIPS 2021): a soft attention path over the full text keeps the selector's gradient
informative (docs/methods.md#a2r). Token-level Gumbel re-host, ratbench's default (docs/methods.md#quirks (Q26))."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo
from ratbench.models.rationalizer import NEG_INF, Rationalizer


class SoftPathRationalizer(Rationalizer):
    """The RNP players plus a second predictor head W_s for the attention-pooled full text (shared encoder)."""

    def __init__(self, backbone: Any, dropout: float = 0.2, num_classes: int = 2):
        super().__init__(backbone, dropout=dropout, num_classes=num_classes)
        self.soft_head = nn.Linear(backbone.width, num_classes)

    def predictor_parameters(self) -> list[nn.Parameter]:
        return [*super().predictor_parameters(), *self.soft_head.parameters()]

    def predict_soft(self, emb: torch.Tensor, sel_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """alpha = softmax over real tokens of (a1 - a0); logits of W_s(sum_t alpha_t h_t) on the full text."""
        scores = (sel_logits[..., 1] - sel_logits[..., 0]).masked_fill(batch.mask == 0, NEG_INF)
        alpha = scores.softmax(-1)
        h = self.predictor.states(emb, None, batch)
        return self.soft_head(self.predictor.dropout((alpha.unsqueeze(-1) * h).sum(1)))


def js_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean over the batch of JS(P||Q) = KL(P||M)/2 + KL(Q||M)/2, M = (P+Q)/2 (natural log)."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor) -> torch.Tensor:
        return (a * ((a + eps).log() - (m + eps).log())).sum(-1)

    return (0.5 * kl(p) + 0.5 * kl(q)).mean()


INFO = MethodInfo(
    name="a2r",
    title="A2R",
    description="A2R: hard rationale path plus a soft attention path sharing the predictor encoder, tied by JS",
    family="cooperative, soft + hard paths",
    citation="Yu et al., Understanding Interlocking Dynamics of Cooperative Rationalization, NeurIPS 2021",
    order=90,
    provenance="adaptation",
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class A2R(Method):
    """A2R: hard rationale path plus a soft attention path sharing the predictor encoder, tied by JS."""

    defaults = {"lambda_js": 1.0}
    model_class = SoftPathRationalizer

    def extra_losses(self, model, batch, emb, sel_logits, z, pred_logits):
        soft_logits = model.predict_soft(emb, sel_logits, batch)
        cls_soft = nn.functional.cross_entropy(soft_logits, batch.labels)
        js = js_divergence(soft_logits.softmax(-1), pred_logits.softmax(-1))
        return {"soft_cls": self.config.cls_weight * cls_soft, "js": float(self.params["lambda_js"]) * js}
