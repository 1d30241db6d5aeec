"""The six explainers: Input x Gradient, Saliency, Integrated Gradients, DeepLift, Gradient SHAP, attention.

Every gradient explainer attributes the `emb` tensor it is given and nothing upstream of it:
- GRU backbone: the masked word vectors the classifier reads (frozen GloVe rows times the 0/1 mask);
- transformer backbone: the *word-embedding* output, passed to the encoder as `inputs_embeds`; position and
  segment embeddings, which a Hugging Face encoder adds to `inputs_embeds` itself, receive no attribution.

Gradients are taken with `torch.autograd.grad` with respect to a fresh leaf copy of `emb` only (captum does
the same internally), so no `.grad` is written to model parameters and `requires_grad` is never toggled.
Parameters that require grad still make autograd record their branches during the forward (more memory for
saved activations), but the backward evaluates only the paths that lead to `emb`: no weight-gradient
products are computed. Attributions are detached; they carry no gradient back into the caller's graph.

Rows are assumed independent (no batch statistics across rows, i.e. no BatchNorm in train mode): a batch's
target logits are summed before the backward, which gives each row its own gradient only then. Dropout in
train mode makes every pass, and so every attribution, stochastic; call explainers with the model in eval mode
unless a training objective wants otherwise.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ratbench.attribution.core import (
    REDUCTIONS,
    Attribution,
    ForwardFn,
    Passes,
    Prepared,
    baseline_tensor,
    check_target,
    gradient_context,
    logits_of,
    plain_tensor,
    prepare,
    reduce_dims,
    resolve_target,
)
from ratbench.attribution.registry import register_explainer

IG_METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
TargetArg = int | Sequence[int] | Tensor | None


class Explainer(ABC):
    """Scores tokens for a class. One call signature for all, so `attribution=<name>` is swappable: arguments
    an explainer does not use (`baseline` for Input x Gradient, `module` outside DeepLift, `attention` outside
    the attention pass-through) are accepted and ignored."""

    name: ClassVar[str]

    @abstractmethod
    def attribute(
        self,
        forward: ForwardFn,
        emb: Tensor,
        mask: Tensor,
        *,
        args: Sequence[Any] = (),
        target: TargetArg = None,
        baseline: float | Tensor | None = None,
        logits: Tensor | None = None,
        module: nn.Module | None = None,
        attention: Tensor | None = None,
        keep_dims: bool = False,
    ) -> Attribution:
        """Attributions of `forward(emb, *args)`'s target logit to each token of `emb`.

        forward: `forward(emb, *args) -> logits (N, C)` or a tuple starting with the logits (a second element,
            if any, is read by the attention pass-through). It must accept N * B rows: every tensor in `args`
            is repeated along dimension 0 together with `emb`.
        emb: (B, L, D) the embeddings to attribute (see the module docstring for which embedding that is).
        mask: (B, L) 1 at tokens that may receive attribution, 0 at padding and special tokens ([CLS], [SEP]).
            Positions at 0 are held at their input embedding in every pass and score exactly 0.
        args: per-row extra inputs of `forward` (padding/attention mask, lengths, token types), batch first.
        target: class per row (int or (B,)); default the predicted class, argmax of `logits` if given, else of
            one extra forward pass.
        baseline: reference input: None = zeros, a float, (D,) (e.g. the [PAD] word embedding), (L, D),
            (1, L, D) or per-row (B, L, D). Used only at attributable positions.
        logits: (B, C) full-input logits if the caller already has them (saves the target pass).
        module: the model behind `forward`; DeepLift attaches its rules to this module's nonlinearities (and
            to those of `forward` itself when `forward` is an nn.Module).
        attention: (B, L) model-provided attention weights for the attention pass-through.
        keep_dims: also return the (B, L, D) attributions before reduction.
        """

    @abstractmethod
    def passes(self, target_known: bool = False) -> Passes:
        """Model passes over the batch per call; `target_known`: a target or the full logits are passed in."""


def _known_target(target: TargetArg, logits: Tensor | None, batch: int, device: torch.device) -> Tensor | None:
    t = resolve_target(target, batch, device)
    if t is None and logits is not None:
        full = logits_of(logits)
        if full.shape[0] != batch:
            raise ValueError(f"logits has {full.shape[0]} rows, emb has {batch}.")
        t = full.detach().argmax(-1).to(device)
    if t is not None and logits is not None:
        check_target(t, logits_of(logits).shape[1])
    return t


def _gradient(prep: Prepared, target: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """(d target logit / d emb (B, L, D), target, full logits) from one forward and one backward pass; the
    predicted class comes from the same forward, so a default target costs nothing extra."""
    x = prep.leaf()
    out = prep.model(x, *prep.args)
    t = out.detach().argmax(-1) if target is None else target
    check_target(t, out.shape[1])
    (grad,) = torch.autograd.grad(out.gather(1, t.unsqueeze(1)).sum(), x)
    return grad, t, out.detach()


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run captum's sampling (numpy for path positions and baseline draws, torch for noise) from `seed` and
    leave the caller's global generators exactly as they were; None = use and advance the global state."""
    if seed is None:
        yield
        return
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)


