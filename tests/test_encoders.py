"""The length-aware GRU modes must compute exactly what packing computes, and differ from padded."""

from __future__ import annotations

import torch

from ratbench.models.encoders import BiGRU, reverse_within_length


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
