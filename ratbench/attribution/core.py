"""What every explainer shares: the return type, input preparation, the gradient context, the reduction.

The attributed variable is always the `emb` tensor the caller passes, and the model is reached only through a
forward function from embeddings, `forward(emb, *args) -> logits` (or a tuple whose first element is the
logits). Everything else the model needs per row (padding mask, lengths, attention mask, token types) goes in
`args`, *not* in a closure: Integrated Gradients, DeepLift and Gradient SHAP evaluate the model on batches of
N * B rows (interpolation steps, input + baseline, noise samples), and captum expands each tensor in `args`
along dimension 0 in the same order as it expands the embeddings. A closure over a B-row mask would be fed an
N * B-row embedding tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

ForwardFn = Callable[..., Any]
REDUCTIONS = ("sum", "l2")


@dataclass(frozen=True)
class Attribution:
    """Per-token attributions of one batch, the common return type of every explainer.

    `scores` (B, L) float32: the attribution of each token to `target`, reduced over the embedding dimension,
    exactly 0 where the attribution mask is 0 (padding, [CLS]/[SEP]). Higher = more evidence *for* the target
    class (signed reductions) or more influence (L2, |grad|, attention).
    `target` (B,) int64: the class each row was explained for (the predicted class unless one was given).
    `delta` (B,) or None: completeness gap of the target logit, (sum of the unreduced attributions over tokens
    and dimensions) - (f(x) - f(baseline)), for the explainers that define one (Integrated Gradients, DeepLift)
    when asked for; under the default sum reduction that is sum(scores) - (f(x) - f(baseline)).
    `logits` (B, C) or None: full-input logits, when the explainer had to compute them anyway.
    `dims` (B, L, D) or None: the attributions before reduction, when `keep_dims=True`.
    All tensors are detached.
    """

    scores: Tensor
    target: Tensor
    method: str
    delta: Tensor | None = None
    logits: Tensor | None = None
    dims: Tensor | None = None


class Passes(NamedTuple):
    """Cost of one `attribute` call in model passes over the batch (a pass = the B rows once)."""

    forward: int
    backward: int


def logits_of(output: Any) -> Tensor:
    """The logits of a forward's output: the tensor itself, or the first element of a tuple/list."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"The forward function must return logits of shape (N, C) (or a tuple starting with them); "
                         f"got {shape}.")
    return out


class EmbeddingForward(nn.Module):
    """The caller's forward as a module over (emb, fixed, attributable, *args).

    Positions outside the attribution mask read `fixed` (the original embeddings) whatever the explainer feeds
    in, so they are constant along every interpolation path, untouched by Gradient SHAP's noise and baseline
    draws, and get an exactly zero gradient (torch.where routes the gradient only to the chosen branch). That is
    what lets completeness hold over the attributable tokens alone: f(x) - f(x') is then the effect of moving
    only those tokens. The module form is what captum's DeepLift needs; `module` is registered as a child so
    DeepLift's hooks reach its nonlinearities.
    """

    def __init__(self, forward: ForwardFn, module: nn.Module | None = None):
        super().__init__()
        self.fn = forward
        if module is not None:
            self.inner = module

    def forward(self, emb: Tensor, fixed: Tensor, attributable: Tensor, *args: Any) -> Tensor:
        return logits_of(self.fn(torch.where(attributable.unsqueeze(-1), emb, fixed), *args))


@dataclass
class Prepared:
    """Validated, detached inputs of one call (built inside `gradient_context`)."""

    model: EmbeddingForward
    emb: Tensor  # (B, L, D) detached, requires no grad; explainers make their own leaf from it
    attributable: Tensor  # (B, L) bool
    args: tuple[Any, ...]  # (fixed, attributable, *caller args), the extra inputs of `model`

    @property
    def batch(self) -> int:
        return int(self.emb.shape[0])

    def leaf(self) -> Tensor:
        """A fresh leaf sharing the embeddings' storage, the only tensor gradients are taken for."""
        return self.emb.detach().requires_grad_(True)

    def full_logits(self) -> Tensor:
        with torch.no_grad():
            return self.model(self.emb, *self.args)