@dataclass(frozen=True)
class GradientExplainer(Explainer):
    """Shared driver of the gradient explainers: validation, gradient context, masking and reduction."""

    reduce: str = "sum"

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {self.reduce!r}.")

    @abstractmethod
    def _dims(
        self, prep: Prepared, target: Tensor | None, baseline: float | Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(attributions (B, L, D), target (B,), delta (B,) or None, full logits or None)."""

    def attribute(
        self,
        forward: ForwardFn,
        emb: Tensor,
        mask: Tensor,
        *,
        args: Sequence[Any] = (),
        target: TargetArg = None,
        baseline: float | Tensor | None = None,
        logits: Tensor | None = None,
        module: nn.Module | None = None,
        attention: Tensor | None = None,
        keep_dims: bool = False,
    ) -> Attribution:
        with gradient_context(emb.device):
            prep = prepare(forward, emb, mask, args, module)
            known = _known_target(target, logits, prep.batch, prep.emb.device)
            dims, t, delta, full = self._dims(prep, known, baseline)
            dims = torch.where(prep.attributable.unsqueeze(-1), dims.detach(), dims.new_zeros(()))
            scores = reduce_dims(dims, self.reduce).float()
        if full is None and logits is not None:
            full = logits_of(logits).detach()
        return Attribution(
            scores=scores,
            target=t.detach(),
            method=self.name,
            delta=None if delta is None else delta.detach().float(),
            logits=full,
            dims=dims if keep_dims else None,
        )


@register_explainer
@dataclass(frozen=True)
class InputXGradient(GradientExplainer):
    """Input x Gradient: e_t * d f_c / d e_t, reduced over the embedding dimension (sum by default).

    Plain autograd, not captum's InputXGradient: the numbers are identical (the same product of one
    gradient), and computing the gradient ourselves takes the predicted class from the forward pass that the
    gradient needs anyway, where captum would first need a separate forward to know the target.
    Cost: 1 forward + 1 backward.
    """

    name: ClassVar[str] = "input_x_gradient"

    def _dims(self, prep, target, baseline):  # type: ignore[override]
        grad, t, full = _gradient(prep, target)
        return grad * prep.emb, t, None, full

    def passes(self, target_known: bool = False) -> Passes:
        return Passes(1, 1)


@register_explainer
@dataclass(frozen=True)
class Saliency(GradientExplainer):
    """Saliency: |d f_c / d e_t| per dimension (signed=True keeps the sign), reduced over the dimension.

    With the default sum reduction that is the L1 norm of the token's gradient; `reduce="l2"` gives its L2
    norm (sign-free either way). Plain autograd for the reason given under Input x Gradient.
    Cost: 1 forward + 1 backward.
    """

    name: ClassVar[str] = "saliency"
    signed: bool = False

    def _dims(self, prep, target, baseline):  # type: ignore[override]
        grad, t, full = _gradient(prep, target)
        return (grad if self.signed else grad.abs()), t, None, full

    def passes(self, target_known: bool = False) -> Passes:
        return Passes(1, 1)


def _quadrature_correction(integration: str, n_steps: int) -> float:
    """1 / (sum of captum's quadrature weights): the weights of a rule over [0, 1] must sum to 1.

    captum 0.9's "riemann_trapezoid" evaluates n points spaced 1/(n-1) apart but weights them 1/n (endpoints
    1/(2n)), so its weights sum to (n-1)/n and every attribution is (n-1)/n too small, even for a linear model.
    The trapezoid rule's own weights are those times n/(n-1). Reading the weights from captum rather than
    hard-coding the factor keeps this right if captum changes them.
    """
    try:
        from captum.attr._utils.approximation_methods import approximation_parameters
    except ImportError:  # the helper moved: trust the rule as captum applies it
        return 1.0
    total = float(sum(approximation_parameters(integration)[0](n_steps)))
    return 1.0 / total if abs(total - 1.0) > 1e-6 else 1.0


@register_explainer
@dataclass(frozen=True)
class IntegratedGradients(GradientExplainer):
    """Integrated Gradients (captum): (e - e') * the mean gradient along the straight path from the baseline
    e' to e, by `integration` ("gausslegendre" or one of captum's Riemann rules) over `n_steps` points.

    Completeness: summed over tokens and dimensions, the attributions equal f_c(x) - f_c(x') up to the
    quadrature error, which `delta` reports per row (x' = baseline at attributable tokens, input elsewhere).
    "riemann_trapezoid" is rescaled to the true trapezoid weights (captum's sum to (n-1)/n; see
    `_quadrature_correction`).
    `internal_batch_size` caps the rows per forward (captum semantics; at least one whole step of B rows).
    Cost: n_steps forward + n_steps backward passes, +1 forward for a default target, +2 forwards for delta.
    """

    name: ClassVar[str] = "integrated_gradients"
    n_steps: int = 50
    integration: str = "gausslegendre"
    internal_batch_size: int | None = None
    return_delta: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.integration not in IG_METHODS:
            raise ValueError(f"integration must be one of {', '.join(IG_METHODS)}; got {self.integration!r}.")
        if int(self.n_steps) < (1 if self.integration == "gausslegendre" else 2):
            raise ValueError(f"n_steps must be at least 1 (2 for the Riemann rules); got {self.n_steps}.")
        if self.internal_batch_size is not None and int(self.internal_batch_size) < 1:
            raise ValueError(f"internal_batch_size must be positive or None; got {self.internal_batch_size}.")

    def _dims(self, prep, target, baseline):  # type: ignore[override]
        from captum.attr import IntegratedGradients as CaptumIG

        full = None
        if target is None:
            full = prep.full_logits()
            target = full.argmax(-1)
        out = CaptumIG(prep.model, multiply_by_inputs=True).attribute(
            prep.leaf(),
            baselines=baseline_tensor(baseline, prep.emb),
            target=target,
            additional_forward_args=prep.args,
            n_steps=int(self.n_steps),
            method=self.integration,
            internal_batch_size=None if self.internal_batch_size is None else int(self.internal_batch_size),
            return_convergence_delta=self.return_delta,
        )
        dims, delta = out if self.return_delta else (out, None)
        scale = _quadrature_correction(self.integration, int(self.n_steps))
        if scale != 1.0:
            # captum's delta is sum(attributions) - (f(x) - f(x')); rescaling the attributions moves it by
            # (scale - 1) * sum(attributions)
            if delta is not None:
                delta = delta + (scale - 1.0) * dims.flatten(1).sum(1).to(delta.dtype)
            dims = dims * scale
        return dims, target, delta, full

    def passes(self, target_known: bool = False) -> Passes:
        n = int(self.n_steps)
        return Passes(n + (0 if target_known else 1) + (2 if self.return_delta else 0), n)


@register_explainer
@dataclass(frozen=True)
class DeepLift(GradientExplainer):
    """DeepLift, Rescale rule (captum): (e - e') times multipliers that replace each supported nonlinearity's
    gradient by the ratio of its output and input differences between input and baseline.

    captum needs an nn.Module and finds the nonlinearities to rewrite among its submodules, so pass the model
    as `module`. Only *module* instances of nn.ReLU, ELU, LeakyReLU, Sigmoid, Tanh, Softplus, Softmax and
    MaxPool are rewritten, each used once per forward. Everything else back-propagates the plain gradient at
    the input: nn.GRU's gates are fused inside the op, attention uses functional tanh/softmax, max-over-time
    pooling is a tensor op, transformers' GELU/LayerNorm have no rule. On ratbench's GRU classifiers, and
    largely on a BERT encoder, DeepLift therefore equals gradient x (e - e'), i.e. Input x Gradient for a zero
    baseline, and its `delta` (summation-to-delta gap) is not small. Input and baseline run as one 2B-row
    batch (BatchNorm in train mode would mix them).
    Cost: 2 forward + 2 backward passes (the 2B-row batch), +1 forward for a default target, +2 for delta.
    """

    name: ClassVar[str] = "deeplift"
    eps: float = 1e-10
    return_delta: bool = True

    def _dims(self, prep, target, baseline):  # type: ignore[override]
        from captum.attr import DeepLift as CaptumDeepLift

        full = None
        if target is None:
            full = prep.full_logits()
            target = full.argmax(-1)
        with warnings.catch_warnings():
            # captum announces its (temporary) hooks on every call
            warnings.filterwarnings("ignore", message=r"\s*Setting forward, backward hooks")
            out = CaptumDeepLift(prep.model, multiply_by_inputs=True, eps=float(self.eps)).attribute(
                prep.leaf(),
                baselines=baseline_tensor(baseline, prep.emb),
                target=target,
                additional_forward_args=prep.args,
                return_convergence_delta=self.return_delta,
            )
        dims, delta = out if self.return_delta else (out, None)
        return dims, target, delta, full

    def passes(self, target_known: bool = False) -> Passes:
        return Passes(2 + (0 if target_known else 1) + (2 if self.return_delta else 0), 2)


def _baseline_distribution(baseline: float | Tensor | None, emb: Tensor) -> Tensor:
    """Gradient SHAP's reference set (K, L, D): one reference for None / float / (D,) / (L, D), or the K rows
    of a 3-D tensor (captum draws one of them at random per sample; they are *not* matched to rows)."""
    if isinstance(baseline, Tensor) and baseline.dim() == 3:
        if tuple(baseline.shape[1:]) != tuple(emb.shape[1:]):
            raise ValueError(f"a 3-D gradient_shap baseline must be (K, L, D) with (L, D) = {tuple(emb.shape[1:])}; "
                             f"got {tuple(baseline.shape)}.")
        return plain_tensor(baseline).to(device=emb.device, dtype=emb.dtype)
    return baseline_tensor(baseline, emb[:1])


@register_explainer
@dataclass(frozen=True)
class GradientShap(GradientExplainer):
    """Gradient SHAP (captum): the mean over `n_samples` draws of grad(x'' + a (x~ - x'')) * (x~ - x''), with
    x~ = e plus Gaussian noise of std `stdevs`, a ~ U(0, 1) and x'' drawn from the baseline set.

    The noise touches attributable tokens only. `seed` makes the draws reproducible and leaves the global
    torch/numpy generators untouched (None = use the global generators); draws depend on the batch's
    composition, so an example's attribution may differ between batchings. No delta: completeness holds only
    in expectation. Cost: n_samples forward + n_samples backward passes, +1 forward for a default target.
    """

    name: ClassVar[str] = "gradient_shap"
    n_samples: int = 5
    stdevs: float = 0.0
    seed: int | None = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.n_samples) < 1:
            raise ValueError(f"n_samples must be at least 1; got {self.n_samples}.")
        if float(self.stdevs) < 0:
            raise ValueError(f"stdevs must be non-negative; got {self.stdevs}.")

    def _dims(self, prep, target, baseline):  # type: ignore[override]
        from captum.attr import GradientShap as CaptumGradientShap

        full = None
        if target is None:
            full = prep.full_logits()
            target = full.argmax(-1)
        with _seeded(self.seed, prep.emb.device):
            dims = CaptumGradientShap(prep.model, multiply_by_inputs=True).attribute(
                prep.leaf(),
                baselines=_baseline_distribution(baseline, prep.emb),
                target=target,
                n_samples=int(self.n_samples),
                stdevs=float(self.stdevs),
                additional_forward_args=prep.args,
            )
        return dims, target, None, full

    def passes(self, target_known: bool = False) -> Passes:
        n = int(self.n_samples)
        return Passes(n + (0 if target_known else 1), n)


@register_explainer
@dataclass(frozen=True)
class AttentionWeights(Explainer):
    """Attention pass-through: the model's own attention weights as token scores (no gradient).

    The weights come from `attention=` or, if not given, from the second element of `forward(emb, *args)`'s
    output (ratbench's AttentionClassifier returns (logits, alpha)); for a transformer pass e.g. the last
    layer's [CLS]->token attention averaged over heads, (B, L). They are zeroed where mask == 0, not
    renormalised (rankings, and so top-k rationales, do not change). `target` is recorded, it does not change
    the scores. Cost: at most 1 forward (none when both the weights and a target or logits are passed).
    """

    name: ClassVar[str] = "attention"

    def attribute(
        self,
        forward: ForwardFn,
        emb: Tensor,
        mask: Tensor,
        *,
        args: Sequence[Any] = (),
        target: TargetArg = None,
        baseline: float | Tensor | None = None,
        logits: Tensor | None = None,
        module: nn.Module | None = None,
        attention: Tensor | None = None,
        keep_dims: bool = False,
    ) -> Attribution:
        b, length = emb.shape[0], emb.shape[1]
        if tuple(mask.shape) != (b, length):
            raise ValueError(f"mask must be (B, L) = {(b, length)}; got {tuple(mask.shape)}.")
        t = _known_target(target, logits, b, emb.device)
        full = None if logits is None else logits_of(logits).detach()
        if attention is None or t is None:
            with torch.no_grad():
                out = forward(emb, *args)
            full = logits_of(out).detach()
            if attention is None:
                if not isinstance(out, (tuple, list)) or len(out) < 2:
                    raise ValueError("attribution=attention needs model-provided weights: pass attention=... or a "
                                     "forward that returns (logits, attention weights).")
                attention = out[1]
            if t is None:
                t = full.argmax(-1)
        weights = attention.detach()
        if tuple(weights.shape) != (b, length):
            raise ValueError(f"attention weights must be (B, L) = {(b, length)}; got {tuple(weights.shape)}.")
        if full is not None:
            check_target(t, full.shape[1])
        scores = weights.float()
        scores = torch.where(mask.to(scores.device) > 0.5, scores, scores.new_zeros(()))
        return Attribution(scores=scores, target=t, method=self.name, logits=full)

    def passes(self, target_known: bool = False) -> Passes:
        return Passes(1, 0)
