"""RNP (Lei et al. 2016) in its modern form: Gumbel straight-through, target-sparsity regulariser
(docs/methods.md#rnp)."""

from __future__ import annotations

from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo

INFO = MethodInfo(
    name="rnp",
    title="RNP",
    description="RNP: selector and predictor trained cooperatively with Gumbel-softmax straight-through",
    family="cooperative selector-predictor",
    citation="Lei et al., Rationalizing Neural Predictions, EMNLP 2016",
    order=30,
    groups=("table1",),
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class RNP(Method):
    """RNP: selector and predictor trained cooperatively with Gumbel-softmax straight-through."""