def plain_tensor(t: Tensor) -> Tensor:
    """A detached tensor autograd may save: tensors created under torch.inference_mode cannot be saved for
    backward (the engine evaluates under inference mode), so those are copied."""
    t = t.detach()
    return t.clone() if t.is_inference() else t


@contextmanager
def gradient_context(device: torch.device) -> Iterator[None]:
    """Gradients on, even inside the engine's `torch.inference_mode()` / `torch.no_grad()` evaluation.

    cuDNN's RNN backward refuses to run in eval mode, and attributions are normally taken in eval mode, so on
    CUDA cuDNN is switched off for the call (GRUs fall back to the native kernel; transformers use no cuDNN).
    """
    with torch.inference_mode(False), torch.enable_grad():
        if device.type == "cuda":
            with torch.backends.cudnn.flags(enabled=False):
                yield
        else:
            yield


def prepare(
    forward: ForwardFn, emb: Tensor, mask: Tensor, args: Sequence[Any], module: nn.Module | None = None
) -> Prepared:
    if emb.dim() != 3:
        raise ValueError(f"emb must be (B, L, D) embeddings; got shape {tuple(emb.shape)}.")
    b, length = emb.shape[0], emb.shape[1]
    if tuple(mask.shape) != (b, length):
        raise ValueError(f"mask must be (B, L) = {(b, length)} like emb's first two dimensions; got "
                         f"{tuple(mask.shape)}.")
    rows: list[Any] = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            if a.dim() > 0 and a.shape[0] != b:
                raise ValueError(f"args[{i}] has {a.shape[0]} rows, emb has {b}: every tensor in args must be "
                                 "per row (batch first), so it can be repeated with the embeddings.")
            a = plain_tensor(a)
        rows.append(a)
    x = plain_tensor(emb)
    attributable = plain_tensor(mask).to(device=x.device) > 0.5
    return Prepared(EmbeddingForward(forward, module), x, attributable, (x, attributable, *rows))


def resolve_target(target: int | Sequence[int] | Tensor | None, batch: int, device: torch.device) -> Tensor | None:
    """None, one class for all rows, or one per row -> (B,) int64 on `device` (None stays None)."""
    if target is None:
        return None
    t = torch.as_tensor(target, device=device).long()
    if t.dim() == 0:
        t = t.expand(batch)
    if tuple(t.shape) != (batch,):
        raise ValueError(f"target must be an int or one class per row ({batch}); got shape {tuple(t.shape)}.")
    return t.contiguous()


def check_target(target: Tensor, num_classes: int) -> None:
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"target classes must lie in [0, {num_classes}); got {target.tolist()}.")


def baseline_tensor(baseline: float | Tensor | None, emb: Tensor) -> Tensor:
    """The reference input as (B, L, D): None = zeros, a float everywhere, a (D,) vector at every position
    (e.g. the [PAD] word embedding), an (L, D) or (1, L, D) sequence for every row, or (B, L, D) per row."""
    if baseline is None:
        return torch.zeros_like(emb)
    if not isinstance(baseline, Tensor):
        return torch.full_like(emb, float(baseline))
    base = plain_tensor(baseline).to(device=emb.device, dtype=emb.dtype)
    b, length, d = emb.shape
    if base.dim() == 1 and base.shape[0] == d:
        return base.expand(b, length, d).contiguous()
    if base.dim() == 2 and tuple(base.shape) == (length, d):
        return base.expand(b, length, d).contiguous()
    if base.dim() == 3 and tuple(base.shape[1:]) == (length, d) and base.shape[0] in (1, b):
        return base.expand(b, length, d).contiguous()
    raise ValueError(f"baseline must be a float, (D,), (L, D), (1, L, D) or (B, L, D) with (B, L, D) = "
                     f"{tuple(emb.shape)}; got shape {tuple(base.shape)}.")


def reduce_dims(dims: Tensor, how: str) -> Tensor:
    """(B, L, D) -> (B, L): signed sum over the embedding dimension, or its L2 norm (a magnitude)."""
    if how == "sum":
        return dims.sum(-1)
    if how == "l2":
        return torch.linalg.vector_norm(dims, dim=-1)
    raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {how!r}.")
