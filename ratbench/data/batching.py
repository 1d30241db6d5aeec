"""Batches padded only to their own longest example, built with vectorised numpy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ratbench.data.corpus import Split


@dataclass
class Batch:
    ids: torch.Tensor  # (B, L) int64, 0 at padding
    mask: torch.Tensor  # (B, L) float, 1 at selectable real tokens (what regularisers and metrics count)
    lengths: torch.Tensor  # (B,) int64, on CPU (pack_padded_sequence wants CPU lengths)
    labels: torch.Tensor  # (B,) int64
    gold: torch.Tensor | None  # (B, L) float or None
    index: np.ndarray  # example indices into the split
    attention: torch.Tensor | None = None  # (B, L) float, 1 at every real position (defaults to mask)
    forced: torch.Tensor | None = None  # (B, L) float, 1 at positions always read, never selectable
    token_type: torch.Tensor | None = None  # (B, L) int64 segment ids
    word_index: torch.Tensor | None = None  # (B, L) int64, word of each piece, -1 where none
    word_gold: torch.Tensor | None = None  # (B, W) float word-level gold
    word_mask: torch.Tensor | None = None  # (B, W) float, 1 at real words
    # splits with evidence as given (ERASER): each example's evidence (an object array of ExampleEvidence, rows
    # like `index`) and whether it has any (B,) float; rationale metrics skip examples without, Acc does not
    evidence: np.ndarray | None = None
    has_gold: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.attention is None:
            self.attention = self.mask

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
    extra: dict[str, torch.Tensor] = {}
    mask = valid
    if split.forced is not None:
        forced = padded_view(split, index, split.forced, width)[0].astype(bool) & valid
        mask = valid & ~forced
        extra["attention"] = _to(valid.astype(np.float32), device)
        extra["forced"] = _to(forced.astype(np.float32), device)
    if split.token_type is not None:
        extra["token_type"] = _to(padded_view(split, index, split.token_type, width)[0].astype(np.int64), device)
    if split.word_index is not None:
        word = padded_view(split, index, split.word_index.astype(np.int64) + 1, width)[0] - 1  # -1 at padding
        extra["word_index"] = _to(np.ascontiguousarray(word), device)
    if split.word_offsets is not None:
        n_words = split.word_lengths[index]
        cols = np.arange(max(int(n_words.max()) if len(index) else 1, 1))
        real = cols[None, :] < n_words[:, None]
        extra["word_mask"] = _to(real.astype(np.float32), device)
        if split.word_gold is not None:
            pos = np.where(real, split.word_offsets[index][:, None] + cols[None, :], 0)
            extra["word_gold"] = _to(np.where(real, split.word_gold[pos] if split.word_gold.size else 0, 0)
                                     .astype(np.float32), device)
    if split.evidence is not None:
        extra["evidence"] = split.evidence.examples(index)
        extra["has_gold"] = _to(split.evidence.has_gold[index].astype(np.float32), device)
    return Batch(
        ids=_to(ids.astype(np.int64), device),
        mask=_to(mask.astype(np.float32), device),
        lengths=torch.from_numpy(np.maximum(lengths, 1).astype(np.int64)),
        labels=_to(np.ascontiguousarray(split.labels[index]), device),
        gold=gold,
        index=index,
        **extra,
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


def take_rows(batch: Batch, rows: torch.Tensor) -> Batch:
    """The batch restricted to (or repeating) the examples `rows`, every field alike (lengths stay on CPU)."""
    host = rows.cpu()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(batch):
        v = getattr(batch, f.name)
        if v is None:
            values[f.name] = None
        elif isinstance(v, np.ndarray):
            values[f.name] = v[host.numpy()]
        else:
            values[f.name] = v[rows.to(v.device)]
    return Batch(**values)
