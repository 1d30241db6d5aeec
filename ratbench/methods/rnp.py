"""RNP (Lei et al. 2016) in its modern form: Gumbel straight-through, target-sparsity regulariser (§1)."""

from __future__ import annotations

from ratbench.methods.base import Method
from ratbench.methods.registry import register_method


@register_method("rnp")
class RNP(Method):
    """RNP: selector and predictor trained cooperatively with Gumbel-softmax straight-through."""

    citation = "Lei et al., Rationalizing Neural Predictions, EMNLP 2016"
