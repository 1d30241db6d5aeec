"""DR (Liu et al., KDD 2023): the predictor learns at the generator's rate times the rationale ratio
(docs/methods.md#dr)."""

from __future__ import annotations

import torch

from ratbench.data.batching import Batch
from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo


def predictor_lr(generator_lr: float, z: torch.Tensor, mask: torch.Tensor, floor: float,
                 count_padding: bool = False) -> float:
    """eta_P = eta_G * max(floor, selected/real), and eta_G when nothing is selected (the reference's rule).

    The reference counts selected padding in the ratio (`count_padding`, with `pad_to=max_len`); by default
    only real tokens count."""
    hard = (z.detach() > 0.5).float()
    ratio = float((hard if count_padding else hard * mask).sum() / mask.sum().clamp_min(1.0))
    if ratio == 0.0:
        return generator_lr
    return generator_lr * max(floor, ratio)


INFO = MethodInfo(
    name="dr",
    title="DR",
    description="DR: RNP with the predictor's learning rate tied to the rationale ratio, a Lipschitz restraint",
    family="cooperative, asymmetric learning rates",
    citation="Liu et al., Decoupled Rationalization with Asymmetric Learning Rates, KDD 2023",
    order=110,
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class DR(Method):
    """DR: RNP with the predictor's learning rate tied to the rationale ratio, a Lipschitz restraint."""

    defaults = {"lr_floor": 0.05, "fixed_ratio": 0.0}

    def before_update(self, optimizers: list[torch.optim.Optimizer], z: torch.Tensor, batch: Batch) -> None:
        """Every predictor group (its encoder's too, with `encoder_lr`) at its own rate times the factor.
        `fixed_ratio` k > 0 gives the code's fixed variant eta_P = eta_G / k (the README's ÷10)."""
        fixed = float(self.params["fixed_ratio"])
        for group in optimizers[0].param_groups:
            if str(group.get("name", "")).startswith("predictor"):
                base = group.setdefault("base_lr", group["lr"])
                group["lr"] = base / fixed if fixed > 0 else predictor_lr(
                    base, z, batch.mask, float(self.params["lr_floor"]), self.config.pad_to == "max_len")
