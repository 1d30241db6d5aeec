"""Token attributions over captum, shared by UNIREX, REGEX, the post-hoc baselines and faithfulness columns.

    from ratbench.attribution import attribute, topk_mask

    # GRU backbone: attribute the masked word vectors the classifier reads
    emb = model.embed(batch.ids, batch.mask)
    att = attribute("integrated_gradients", model.from_embeddings, emb, batch.mask,
                    args=(batch.mask, batch.lengths), n_steps=20)
    rationale = topk_mask(att, batch.mask, 0.15)

    # transformer backbone: attribute the word-embedding output only
    words = bert.get_input_embeddings()
    emb = words(input_ids)
    forward = lambda e, am, tt: bert(inputs_embeds=e, attention_mask=am, token_type_ids=tt).logits
    attributable = attention_mask * (1 - special_tokens_mask)
    att = attribute("input_x_gradient", forward, emb, attributable, args=(attention_mask, token_type_ids))

See docs/attribution.md for each explainer's definition, cost and defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ratbench.attribution.core import REDUCTIONS, Attribution, ForwardFn, Passes
from ratbench.attribution.explainers import (
    AttentionWeights,
    DeepLift,
    Explainer,
    GradientExplainer,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    Saliency,
)
from ratbench.attribution.registry import EXPLAINERS, explainer_options, make_explainer
from ratbench.attribution.topk import topk_mask, topk_masks


def attribute(
    name: str,
    forward: ForwardFn,
    emb: Tensor,
    mask: Tensor,
    *,
    args: Sequence[Any] = (),
    target: int | Sequence[int] | Tensor | None = None,
    baseline: float | Tensor | None = None,
    logits: Tensor | None = None,
    module: nn.Module | None = None,
    attention: Tensor | None = None,
    keep_dims: bool = False,
    **options: Any,
) -> Attribution:
    """One call: `make_explainer(name, **options).attribute(forward, emb, mask, ...)` (see Explainer.attribute
    for the arguments; `options` are the explainer's settings, e.g. n_steps=20 for integrated_gradients)."""
    return make_explainer(name, **options).attribute(
        forward, emb, mask, args=args, target=target, baseline=baseline, logits=logits, module=module,
        attention=attention, keep_dims=keep_dims,
    )


__all__ = [
    "EXPLAINERS", "REDUCTIONS", "Attribution", "AttentionWeights", "DeepLift", "Explainer", "ForwardFn",
    "GradientExplainer", "GradientShap", "InputXGradient", "IntegratedGradients", "Passes", "Saliency",
    "attribute", "explainer_options", "make_explainer", "topk_mask", "topk_masks",
]
