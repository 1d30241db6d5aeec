"""Batches padded only to their own longest example, built with vectorised numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ratbench.data.corpus import Split


@dataclass
class Batch:
    ids: torch.Tensor  # (B, L) int64, 0 at padding
    mask: torch.Tensor  # (B, L) float, 1 at real tokens
    lengths: torch.Tensor  # (B,) int64, on CPU (pack_padded_sequence wants CPU lengths)
    labels: torch.Tensor  # (B,) int64
    gold: torch.Tensor | None  # (B, L) float or None
    index: np.ndarray  # example indices into the split

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def padded_view(split: Split, index: np.ndarray, values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(values at each example's positions as a (len(index), width) array with 0 at padding, real-token mask),
    for any array aligned with `split.ids` (ids, gold, per-position statistics such as NIR's q_t)."""
    cols = np.arange(width)
    valid = cols[None, :] < split.lengths[index][:, None]
    pos = np.where(valid, split.offsets[index][:, None] + cols[None, :], 0)
    return np.where(valid, values[pos] if values.size else 0, 0), valid


def _to(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """Host array -> device tensor; on CUDA through pinned memory with a non-blocking copy."""
    tensor = torch.from_numpy(array)
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def make_batch(split: Split, index: np.ndarray, device: torch.device | str = "cpu", width: int | None = None) -> Batch:
    """The examples `index` padded to their own longest one, or to `width` (the published code pads every review
    to 256: `pad_to=max_len`)."""
    lengths = split.lengths[index]
    longest = max(int(lengths.max()) if len(index) else 1, 1)
    width = longest if width is None else max(width, longest)
    ids, valid = padded_view(split, index, split.ids, width)
    gold = None
    if split.gold is not None:
        gold = _to(padded_view(split, index, split.gold, width)[0].astype(np.float32), device)
    return Batch(
        ids=_to(ids.astype(np.int64), device),
        mask=_to(valid.astype(np.float32), device),
        lengths=torch.from_numpy(np.maximum(lengths, 1).astype(np.int64)),
        labels=_to(np.ascontiguousarray(split.labels[index]), device),
        gold=gold,
        index=index,
    )


def train_batches(
    split: Split, batch_size: int, rng: np.random.Generator, bucketed: bool = False, bucket_batches: int = 50
) -> list[np.ndarray]:
    """One epoch's batches; the order depends only on `rng` (seeded from the run seed).

    Default: the published composition, consecutive slices of a random permutation. `bucketed`: sort by
    length inside buckets of `bucket_batches` batches and shuffle the batch order, so a batch's examples have
    similar lengths and the packed GRUs take fewer steps per example (faster on CPU, a different data order).
    """
    order = rng.permutation(len(split))
    if not bucketed:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    lengths = split.lengths
    chunk = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def eval_batches(split: Split, batch_size: int, device: torch.device | str = "cpu", order: str = "length",
                 width: int | None = None) -> list[Batch]:
    """Fixed batches built once and reused every epoch: length-sorted (least padding), or in file order
    (`order="dataset"`, as the published evaluation loops; sampled selections then see the same batches)."""
    if order == "length":
        index = np.argsort(split.lengths, kind="stable")
    elif order == "dataset":
        index = np.arange(len(split))
    else:
        raise ValueError(f"eval order must be length or dataset, got {order!r}")
    return [make_batch(split, index[i : i + batch_size], device, width) for i in range(0, len(index), batch_size)]
