"""FR (Liu et al., NeurIPS 2022): selector and predictor fold into one shared encoder (docs/methods.md#fr)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo

INFO = MethodInfo(
    name="fr",
    title="FR",
    description="FR: RNP whose selector and predictor share one BiGRU and LayerNorm; only the heads differ",
    family="cooperative, shared encoder",
    citation="Liu et al., FR: Folded Rationalization with a Unified Encoder, NeurIPS 2022",
    order=100,
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class FR(Method):
    """FR: RNP whose selector and predictor share one BiGRU and LayerNorm; only the heads differ."""


    def build_model(self, backbone: Any) -> nn.Module:
        model = super().build_model(backbone)
        # The official FR shares the LayerNorm too (the VER code's `--fr 1` shares only the GRU).
        model.predictor.encoder = model.selector.encoder
        model.predictor.norm = model.selector.norm
        return model

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam over every parameter once (the shared encoder would otherwise sit in two groups); with
        `encoder_lr` the shared encoder is its own group at that rate."""
        params = [p for p in model.parameters() if p.requires_grad]
        if self.config.encoder_lr is None:
            return [torch.optim.Adam([{"params": params, "lr": self.config.lr, "name": "all"}])]
        enc = [p for p in model.selector.encoder.parameters() if p.requires_grad]
        held = {id(p) for p in enc}
        return [torch.optim.Adam([{"params": enc, "lr": self.config.encoder_lr, "name": "encoder"},
                                  {"params": [p for p in params if id(p) not in held], "lr": self.config.lr,
                                   "name": "all"}])]
