"""UNIREX (Chan et al., ICML 2022; docs/methods.md#unirex): a full-text classifier trained to be faithful to its
own extractor's top-k% tokens, and the machinery it shares with REGEX (an *explained classifier*).

An explained classifier is not select-then-predict: its prediction reads the whole text, and its rationale is
the top-k tokens of an explanation of that prediction. It is trained, not only explained, so the training step
is the method's own; at evaluation it is scored like the post-hoc baselines, whose matched-sparsity machinery
(`PostHoc`: S* = RNP's realised test S by default, or the target, or the gold share) it reuses so that Attention,
LIME, UNIREX and REGEX rows sit at exactly the same S. Its Acc is the classifier's full-text accuracy (the
method's own prediction); `rationale_acc` records the same classifier on its rationale alone.

UNIREX per training batch (the default, the paper's AA-F):

- extractor scores: Input x Gradient of the gold class's logit with respect to the word embeddings the
  classifier reads (sum over the dimension; eval mode, detached: `unirex_extractor=aa`), or a learned token head
  on the classifier's own encoder (`slm`) or on a separate encoder (`dlm`), which only the plausibility
  objective trains and which therefore need gold rationales in the training split;
- for every train bin k% (1, 5, 10, 20, 50): the top max(1, round(k n / 100)) tokens (n = the selectable tokens;
  `unirex_special_tokens=reference`: the real pieces minus [CLS], [SEP] included) are the rationale r_k; the
  complement is the other tokens; [CLS] (ratbench: every forced piece) is kept in both;
- one batched forward over [full text; K complements; K rationales], unkept tokens removed (GRU: zero vectors;
  transformer: out of attention too), and
  L = w_t CE(x) + w_c mean_k max(0, CE(x) - CE(x\\r_k) + m_c) + w_s mean_k max(0, CE(r_k) - CE(x) + m_s)
  + w_p BCE(extractor logits, gold);
- masks are detached: comprehensiveness and sufficiency train the classifier only.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ratbench.attribution import Attribution, make_explainer
from ratbench.attribution.explainers import GradientExplainer
from ratbench.config import RunConfig
from ratbench.data.batching import Batch, take_rows
from ratbench.data.corpus import Corpus, Split
from ratbench.errors import RatbenchError
from ratbench.methods.base import register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.methods.posthoc import CLS_POSITION, PostHoc, TransformerClassifier, normalise_scores
from ratbench.metrics import topk_select
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.transformer import last_layer_attention

SCHEDULES = ("linear_warmup", "constant")
BINARISE_RULES = "matched (top-S*), positive (score > 0) or top<k> (the top k %, e.g. top20)"
# the gradient explainers an extractor or a saliency can use (the attention pass-through is not an attribution)
ATTRIBUTIONS = ("input_x_gradient", "saliency", "integrated_gradients", "deeplift", "gradient_shap")


# -- the classifier as a function of its word embeddings ---------------------------------------------------------
class ExplainedModel(nn.Module):
    """The full-text classifier (`AttentionClassifier` or `TransformerClassifier`, methods/posthoc.py) and, for a
    learned UNIREX extractor, its token scorer; the engine and the post-hoc machinery see `full_text`."""

    def __init__(self, classifier: nn.Module, extractor: nn.Module | None = None):
        super().__init__()
        self.classifier = classifier
        self.extractor = extractor

    def full_text(self, batch: Batch, keep: torch.Tensor | None = None,
                  explain: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.classifier.full_text(batch, keep, explain)


class EmbeddingView:
    """The classifier F as a function of the word embeddings it reads, `view.logits(emb, *view.args(batch))`,
    for attributions (docs/attribution.md) and for objectives that perturb the embeddings (REGEX).

    GRU: the masked word vectors (`classifier.embed(ids, mask)`), args (mask, lengths); the output is (logits,
    additive-attention weights), both from the same pass. Transformer: the word-embedding table's output only
    (position/segment embeddings are added inside), args (attention, forced, mask, token types); the output is
    the logits, or (logits, the last layer's [CLS]->token attention averaged over heads) from
    `logits_and_attention`. Every per-row tensor goes through `args` so Integrated Gradients can repeat it.
    """

    def __init__(self, classifier: nn.Module):
        self.classifier = classifier
        self.transformer = isinstance(classifier, TransformerClassifier)

    def embed(self, batch: Batch) -> torch.Tensor:
        return self.classifier.embed(batch.ids, batch.mask)

    def args(self, batch: Batch) -> tuple[Any, ...]:
        if self.transformer:
            return batch.attention, batch.forced, batch.mask, batch.token_type
        return batch.mask, batch.lengths

    def _batch(self, emb: torch.Tensor, attention: torch.Tensor, forced: torch.Tensor, mask: torch.Tensor,
               token_type: torch.Tensor | None) -> Batch:
        n = emb.shape[0]
        return Batch(ids=mask.long(), mask=mask, lengths=torch.ones(n, dtype=torch.long),
                     labels=torch.zeros(n, dtype=torch.long, device=emb.device), gold=None, index=np.arange(n),
                     attention=attention, forced=forced, token_type=token_type)

    def logits(self, emb: torch.Tensor, *args: Any) -> Any:
        if not self.transformer:
            return self.classifier.from_embeddings(emb, *args)
        c = self.classifier
        return c._head(c.encoder(emb, self._batch(emb, *args)))

    def logits_and_attention(self, emb: torch.Tensor, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and attention weights (B, L) with their graph (REGEX aligns the attention with a saliency)."""
        if not self.transformer:
            return self.classifier.from_embeddings(emb, *args)
        c = self.classifier
        with last_layer_attention(c.encoder.transformer, query=CLS_POSITION) as probs:
            h = c.encoder(emb, self._batch(emb, *args))
        return c._head(h), probs[-1].mean(1)

    def only_logits(self, emb: torch.Tensor, *args: Any) -> torch.Tensor:
        out = self.logits(emb, *args)
        return out[0] if isinstance(out, tuple) else out

    def _table_row(self, token: str) -> torch.Tensor | None:
        """A special token's word vector (transformer), or None on the GRU, whose PAD/UNK row is the zero vector."""
        if not self.transformer:
            return None
        index = getattr(self.classifier.encoder.transformer.tokenizer, f"{token}_token_id", None)
        if index is None:
            return None
        return self.classifier.embed.table.weight[int(index)].detach()

    def baseline(self) -> torch.Tensor | None:
        """The reference input of IG/DeepLift/Gradient SHAP: the [PAD] word vector (UNIREX, REGEX); zeros on the
        GRU (its PAD row)."""
        return self._table_row("pad")

    def mask_vector(self) -> torch.Tensor | None:
        """The [MASK] word vector (REGEX's masking), None on the GRU or an encoder without [MASK] (zero vector)."""
        return self._table_row("mask")


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Dropout off for the block (deterministic attributions inside a training step), the mode restored after."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


@contextlib.contextmanager
def captured_output(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The outputs of every call of `module` while open (the classifier encoder's states, for UNIREX's SLM)."""
    out: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda mod, args, result: out.append(result))
    try:
        yield out
    finally:
        handle.remove()


def explainer_options(name: str, ig_steps: int) -> dict[str, Any]:
    """The attribution settings the methods use: IG with `ig_steps` points and no completeness check (two forwards
    saved), DeepLift without its delta, Gradient SHAP with UNIREX's 3 samples."""
    if name == "integrated_gradients":
        return {"n_steps": int(ig_steps), "return_delta": False}
    if name == "deeplift":
        return {"return_delta": False}
    if name == "gradient_shap":
        return {"n_samples": 3}
    return {}


def gradient_explainer(name: str, ig_steps: int, setting: str) -> GradientExplainer:
    if name not in ATTRIBUTIONS:
        raise RatbenchError(f"{setting} must be one of {', '.join(ATTRIBUTIONS)}, got {name!r}.")
    return make_explainer(name, **explainer_options(name, ig_steps))


def parse_binarise(rule: str) -> tuple[str, float | None]:
    """("matched", None), ("positive", None) or ("top", fraction) from a `binarise` setting."""
    if rule in ("matched", "positive"):
        return rule, None
    found = re.fullmatch(r"top(\d+(?:\.\d+)?)", rule)
    if found and 0.0 < float(found.group(1)) <= 100.0:
        return "top", float(found.group(1)) / 100.0
    raise RatbenchError(f"binarise must be {BINARISE_RULES}; got {rule!r}.")


class ReferenceAdamW(torch.optim.Optimizer):
    """AdamW without bias correction: `transformers.AdamW(correct_bias=False)`, the published UNIREX optimiser.

    m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, p <- p - lr m / (sqrt(v) + eps), then p <- p - lr wd p.
    torch.optim.AdamW divides m by 1 - b1^t and v by 1 - b2^t, so relative to it step t is scaled by
    (1 - b1^t) / sqrt(1 - b2^t): at UNIREX's betas (0.9, 0.98) 0.71 at t = 1, 1.55 at t = 14, 1.00 from t ~ 300."""

    def __init__(self, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-group["lr"])
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


def linear_warmup(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor of transformers' linear schedule: step / warmup, then a linear decay to 0 at
    `total` (the first update runs at factor 0 when warmup > 0, as there)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


# -- the shared base -----------------------------------------------------------------------------------------------
class ExplainedClassifier(PostHoc):
    """A classifier trained with explanation objectives and evaluated by its explanation's top-k (not registered).

    Subclasses give `train_step`, `token_scores` (raw scores of the predicted class, higher = more important) and
    `make_optimizer`. Settings shared by both: `match_sparsity` (PostHoc's S*), `binarise` (the rationale rule of
    the main metrics; the others are evaluation variants), `lr_schedule` and `warmup_fraction`."""

    defaults: ClassVar[dict[str, Any]] = {"match_sparsity": "rnp", "binarise": "matched",
                                          "lr_schedule": "linear_warmup", "warmup_fraction": 0.1}

    def __init__(self, config: RunConfig):
        super().__init__(config)
        parse_binarise(str(self.params["binarise"]))
        if self.params["lr_schedule"] not in SCHEDULES:
            raise RatbenchError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, "
                                f"got {self.params['lr_schedule']!r}.")
        if not 0.0 <= float(self.params["warmup_fraction"]) < 1.0:
            raise RatbenchError(f"warmup_fraction must be in [0, 1), got {self.params['warmup_fraction']}.")
        self.total_steps = 1  # optimizer steps of the run, known after prepare()
        self.schedulers: list[torch.optim.lr_scheduler.LRScheduler] = []
        self.scaler: Any = None  # a GradScaler under fp16 (UNIREX's reference mode)

    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        super().prepare(corpus, train, context)
        self.total_steps = max(1, math.ceil(len(train) / self.config.batch_size) * self.config.epochs)
        self.notes.update(self.describe())

    def describe(self) -> dict[str, Any]:
        """Facts the record keeps beside S*."""
        return {"accuracy": "full-text classifier (the method's own prediction); rationale_acc: on the rationale",
                "rationale": f"binarise={self.params['binarise']} of the explainer's scores, predicted class"}

    # -- model and optimisation --------------------------------------------------------------------------------
    def build_extractor(self, backbone: Any, classifier: nn.Module) -> nn.Module | None:
        return None

    def build_model(self, backbone: Any) -> nn.Module:
        classifier = super().build_model(backbone)
        return ExplainedModel(classifier, self.build_extractor(backbone, classifier))

    def make_optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, weight_decay=0.0)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One optimiser over {classifier} (a transformer with `encoder_lr`: its encoder at that rate) and
        {extractor}, with the linear warm-up schedule stepped after every update."""
        lr = self.config.lr
        if isinstance(model.classifier, TransformerClassifier):
            groups = self.param_groups("classifier", model.classifier, lr)
        else:
            groups = [{"params": [p for p in model.classifier.parameters() if p.requires_grad], "lr": lr,
                       "name": "classifier"}]
        if model.extractor is not None:
            groups += self.param_groups("extractor", model.extractor, lr)
        optimizer = self.make_optimizer(groups)
        self.schedulers = []
        if self.params["lr_schedule"] == "linear_warmup":
            warmup = int(self.total_steps * float(self.params["warmup_fraction"]))
            total = self.total_steps
            self.schedulers.append(torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: linear_warmup(step, total, warmup)))
        return [optimizer]

    def optimise(self, loss: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> None:
        """Backward and step (through the GradScaler under fp16), then the schedule."""
        if self.scaler is None:
            self.backward_step(loss, optimizers)
        else:
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)}; try a smaller lr")
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            for opt in optimizers:
                self.scaler.step(opt)
            self.scaler.update()
        for scheduler in self.schedulers:
            scheduler.step()

    # -- attributions ------------------------------------------------------------------------------------------
    def attribute(self, model: nn.Module, batch: Batch, explainer: GradientExplainer,
                  target: torch.Tensor | None = None, logits: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> Attribution:
        """Attributions of the classifier in eval mode (the mode is restored), over `mask` (default: the
        selectable tokens), for `target` (default: the class `logits` predict, else the predicted class)."""
        view = EmbeddingView(model.classifier)
        with evaluating(model):
            return explainer.attribute(view.logits, view.embed(batch), batch.mask if mask is None else mask,
                                       args=view.args(batch), target=target, logits=logits,
                                       baseline=view.baseline(), module=model.classifier)

    # -- evaluation --------------------------------------------------------------------------------------------
    def binarised(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The rationale of `binarise` (read at call time: evaluation variants change it): top-S*, score > 0 or
        top-k%, over the selectable tokens."""
        rule, fraction = parse_binarise(str(self.params["binarise"]))
        if rule == "positive":
            return ((scores > 0) & (mask > 0.5)).to(mask.dtype)
        return topk_select(scores, mask, self._require_sparsity() if rule == "matched" else float(fraction))

    def rationale(self, model: nn.Module, batch: Batch,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The explainer's binarised scores of the predicted class, the full-text logits, the scores in [0, 1]."""
        logits, _ = model.full_text(batch)
        scores = self.token_scores(model, batch, logits, None).to(batch.mask.dtype) * batch.mask
        return self.binarised(scores, batch.mask), logits, normalise_scores(scores, batch.mask)

    def binarise_variants(self, rules: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Evaluation variants for the rules other than the configured one."""
        own = str(self.params["binarise"])
        return {f"binarise={rule}": {"binarise": rule} for rule in dict.fromkeys(["matched", *rules]) if rule != own}


def percent_rule(percent: float) -> str:
    return f"top{float(percent):g}"


# -- UNIREX's pieces (checked by hand in tests/test_method_unirex.py) ---------------------------------------------
def comprehensiveness_loss(ce_full: torch.Tensor, ce_complement: torch.Tensor, margin: float) -> torch.Tensor:
    """mean over bins and examples of max(0, CE(x) - CE(x \\ r_k) + m_c): the complement must be at least m_c nats
    worse than the full text. ce_full (B,), ce_complement (K, B)."""
    return (ce_full.unsqueeze(0) - ce_complement + margin).clamp_min(0.0).mean()


def sufficiency_loss(ce_full: torch.Tensor, ce_rationale: torch.Tensor, margin: float) -> torch.Tensor:
    """mean over bins and examples of max(0, CE(r_k) - CE(x) + m_s): the rationale alone may be at most m_s nats
    worse than the full text. ce_full (B,), ce_rationale (K, B)."""
    return (ce_rationale - ce_full.unsqueeze(0) + margin).clamp_min(0.0).mean()


def plausibility_loss(logits: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token BCE-with-logits against the gold rationale over the examples that have one, positive weight
    #negative / #positive tokens, summed and divided by those examples' token count (UNIREX's `bce`)."""
    has = ((gold * mask).sum(1, keepdim=True) > 0).to(mask.dtype) * mask
    target = gold * has
    n_tokens, n_pos = has.sum(), target.sum()
    if float(n_pos) == 0.0:
        return logits.sum() * 0.0
    weight = (n_tokens - n_pos) / n_pos
    bce = nn.functional.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=weight, reduction="none")
    return (bce * has).sum() / n_tokens


def ranking_batch(batch: Batch, rule: str) -> Batch:
    """The batch whose `mask` is what top-k ranks and counts and whose `forced` is what both the rationale and
    the complement keep. `ratbench`: as given (selectable tokens; [CLS], [SEP], a query forced). `reference`
    (UNIREX's code, transformer only): every real piece but [CLS] ranks and counts, [SEP] included; only [CLS]
    is forced. The GRU has no special tokens: both rules are the batch itself."""
    if rule == "ratbench" or batch.forced is None:
        return batch
    cls = torch.zeros_like(batch.attention)
    cls[:, CLS_POSITION] = batch.attention[:, CLS_POSITION]
    return Batch(ids=batch.ids, mask=batch.attention - cls, lengths=batch.lengths, labels=batch.labels,
                 gold=batch.gold, index=batch.index, attention=batch.attention, forced=cls,
                 token_type=batch.token_type, word_index=batch.word_index, word_gold=batch.word_gold,
                 word_mask=batch.word_mask)


def topk_keeps(scores: torch.Tensor, rank_mask: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """(K, B, L) 0/1: per fraction f, the top max(1, round(f n)) of the n tokens with rank_mask 1 (half to even,
    ties to the earlier position, as UNIREX's torch.round); the complements are rank_mask minus these."""
    s = scores.detach().float()
    return torch.stack([topk_select(s, rank_mask, float(f)) for f in fractions])


class TokenScorer(nn.Module):
    """A learned extractor's head: Linear(H -> 1) on an encoder's states; with an encoder of its own (DLM) it reads
    the word embeddings itself, without (SLM) it is given the classifier encoder's states."""

    def __init__(self, width: int, encoder: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(width, 1)

    def forward(self, states_or_emb: torch.Tensor, batch: Batch | None = None) -> torch.Tensor:
        h = states_or_emb if self.encoder is None else self.encoder(states_or_emb, batch)
        return self.head(h).squeeze(-1).float()


INFO = MethodInfo(
    name="unirex",
    title="UNIREX",
    description="UNIREX: a full-text classifier trained to be comprehensive and sufficient on its extractor's top-k%",
    family="explanation-trained classifier",
    citation="Chan et al., UNIREX: A Unified Learning Framework for Language Model Rationale Extraction, ICML 2022",
    order=160,
    backbones=("gru", "transformer"),
    kind="explained-classifier",
    runs_after=("rnp",),
    provenance="adaptation",
    sparsity="top-k",
)

EXTRACTORS = ("aa", "slm", "dlm")
SPECIAL_RULES = ("ratbench", "reference")
OPTIMIZERS = ("adamw", "adamw_reference")
PRECISIONS = ("fp32", "fp16")
REFERENCE_BETAS = (0.9, 0.98)  # UNIREX configs/model/optimizer/hf_adamw.yaml
REFERENCE_EPS = 1e-8


@register_method(INFO)
class Unirex(ExplainedClassifier):
    """UNIREX: a full-text classifier trained to be comprehensive and sufficient on its extractor's top-k%.

    Settings (docs/methods.md#unirex): `unirex_extractor` aa | slm | dlm; `unirex_attribution` (AA's explainer,
    Input x Gradient by default) and `unirex_ig_steps`; the weights `unirex_task_weight`, `unirex_comp_weight`,
    `unirex_suff_weight`, `unirex_plaus_weight` and margins `unirex_comp_margin`, `unirex_suff_margin`;
    `unirex_train_bins` (percent) and `unirex_bins_per_step` (0: all; n: n bins drawn per step, an unbiased
    estimate of the mean over bins at n / K of the cost); `unirex_eval_bins` (the native top-k% rationales
    logged as evaluation variants); `unirex_special_tokens` ratbench | reference; `unirex_optimizer` adamw |
    adamw_reference (no bias correction); `unirex_weight_decay`; `unirex_precision` fp32 | fp16 (autocast +
    GradScaler)."""

    defaults: ClassVar[dict[str, Any]] = {
        **ExplainedClassifier.defaults,
        "unirex_extractor": "aa", "unirex_attribution": "input_x_gradient", "unirex_ig_steps": 3,
        "unirex_task_weight": 1.0, "unirex_comp_weight": 0.5, "unirex_comp_margin": 1.0,
        "unirex_suff_weight": 0.5, "unirex_suff_margin": 0.1, "unirex_plaus_weight": 0.0,
        "unirex_train_bins": [1.0, 5.0, 10.0, 20.0, 50.0], "unirex_bins_per_step": 0,
        "unirex_eval_bins": [1.0, 5.0, 10.0, 20.0, 50.0],
        "unirex_special_tokens": "ratbench", "unirex_optimizer": "adamw", "unirex_weight_decay": 0.0,
        "unirex_precision": "fp32",
    }

    def __init__(self, config: RunConfig):
        super().__init__(config)
        p = self.params
        for key, choices in (("unirex_extractor", EXTRACTORS), ("unirex_special_tokens", SPECIAL_RULES),
                             ("unirex_optimizer", OPTIMIZERS), ("unirex_precision", PRECISIONS)):
            if p[key] not in choices:
                raise RatbenchError(f"{key} must be one of {', '.join(choices)}, got {p[key]!r}.")
        self.extractor_kind = str(p["unirex_extractor"])
        self.explainer = gradient_explainer(str(p["unirex_attribution"]), int(p["unirex_ig_steps"]),
                                            "unirex_attribution")
        self.train_fractions = self._fractions("unirex_train_bins")
        self._fractions("unirex_eval_bins")
        if int(p["unirex_bins_per_step"]) < 0:
            raise RatbenchError(f"unirex_bins_per_step must be 0 (every bin) or positive, "
                                f"got {p['unirex_bins_per_step']}.")
        self.weights = {k: float(p[f"unirex_{k}_weight"]) for k in ("task", "comp", "suff", "plaus")}
        if any(w < 0 for w in self.weights.values()) or min(float(p["unirex_comp_margin"]),
                                                             float(p["unirex_suff_margin"])) < 0:
            raise RatbenchError("UNIREX's weights and margins must be non-negative.")
        if self.extractor_kind != "aa" and self.weights["plaus"] <= 0:
            raise RatbenchError(f"unirex_extractor={self.extractor_kind} is trained only by the plausibility "
                                "objective: set unirex_plaus_weight > 0 (and train on a dataset with gold "
                                "rationales in its training split), or use unirex_extractor=aa.")
        if self.extractor_kind == "aa" and self.weights["plaus"] > 0:
            raise RatbenchError("An attribution extractor (unirex_extractor=aa) has no parameters a plausibility "
                                "loss could train (its sum-pooled attributions are detached; UNIREX's MLP pooling "
                                "is not implemented): use unirex_extractor=slm or dlm, or unirex_plaus_weight=0.")
        # a learned extractor or Input x Gradient / Saliency explain in one backward pass: cheap enough every epoch
        self.explain_every_epoch = self.extractor_kind != "aa" or self.explainer.passes(True).backward <= 1

    def _fractions(self, key: str) -> list[float]:
        bins = self.params[key]
        if not isinstance(bins, (list, tuple)) or not bins or not all(
                isinstance(b, (int, float)) and 0 < float(b) <= 100 for b in bins):
            raise RatbenchError(f"{key} must be a non-empty list of percentages in (0, 100], e.g. [1, 5, 10, 20, 50]; "
                                f"got {bins!r}.")
        return [float(b) / 100.0 for b in bins]

    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        learned = self.weights["plaus"] > 0
        if learned and (train.gold is None or not bool(np.any(train.gold))):
            raise RatbenchError(f"UNIREX's plausibility objective (unirex_plaus_weight > 0, extractor "
                                f"{self.extractor_kind}) needs gold rationales in the training split; "
                                f"{context.get('dataset', 'this dataset')} has none there (Beer, Hotel and the "
                                "synthetic corpora annotate only the test split). Use unirex_extractor=aa with "
                                "unirex_plaus_weight=0 (AA-F).")
        super().prepare(corpus, train, context)

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {**super().describe(), "extractor": self.extractor_kind,
                "attribution": p["unirex_attribution"] if self.extractor_kind == "aa" else None,
                "objectives": {k: w for k, w in self.weights.items() if w > 0} or "none",
                "optimizer": p["unirex_optimizer"], "precision": p["unirex_precision"]}

    def evaluation_variants(self) -> dict[str, dict[str, Any]]:
        """UNIREX's own binarisations of the same scores: score > 0 (its token-F1 rule) and each evaluation bin."""
        bins = [percent_rule(b) for b in self.params["unirex_eval_bins"]]
        return self.binarise_variants(["positive", *bins])

    # -- model ---------------------------------------------------------------------------------------------
    def build_extractor(self, backbone: Any, classifier: nn.Module) -> nn.Module | None:
        width = backbone.width if isinstance(backbone, TransformerBackbone) else self.config.hidden_size
        if self.extractor_kind == "slm":
            return TokenScorer(width)
        if self.extractor_kind == "dlm":
            return TokenScorer(backbone.width, backbone.encoder())
        return None

    def build_model(self, backbone: Any) -> nn.Module:
        model = super().build_model(backbone)
        if self.params["unirex_precision"] == "fp16":
            self.scaler = torch.amp.GradScaler(next(model.parameters()).device.type)
        return model

    def make_optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        """torch's AdamW (bias-corrected) by default; `adamw_reference`: the published one without bias
        correction. Both at UNIREX's betas (0.9, 0.98), eps 1e-8 and `unirex_weight_decay`."""
        wd = float(self.params["unirex_weight_decay"])
        if self.params["unirex_optimizer"] == "adamw_reference":
            return ReferenceAdamW(groups, lr=self.config.lr, betas=REFERENCE_BETAS, eps=REFERENCE_EPS,
                                  weight_decay=wd)
        return torch.optim.AdamW(groups, betas=REFERENCE_BETAS, eps=REFERENCE_EPS, weight_decay=wd)

    # -- extractor -------------------------------------------------------------------------------------------
    def extractor_logits(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A learned extractor's token logits (B, L) with their graph, and (SLM) the classifier's full-text logits
        from the same pass (None for DLM)."""
        if self.extractor_kind == "slm":
            with captured_output(model.classifier.encoder) as states:
                logits, _ = model.full_text(batch)
            return model.extractor(states[-1]), logits
        return model.extractor(model.classifier.embed(batch.ids, batch.mask), batch), None

    def token_scores(self, model: nn.Module, batch: Batch, logits: torch.Tensor,
                     alpha: torch.Tensor | None) -> torch.Tensor:
        """AA: the attribution of the predicted class; SLM/DLM: the extractor's logits."""
        if self.extractor_kind == "aa":
            return self.attribute(model, batch, self.explainer, logits=logits).scores
        return self.extractor_logits(model, batch)[0]

    # -- training --------------------------------------------------------------------------------------------
    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.params["unirex_precision"] == "fp16":
            return torch.autocast(device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def step_fractions(self) -> list[float]:
        """The train bins of this step: all of them, or `unirex_bins_per_step` drawn without replacement (from
        the global generator the engine seeds, like dropout)."""
        n, bins = int(self.params["unirex_bins_per_step"]), self.train_fractions
        if n == 0 or n >= len(bins):
            return bins
        return [bins[i] for i in sorted(torch.randperm(len(bins))[:n].tolist())]

    def losses(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """The weighted UNIREX loss of one batch and its parts (see the module docstring)."""
        w, p = self.weights, self.params
        labels = batch.labels
        rb = ranking_batch(batch, str(p["unirex_special_tokens"]))
        masks_needed = w["comp"] > 0 or w["suff"] > 0
        full_logits, ext_logits, scores = None, None, None
        if self.extractor_kind != "aa":
            ext_logits, full_logits = self.extractor_logits(model, batch)
            scores = ext_logits.detach()
        elif masks_needed:  # the gold class's attribution, in eval mode, detached
            scores = self.attribute(model, rb, self.explainer, target=labels, mask=rb.mask).scores
        keeps: list[torch.Tensor] = [] if full_logits is not None else [torch.ones_like(rb.mask)]
        fractions = self.step_fractions()
        k = len(fractions) if masks_needed else 0
        if masks_needed:
            chosen = topk_keeps(scores * rb.mask, rb.mask, fractions)
            keeps += [*(rb.mask - chosen), *chosen]
        if keeps:  # one pass over [full text; complements; rationales], unkept tokens removed
            rows = torch.arange(len(batch), device=labels.device).repeat(len(keeps))
            out = model.full_text(take_rows(rb, rows), torch.cat(keeps))[0].float().split(len(batch))
            if full_logits is None:
                full_logits, out = out[0], out[1:]
        full_logits = full_logits.float()
        ce_full = nn.functional.cross_entropy(full_logits, labels, reduction="none")
        terms = {"task": ce_full.mean()}
        zero = ce_full.sum() * 0.0
        terms["comp"], terms["suff"] = zero, zero
        if k:
            ce = nn.functional.cross_entropy(torch.cat(out), labels.repeat(2 * k), reduction="none").view(2 * k, -1)
            terms["comp"] = comprehensiveness_loss(ce_full, ce[:k], float(p["unirex_comp_margin"]))
            terms["suff"] = sufficiency_loss(ce_full, ce[k:], float(p["unirex_suff_margin"]))
        terms["plaus"] = zero
        if w["plaus"] > 0 and ext_logits is not None and batch.gold is not None:
            terms["plaus"] = plausibility_loss(ext_logits, batch.gold, rb.mask)
        loss = sum((w[name] * terms[name] for name in ("task", "comp", "suff", "plaus")), zero)
        return {"loss": loss, **terms, "logits": full_logits}

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        with self.autocast(batch.labels.device):
            terms = self.losses(model, batch)
        self.optimise(terms["loss"], optimizers)
        stats = step_stats(terms["loss"], terms["task"], terms["logits"], batch.mask, batch)
        stats.update({f"{k}_loss": float(terms[k].detach()) for k in ("comp", "suff", "plaus")})
        return stats
