"""The length-aware GRU modes must compute exactly what packing computes, and differ from padded."""

from __future__ import annotations

import pytest
import torch

from ratbench.models.encoders import FUSE_MAX_HIDDEN, BiGRU, reverse_within_length


def test_reverse_within_length():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2, 1, 0, 3, 4]
    assert out[1, :, 0].tolist() == [9, 8, 7, 6, 5]


def test_masked_equals_packed_and_ignores_padding_content():
    torch.manual_seed(0)
    gru = BiGRU(4, 6, "masked")
    x = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 4, 2])
    real = (torch.arange(7)[None, :] < lengths[:, None]).unsqueeze(-1)
    masked = gru(x * real, lengths)
    gru.mode = "packed"
    packed = gru(x * real, lengths)
    assert torch.allclose(masked * real, packed * real, atol=1e-6)
    # changing what sits in the padding changes nothing at real positions
    gru.mode = "masked"
    noisy = gru(torch.where(real, x, torch.randn_like(x)), lengths)
    assert torch.allclose(noisy * real, masked * real, atol=1e-6)
    # the reference mode reads padding backwards, so its backward half differs for short rows
    gru.mode = "padded"
    padded = gru(x * real, lengths)
    assert not torch.allclose(padded[1, :4, 3:], masked[1, :4, 3:], atol=1e-4)
    assert torch.allclose(padded[0], masked[0], atol=1e-6)  # full-length row: identical


@pytest.mark.parametrize("hidden", [8, 2 * (FUSE_MAX_HIDDEN + 1)])
def test_masked_mode_has_the_gradients_of_packed_mode(hidden):
    """`masked` (fused into one block-diagonal GRU at small widths) gives packed mode's loss and gradients."""
    torch.manual_seed(1)
    gru = BiGRU(5, hidden, "masked")
    x = torch.randn(3, 9, 5)
    lengths = torch.tensor([9, 5, 1])
    real = (torch.arange(9)[None, :] < lengths[:, None]).unsqueeze(-1)
    grads = {}
    for mode in ("masked", "packed"):
        gru.mode = mode
        gru.zero_grad()
        (gru(x * real, lengths) * real).pow(2).sum().backward()
        grads[mode] = [p.grad.clone() for p in gru.parameters()]
    for a, b in zip(grads["masked"], grads["packed"]):
        assert torch.allclose(a, b, atol=1e-5)
    assert [n for n, _ in gru.named_parameters()] == [f"{d}.{w}_l0" for d in ("fwd", "bwd") for w in
                                                      ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
