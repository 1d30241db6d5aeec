"""VER (Liu et al., TACL 2025): the predictor trains on a vicinal perturbation of the selected mask
(docs/methods.md#ver)."""

from __future__ import annotations

import torch

from ratbench.data.batching import Batch
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, register_method
from ratbench.methods.catalog import MethodInfo
from ratbench.models.gumbel import straight_through


def vicinal_perturbation(
    z: torch.Tensor,
    mask: torch.Tensor,
    p_flip: float,
    count_mode: str = "batch_mean",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Switch off ~p_flip of the selected real tokens and switch on as many unselected real tokens.

    `batch_mean` (reference): k = max(floor(mean deletions per example), 1) insertions per example, and no
    insertions at all in a batch where some example has no unselected real token. `per_example`: each example
    inserts exactly as many tokens as it deleted. Either way an example with fewer candidates than k gets all
    of them (the reference raises there and loses the step; docs/methods.md#quirks (Q9)). Sampling is vectorised: random
    keys
    ranked per row, the first k candidates win, which is uniform sampling without replacement.
    """
    hard = (z.detach() > 0.5).float() * mask
    u = torch.rand(hard.shape, device=hard.device, generator=generator)
    off = (u < p_flip).float() * hard
    candidates = (1.0 - hard) * mask
    n_cand = candidates.sum(1)
    if count_mode == "batch_mean":
        k = max(int(off.sum().item() // hard.shape[0]), 1)
        if bool((n_cand == 0).any()):
            k_b = torch.zeros_like(n_cand)
        else:
            k_b = torch.full_like(n_cand, float(k))
    elif count_mode == "per_example":
        k_b = off.sum(1)
    else:
        raise RatbenchError(f"count_mode must be batch_mean or per_example, got {count_mode!r}.")
    k_b = torch.minimum(k_b, n_cand)
    keys = torch.rand(hard.shape, device=hard.device, generator=generator).masked_fill(candidates == 0, -1.0)
    order = keys.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    on = (ranks < k_b.unsqueeze(1)).float() * candidates
    return hard - off + on


INFO = MethodInfo(
    name="ver",
    title="VER",
    description="VER: RNP whose predictor is trained on vicinal (randomly flipped) rationales; evaluation unperturbed",
    family="cooperative + vicinal perturbation",
    citation="Liu et al., Practical Gaps in Using Cross Entropy to Implement MMI for Rationalization, TACL 2025",
    order=900,
    groups=("table1",),
    backbones=("gru", "transformer"),
)


@register_method(INFO)
class VER(Method):
    """VER: RNP whose predictor is trained on vicinal (randomly flipped) rationales; evaluation unperturbed."""

    defaults = {"p_flip": 0.3, "count_mode": "batch_mean"}

    def predictor_mask(self, z: torch.Tensor, soft: torch.Tensor, batch: Batch) -> torch.Tensor:
        p_flip = float(self.params["p_flip"])
        if p_flip == 0.0:
            # no perturbation at all, and no random draws: VER at p = 0 is RNP step for step. (The published
            # code would still switch on one unselected token per review: k = max(floor(mean deletions), 1).)
            return z
        perturbed = vicinal_perturbation(z, batch.mask, p_flip, str(self.params["count_mode"]))
        # Outside real tokens keep the sampled value: the predictor never reads padding anyway.
        perturbed = perturbed + (z.detach() > 0.5).float() * (1.0 - batch.mask)
        return straight_through(perturbed, soft)
