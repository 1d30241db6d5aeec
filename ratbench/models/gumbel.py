"""Gumbel-softmax straight-through sampling with an optional private generator (reproducible evaluation)."""

from __future__ import annotations

import torch


def gumbel_noise(shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    u = torch.empty(shape, device=device).exponential_(generator=generator)
    return -u.log()


def gumbel_soft(logits: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """softmax((a + g) / tau) over the last dimension (2 choices per token)."""
    return ((logits + gumbel_noise(logits.shape, logits.device, generator)) / tau).softmax(-1)


def straight_through(hard_on: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward value `hard_on` (0/1 for 'select'); backward through the soft 'select' probability.

    Equivalent to taking index 1 of onehot(hard) - sg(soft) + soft, which is what the reference computes.
    """
    p = soft[..., 1]
    return hard_on - p.detach() + p


def sample_st(
    logits: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard straight-through selection z (B, L) and the soft Gumbel probabilities (B, L, 2)."""
    soft = gumbel_soft(logits, tau, generator)
    hard = (soft[..., 1] > soft[..., 0]).to(soft.dtype)
    return straight_through(hard, soft), soft
