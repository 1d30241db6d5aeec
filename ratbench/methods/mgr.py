"""MGR (Liu et al., ACL 2023): several generators feed one predictor (docs/methods.md#mgr)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.models.gumbel import sample_st
from ratbench.models.players import SelectorPlayer
from ratbench.models.rationalizer import Rationalizer

INFER_RULES = ("first", "average_sample")


class MultiGenerator(Rationalizer):
    """A Rationalizer with n independently initialised selectors in a ModuleList (so every generator is in
    the state dict, moves to the device and switches to eval mode; the reference keeps a Python list)."""

    def __init__(self, backbone: Any, n: int, dropout: float, num_classes: int = 2):
        super().__init__(backbone, dropout=dropout, num_classes=num_classes)
        extra = [SelectorPlayer(backbone.encoder(), backbone.width, dropout) for _ in range(n - 1)]
        self.generators = nn.ModuleList([self.selector, *extra])


INFO = MethodInfo(
    name="mgr",
    title="MGR",
    description="MGR: n generators with learning rates i*lr feed one predictor (lr/n); the sum of their RNP losses",
    family="cooperative, multiple generators",
    citation="Liu et al., MGR: Multi-generator Based Rationalization, ACL 2023",
    order=120,
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class MGR(Method):
    """MGR: n generators with learning rates i*lr feed one predictor (lr/n); the sum of their RNP losses."""

    defaults = {"n_generators": 3, "infer": "first"}

    def __init__(self, config):
        super().__init__(config)
        if self.params["infer"] not in INFER_RULES:
            raise RatbenchError(f"mgr.infer must be one of {', '.join(INFER_RULES)}, got {self.params['infer']!r}.")
        if int(self.params["n_generators"]) < 1:
            raise RatbenchError("mgr.n_generators must be at least 1.")

    def build_model(self, backbone: Any) -> nn.Module:
        return MultiGenerator(backbone, int(self.params["n_generators"]), self.config.dropout, backbone.num_classes)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """Generator i (1-based) at i*lr, the predictor at lr/n (docs/methods.md#mgr)."""
        lr, n = self.config.lr, len(model.generators)
        groups = [group for i, g in enumerate(model.generators)
                  for group in self.param_groups(f"generator{i + 1}", g, (i + 1) * lr, scale=i + 1)]
        groups += self.param_groups("predictor", model.predictor, lr / n, scale=1 / n,
                                    params=model.predictor_parameters())
        return [torch.optim.Adam(groups)]

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        c = self.config
        emb = model.embed(batch.ids, batch.mask)
        loss = emb.new_zeros(())
        outputs = []
        for gen in model.generators:
            z, _ = sample_st(gen(emb, batch), c.tau)
            logits = model.predict(emb, z, batch)
            cls = nn.functional.cross_entropy(logits, batch.labels)
            loss = loss + c.cls_weight * cls + self.regulariser(z, batch.mask)  # a sum over generators (eq. 4)
            outputs.append((cls, logits, z))
        self.backward_step(loss, optimizers)
        cls, logits, z = outputs[0]  # the generator used at inference under the paper's rule
        return step_stats(loss, cls, logits, z, batch)

    def rationale(self, model: nn.Module, batch: Batch, generator: torch.Generator | None):
        """Paper rule: the first generator. `average_sample` (reference default): Bernoulli draws from the
        generators' mean selection probability, with the evaluation generator."""
        if self.params["infer"] == "first":
            return super().rationale(model, batch, generator)
        emb = model.embed(batch.ids, batch.mask)
        prob = torch.stack([g(emb, batch).softmax(-1)[..., 1] for g in model.generators]).mean(0)
        if self.config.eval_mode == "argmax":
            z = (prob > 0.5).float()
        else:
            z = (torch.rand(prob.shape, device=prob.device, generator=generator) < prob).float()
        return z, model.predict(emb, z, batch), prob
