"""The VER paper's negative-result experiment (Figure 6), as a method the `random-dz` probe trains.

The predictor first learns from random rationales at the sparsity target, then is frozen while the selector
trains against it with RNP's loss. Not a benchmark method: hidden from `--methods all`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from ratbench.data.batching import Batch
from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo


def random_rationale(mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Each real token kept independently with probability `rate`."""
    return (torch.rand(mask.shape, device=mask.device) < rate).float() * mask


INFO = MethodInfo(
    name="rnp-random-dz",
    title="RNP (random dz)",
    description="Predictor pre-trained on random rationales, then frozen while the selector trains (probe random-dz)",
    family="diagnostic (VER paper Figure 6)",
    citation="Liu et al., TACL 2025, Figure 6",
    order=1000,
    kind="diagnostic",
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class RandomDZ(Method):
    """Predictor pre-trained on random rationales, then frozen while the selector trains (probe random-dz)."""

    defaults = {"predictor_epochs": 5}

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """The selector only: the predictor is trained in `pretrain` and then never moves."""
        return [torch.optim.Adam(self.param_groups("selector", model.selector, self.config.lr))]

    def pretrain(self, model: nn.Module, epoch_batches: Callable[[], Iterator[Batch]]) -> None:
        c = self.config
        groups = self.param_groups("predictor", model.predictor, c.lr, params=model.predictor_parameters())
        opt = torch.optim.Adam(groups)
        model.train()
        for _ in range(int(self.params["predictor_epochs"])):
            for batch in epoch_batches():
                emb = model.embed(batch.ids, batch.mask)
                z = random_rationale(batch.mask, self.alpha)
                loss = nn.functional.cross_entropy(model.predict(emb, z, batch), batch.labels)
                self.backward_step(loss, [opt])
        model.predictor.requires_grad_(False)
