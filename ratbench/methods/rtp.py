"""RTP (Brinner & Zarriess, EMNLP 2024): one transformer classifies, predicts one smooth mask per class and is
scored by a frozen copy of itself (docs/methods.md#rtp).

Transformer backbone only. The model is one encoder with two heads over its last hidden states: a classifier on
[CLS] and a mask head Linear(H, 2K) giving, per piece i and class c, a log-width s_ic and a weight w_ic. The
class-c mask over the selectable pieces j is m_jc = sigmoid(sum_i w_ic exp(-(r_j - r_i)^2 / sigma_ic)),
sigma_ic = exp(s_ic), r = a piece's rank among the example's selectable pieces; [CLS]/[SEP]/a query and padding
are never masked.

Per training example (gold class y; only y's mask meets the frozen copy):
- CE of the live classifier on the full text (weighted by the gold class's inverse-frequency weight);
- the rationale E_hat = m_y E + (1 - m_y) E_pad and complement E_bar = (1 - m_y) E + m_y E_pad, E the embedding
  layer's output, E_pad the same with every selectable piece replaced by [PAD], both scored by the frozen copy
  (deep copy of encoder + classifier, refreshed after every optimizer step, no gradient to its weights; the
  gradient reaches the mask head and the live encoder through E_hat and E_bar):
  w_r * -log(sigmoid(F_frz(E_hat)[y]) * 0.9999 + 5e-5) + w_c * ReLU(softmax(F_frz(E_bar))[y] - 1/K);
- w_reg * R, R = 0.2 mbar_y^2 + 0.05 sum_{c != y} mbar_c^2 + 0.001 sum_c mbar_c + 0.02 sum_c mean_i (sigma_ic - 3)^2
  + 0.05 mean_c sum_j (m_{j+1,c} - m_jc)^2 (mbar = the mask's mean over the selectable pieces).
Only the CE during the warm-up; losses are averaged over the batch (the reference's 1/32 per example with
gradient accumulation), gradients clipped by value, one AdamW step per batch.

Evaluation: the live classifier on the full text gives the prediction; the rationale is the mask of the
*predicted* class, top-k at the target sparsity (per example, over words when the batch has sub-word pieces)
or threshold 0.5; the gold-class mask and the reference's oracle k (the number of gold words) are recorded as
labelled evaluation variants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.data.corpus import Corpus, Split
from ratbench.data.subwords import pieces_to_words_torch
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, accumulate_parts, register_method, step_stats
from ratbench.methods.catalog import MethodInfo

CLS_POSITION = 0  # every supported encoder's corpus starts each example with [CLS] / <s> (data/subwords.py)
# (w_clf, w_rationale, w_complement, w_reg): the paper's training code, and the released wrapper (RTP.py)
LOSS_WEIGHTS = {"paper": (2.0, 5.0, 5.0, 3.0), "wrapper": (1.0, 2.5, 2.5, 1.5)}
# the regulariser's fixed coefficients (identical in the paper code and the wrapper)
L2_OWN, L2_OTHER, L1, SIGMA, SIGMA_TARGET, SMOOTH = 0.2, 0.05, 0.001, 0.02, 3.0, 0.05
PROB_SCALE, PROB_FLOOR = 0.9999, 0.00005  # -log(sigmoid * 0.9999 + 5e-5): the reference's finite log
MASK_CLASSES = ("predicted", "gold")  # or "class:<index>"
SELECT_RULES = ("topk", "threshold", "oracle_k")
FROZEN_INPUTS = ("encoder", "reembed")
CLASS_WEIGHTS = ("inverse_frequency", "none")
KERNEL_ELEMENTS = 1 << 24  # kernel entries built at once by `smooth_masks` (64 MB in float32)


# -- the pieces of the objective ---------------------------------------------------------------------------
def smooth_masks(log_width: torch.Tensor, weight: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, sigma), both (B, L, K): m_jc = sigmoid(sum_i w_ic exp(-(r_j - r_i)^2 / sigma_ic)) over the selectable
    pieces i, j (`mask` (B, L)); r = rank among them, so a gap of non-selectable pieces does not widen a kernel.
    m is 0 wherever `mask` is 0. The (B, L, L, K) kernels are built a few rows at a time (512-piece evaluation
    batches would otherwise need gigabytes)."""
    sigma = log_width.exp()
    rank = mask.cumsum(1) - 1.0
    weighted = weight * mask[..., None]
    b, length, k = weight.shape
    step = max(1, KERNEL_ELEMENTS // max(length * length * k, 1))
    logits = []
    for lo in range(0, b, step):
        r, sg = rank[lo:lo + step], sigma[lo:lo + step]
        dist2 = (r[:, None, :] - r[:, :, None]).square()  # [b, i, j] = (r_j - r_i)^2
        kernel = torch.exp(-dist2[..., None] / sg[:, :, None, :])  # (b, L_i, L_j, K)
        logits.append(torch.einsum("bik,bijk->bjk", weighted[lo:lo + step], kernel))
    return torch.sigmoid(torch.cat(logits)) * mask[..., None], sigma


def regulariser_terms(m: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor,
                      labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """R's five terms per example, each (B,), with their coefficients applied; sums over classes of the gold
    class y and the others as the reference writes them (methods.md §11.4)."""
    n = mask.sum(1).clamp_min(1.0)
    mbar = (m * mask[..., None]).sum(1) / n[:, None]  # (B, K)
    own = F.one_hot(labels, m.shape[-1]).to(m.dtype)
    spread = ((sigma - SIGMA_TARGET).square() * mask[..., None]).sum(1) / n[:, None]
    pair = (mask[:, 1:] * mask[:, :-1])[..., None]
    steps = ((m[:, 1:] - m[:, :-1]).square() * pair).sum(1)  # (B, K): sum over adjacent selectable pieces
    return {
        "l2_own": L2_OWN * (mbar.square() * own).sum(1),
        "l2_other": L2_OTHER * (mbar.square() * (1.0 - own)).sum(1),
        "l1": L1 * mbar.sum(1),
        "sigma": SIGMA * spread.sum(1),
        "smooth": SMOOTH * steps.mean(1),
    }


def blend(h: torch.Tensor, h_pad: torch.Tensor, m: torch.Tensor,
          mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rationale, complement) embedding-layer outputs: m h + (1 - m) h_pad and (1 - m) h + m h_pad at the
    selectable pieces, h unchanged elsewhere ([CLS], [SEP], a query, padding)."""
    sel = mask[..., None] > 0.5
    w = m[..., None].to(h.dtype)
    rationale = torch.where(sel, w * h + (1.0 - w) * h_pad, h)
    complement = torch.where(sel, (1.0 - w) * h + w * h_pad, h)
    return rationale, complement


def enforcement_terms(rat_logits: torch.Tensor, comp_logits: torch.Tensor,
                      labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example (B,): -log(sigmoid(l_rat[y]) * 0.9999 + 5e-5) and ReLU(softmax(l_comp)[y] - 1/K). The
    rationale term is the reference's sigmoid of the target logit, also for a softmax classifier."""
    own_rat = rat_logits.gather(1, labels[:, None]).squeeze(1)
    rationale = -torch.log(torch.sigmoid(own_rat) * PROB_SCALE + PROB_FLOOR)
    k = comp_logits.shape[-1]
    comp_prob = comp_logits.softmax(-1).gather(1, labels[:, None]).squeeze(1)
    return rationale, F.relu(comp_prob - 1.0 / k)


# -- selection at evaluation -----------------------------------------------------------------------------------
def top_count(scores: torch.Tensor, mask: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per row the k (B,) highest-scoring positions where `mask` is 1 (ties to the earlier position), 0/1."""
    real = mask > 0.5
    keyed = torch.where(real, scores.double(), torch.full_like(scores, float("-inf"), dtype=torch.float64))
    order = torch.argsort(-keyed, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous())
    return ((ranks < k[:, None]) & real).to(mask.dtype)


def count_at(fraction: float, mask: torch.Tensor) -> torch.Tensor:
    """round(fraction * n), at least one and at most n, per row: the matched-sparsity rule of `topk_select`."""
    n = (mask > 0.5).sum(1)
    return torch.minimum(torch.round(fraction * n.double()).long().clamp_min(1), n)


def words_to_pieces(word_values: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
    """(B, W) -> (B, L): each piece takes its word's value, 0 where it has none."""
    valid = (word_index >= 0) & (word_index < word_values.shape[1])
    taken = word_values.gather(1, word_index.clamp(0, max(word_values.shape[1] - 1, 0)))
    return torch.where(valid, taken, torch.zeros_like(taken))


def select(scores: torch.Tensor, batch: Batch, rule: str, fraction: float) -> torch.Tensor:
    """The hard rationale (B, L) from per-piece mask values: `topk` at `fraction`, `threshold` (m > 0.5), or
    `oracle_k` (k = the example's gold count). Top-k ranks words (score = the best of its pieces; all its pieces
    are then selected) when the batch has sub-word pieces, so S at word level is the target."""
    scores = scores * batch.mask
    if rule == "threshold":
        return (scores > 0.5).to(batch.mask.dtype)
    if rule == "oracle_k" and (batch.gold if batch.word_index is None else batch.word_gold) is None:
        raise RatbenchError("rtp_select=oracle_k needs the gold rationale: it is an evaluation of the test set only.")
    if batch.word_index is None or batch.word_mask is None:
        k = batch.gold.sum(1).round().long() if rule == "oracle_k" else count_at(fraction, batch.mask)
        return top_count(scores, batch.mask, k)
    wmask = batch.word_mask
    word_scores = pieces_to_words_torch(scores, batch.word_index, wmask.shape[1])
    k = batch.word_gold.sum(1).round().long() if rule == "oracle_k" else count_at(fraction, wmask)
    return words_to_pieces(top_count(word_scores, wmask, k), batch.word_index) * batch.mask


# -- the model -----------------------------------------------------------------------------------------------------
class RTPPlayer(nn.Module):
    """The live model: one encoder copy, a classifier on [CLS] and the mask head Linear(H, 2K)."""

    def __init__(self, encoder: nn.Module, width: int, num_classes: int):
        super().__init__()
        self.encoder = encoder  # named like the players' encoders, so `encoder_lr` finds it
        self.classifier = nn.Linear(width, num_classes)
        self.mask_head = nn.Linear(width, 2 * num_classes)


class FrozenScorer(nn.Module):
    """The frozen copy (encoder + classifier) that scores rationales: no parameter of it trains, it stays in
    eval mode, and it is refreshed from the live model instead of being saved (`checkpointed = False`)."""

    checkpointed = False

    def __init__(self, encoder: nn.Module, width: int, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(width, num_classes)
        for p in self.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenScorer:
        return super().train(False)  # the reference scores with frozen_model.eval(): no dropout, whatever the mode

    def forward(self, h: torch.Tensor, batch: Batch, reembed: bool = False) -> torch.Tensor:
        """Classifier logits from embedding-layer outputs `h`; `reembed` passes `h` through the embedding layer
        again as word vectors (position and segment embeddings and LayerNorm a second time), as the reference's
        `inputs_embeds` call does."""
        tr = self.encoder.transformer
        if reembed:
            h = tr.embed_words(h, batch.token_type)
        states = tr.encode(h, batch.attention)
        return self.classifier(states[:, CLS_POSITION]).float()


class RTPModel(nn.Module):
    """Shared frozen word table, the live player and its frozen copy (models/backbones.py supplies the encoders)."""

    def __init__(self, backbone: Any, num_classes: int | None = None):
        super().__init__()
        self.num_classes = int(backbone.num_classes if num_classes is None else num_classes)
        self.embed = backbone.embedding()
        self.player = RTPPlayer(backbone.encoder(), backbone.width, self.num_classes)
        self.frozen = FrozenScorer(backbone.encoder(), backbone.width, self.num_classes)
        pad = backbone.pretrained.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else 0)
        self.refresh_frozen()
        # a restored checkpoint holds the live model only: the copy follows it on every load
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.refresh_frozen())

    @torch.no_grad()
    def refresh_frozen(self) -> None:
        """Copy every live parameter and buffer of encoder and classifier into the frozen copy (the shared word
        table is one tensor for both and is skipped)."""
        pairs = ((self.player.encoder, self.frozen.encoder), (self.player.classifier, self.frozen.classifier))
        for live, copy in pairs:
            source = live.state_dict(keep_vars=True)
            for key, target in copy.state_dict(keep_vars=True).items():
                if target is not source[key]:
                    target.copy_(source[key])

    def _check(self, batch: Batch) -> None:
        if batch.forced is None:
            raise RatbenchError("RTP reads [CLS] and needs the transformer backbone's batches; run it with "
                                "--set backbone=transformer.")

    def embedding_outputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(E, E_pad): the live embedding layer on the text, and on the text with every selectable piece [PAD]."""
        self._check(batch)
        tr = self.player.encoder.transformer
        h = tr.embed_words(self.embed(batch.ids, batch.mask), batch.token_type)
        pad_ids = torch.where(batch.mask > 0.5, torch.full_like(batch.ids, self.pad_id), batch.ids)
        h_pad = tr.embed_words(self.embed(pad_ids, batch.mask), batch.token_type)
        return h, h_pad

    def heads(self, h: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(classifier logits (B, K), log-widths s (B, L, K), weights w (B, L, K)) from embedding-layer outputs."""
        states = self.player.encoder.transformer.encode(h, batch.attention)
        logits = self.player.classifier(states[:, CLS_POSITION]).float()
        raw = self.player.mask_head(states).float().view(*states.shape[:2], self.num_classes, 2)
        return logits, raw[..., 0], raw[..., 1]

    def full(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(classifier logits, class-wise masks (B, L, K)) on the whole text."""
        self._check(batch)
        h = self.player.encoder.transformer.embed_words(self.embed(batch.ids, batch.mask), batch.token_type)
        logits, s, w = self.heads(h, batch)
        return logits, smooth_masks(s, w, batch.mask)[0]

    def classify_kept(self, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """The live classifier when only `keep` of the selectable pieces are visible: the others are zeroed and
        taken out of attention (ERASER's removal), [CLS]/[SEP]/a query always stay."""
        self._check(batch)
        states = self.player.encoder(self.embed(batch.ids, batch.mask), batch, keep * batch.mask, True)
        return self.player.classifier(states[:, CLS_POSITION]).float()


# -- the method ------------------------------------------------------------------------------------------------
INFO = MethodInfo(
    name="rtp",
    title="RTP",
    description="RTP: one transformer classifies and predicts class-wise masks scored by a frozen copy of itself",
    family="self-explaining transformer (class-wise soft masks)",
    citation="Brinner & Zarriess, Rationalizing Transformer Predictions via End-To-End Differentiable "
             "Self-Training, EMNLP 2024",
    order=150,
    backbones=("transformer",),
    kind="explained-classifier",
    provenance="adaptation",
    sparsity="top-k",
)


@register_method(INFO)
class RTP(Method):
    """RTP: one transformer classifies and predicts class-wise smooth masks scored by a frozen copy of itself.

    Settings (docs/methods.md#rtp): `loss_weights` paper (2/5/5/3, default) | wrapper (1/2.5/2.5/1.5);
    `warmup_epochs` epochs of classification only (fractions allowed: counted in training examples);
    `weight_decay` of AdamW; `clip_value` gradient clipping by value (0: none); `micro_batches` parts each batch
    is processed in (gradient accumulation; `batch_size` is the effective batch); `class_weights`
    inverse_frequency (reference) | none; `frozen_input` encoder (blended embedding-layer outputs enter the frozen
    encoder stack) | reembed (the reference code: they pass through the embedding layer again);
    `rtp_mask_class` predicted | gold | class:<i> and `rtp_select` topk | threshold (| oracle_k, evaluation
    variants only): which mask is the rationale and how it is made hard."""

    defaults = {"loss_weights": "paper", "warmup_epochs": 3.0, "weight_decay": 1e-4, "clip_value": 0.1,
                "micro_batches": 1, "class_weights": "inverse_frequency", "frozen_input": "encoder",
                "rtp_mask_class": "predicted", "rtp_select": "topk"}
    model_class = RTPModel
    pools_over_positions = False  # reads [CLS]: the gold probe's pooled variant does not apply

    def __init__(self, config: RunConfig):
        super().__init__(config)
        p = self.params
        target = config.target_sparsity
        checks = [
            (target is not None and 0.0 < float(target) <= 100.0,
             f"RTP selects the top-k at the target sparsity: set target_sparsity in (0, 100], got {target}"),
            (p["loss_weights"] in LOSS_WEIGHTS,
             f"loss_weights must be one of {', '.join(LOSS_WEIGHTS)}, got {p['loss_weights']!r}"),
            (float(p["warmup_epochs"]) >= 0.0, f"warmup_epochs must be >= 0, got {p['warmup_epochs']}"),
            (float(p["clip_value"]) >= 0.0, f"clip_value must be >= 0 (0: no clipping), got {p['clip_value']}"),
            (int(p["micro_batches"]) >= 1, f"micro_batches must be at least 1, got {p['micro_batches']}"),
            (p["class_weights"] in CLASS_WEIGHTS,
             f"class_weights must be one of {', '.join(CLASS_WEIGHTS)}, got {p['class_weights']!r}"),
            (p["frozen_input"] in FROZEN_INPUTS,
             f"frozen_input must be one of {', '.join(FROZEN_INPUTS)}, got {p['frozen_input']!r}"),
            (p["rtp_select"] in ("topk", "threshold"),
             f"rtp_select must be topk or threshold (oracle_k is recorded as an evaluation variant), got "
             f"{p['rtp_select']!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RatbenchError(message + ".")
        self._mask_class(str(p["rtp_mask_class"]), None)  # validates
        self.fraction = float(target) / 100.0
        self.weights = LOSS_WEIGHTS[str(p["loss_weights"])]
        self.class_weight: torch.Tensor | None = None
        self.label_names: list[str] = []
        self.n_train: int | None = None
        self.examples_seen = 0
        self.mask_steps = 0
        w_clf, w_r, w_c, w_reg = self.weights
        self.notes.update(
            loss_weights={"clf": w_clf, "rationale": w_r, "complement": w_c, "reg": w_reg},
            rationale=f"mask of the {p['rtp_mask_class']} class, "
                      + (f"top-k at {float(target):g} % of each example's words" if p["rtp_select"] == "topk"
                         else "mask > 0.5"),
            sparsity="top-k of the class mask at the target sparsity; alpha and its dev calibration are unused",
            class_wise_masks=True,
        )

    # -- settings ------------------------------------------------------------------------------------------
    @staticmethod
    def _mask_class(value: str, num_classes: int | None) -> str | int:
        if value in MASK_CLASSES:
            return value
        if value.startswith("class:") and value[6:].isdigit():
            index = int(value[6:])
            if num_classes is None or index < num_classes:
                return index
        raise RatbenchError(f"rtp_mask_class must be predicted, gold or class:<index>, got {value!r}.")

    def evaluation_variants(self) -> dict[str, dict[str, Any]]:
        """Recorded beside the main numbers: the other hardening rule, the reference's gold-class mask (top-k
        and oracle k: both read the test labels) and every class's own mask on every example."""
        other = "threshold" if self.params["rtp_select"] == "topk" else "topk"
        out: dict[str, dict[str, Any]] = {f"select={other}": {"rtp_select": other}}
        if self.params["rtp_mask_class"] != "gold":
            out["mask=gold"] = {"rtp_mask_class": "gold", "rtp_select": "topk"}
        out["mask=gold,select=oracle_k"] = {"rtp_mask_class": "gold", "rtp_select": "oracle_k"}
        for c in range(len(self.label_names)):
            out[f"mask=class:{c}"] = {"rtp_mask_class": f"class:{c}", "rtp_select": self.params["rtp_select"]}
        return out

    def label_leak(self) -> str | None:
        if self.params["rtp_mask_class"] == "gold":
            return "rtp_mask_class=gold: each test example's rationale is the mask of its gold class"
        return None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """The training size (warm-up is counted in examples) and the reference's class weights: the inverse
        class frequencies normalised to mean 1 (all 1 on a balanced training set)."""
        labels = np.asarray(train.labels)
        self.n_train = len(labels)
        names = list(getattr(corpus, "label_names", None) or [])
        k = max(len(names), int(labels.max()) + 1 if labels.size else 2)
        self.label_names = names or [str(c) for c in range(k)]
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        if self.params["class_weights"] == "inverse_frequency" and (counts > 0).all():
            inv = 1.0 / counts
            self.class_weight = torch.tensor(inv / inv.mean(), dtype=torch.float32)
        else:
            self.class_weight = None
        self.notes.update(warmup_examples=self.warmup_examples(), class_weight=(
            None if self.class_weight is None else [round(float(w), 6) for w in self.class_weight]),
            mask_classes=self.label_names)

    def warmup_examples(self) -> int:
        if self.n_train is None:
            raise RatbenchError("RTP counts its warm-up in training examples: call prepare() before training.")
        return int(round(float(self.params["warmup_epochs"]) * self.n_train))

    def masks_active(self) -> bool:
        """Whether mask training has begun (after `warmup_epochs` epochs' worth of examples)."""
        return self.examples_seen >= self.warmup_examples()

    def selectable_epoch(self, epoch: int) -> bool:
        """Warm-up epochs are not candidates for model selection (their masks are untrained); if the whole run
        is warm-up, every epoch is."""
        budget = self.config.epochs * (self.n_train or 0)
        return self.mask_steps > 0 or budget <= self.warmup_examples()

    # -- construction ----------------------------------------------------------------------------------------
    def build_model(self, backbone: Any) -> nn.Module:
        return RTPModel(backbone)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """AdamW over the live model only (the reference: lr 1e-5, weight decay 1e-4); never the frozen copy."""
        groups = self.param_groups("rtp", model.player, self.config.lr)
        return [torch.optim.AdamW(groups, weight_decay=float(self.params["weight_decay"]))]

    # -- training ------------------------------------------------------------------------------------------------
    def losses(self, model: RTPModel, batch: Batch, masks: bool) -> dict[str, torch.Tensor]:
        """The batch means of every term (`masks`: after the warm-up) and the logits and gold-class masks."""
        w_clf, w_r, w_c, w_reg = self.weights
        h, h_pad = model.embedding_outputs(batch)
        logits, s, w = model.heads(h, batch)
        ce = F.cross_entropy(logits, batch.labels, reduction="none")
        if self.class_weight is not None:
            ce = ce * self.class_weight.to(ce.device)[batch.labels]
        cls = ce.mean()
        out = {"cls": cls, "logits": logits}
        gold = batch.labels[:, None, None].expand(*s.shape[:2], 1)
        if not masks:
            with torch.no_grad():  # the masks only for the train-S statistic: nothing trains them yet
                m = smooth_masks(s, w, batch.mask)[0]
            out.update(loss=w_clf * cls, own_mask=m.gather(2, gold)[..., 0])
            return out
        m, sigma = smooth_masks(s, w, batch.mask)
        own = m.gather(2, gold)[..., 0]
        rationale_h, complement_h = blend(h, h_pad, own, batch.mask)
        twice = Batch(ids=torch.cat([batch.ids, batch.ids]), mask=torch.cat([batch.mask, batch.mask]),
                      lengths=torch.cat([batch.lengths, batch.lengths]), labels=torch.cat([batch.labels, batch.labels]),
                      gold=None, index=np.concatenate([batch.index, batch.index]),
                      attention=torch.cat([batch.attention, batch.attention]), forced=None,
                      token_type=None if batch.token_type is None else torch.cat([batch.token_type, batch.token_type]))
        scored = model.frozen(torch.cat([rationale_h, complement_h]), twice, self.params["frozen_input"] == "reembed")
        rat, comp = enforcement_terms(scored[: len(batch)], scored[len(batch):], batch.labels)
        reg_terms = regulariser_terms(m, sigma, batch.mask, batch.labels)
        reg = torch.stack(list(reg_terms.values())).sum(0).mean()
        loss = w_clf * cls + w_r * rat.mean() + w_c * comp.mean() + w_reg * reg
        out.update(loss=loss, rationale=rat.mean(), complement=comp.mean(), reg=reg, own_mask=own.detach())
        return out

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One optimizer step per batch over `micro_batches` parts (each weighted by its share of the examples),
        gradients clipped by value, then the frozen copy is refreshed."""
        masks = self.masks_active()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        parts = accumulate_parts(batch, int(self.params["micro_batches"]),
                                 lambda part: self.losses(model, part, masks))
        clip = float(self.params["clip_value"])
        if clip > 0.0:
            torch.nn.utils.clip_grad_value_([p for p in model.player.parameters() if p.grad is not None], clip)
        for opt in optimizers:
            opt.step()
        model.refresh_frozen()
        self.examples_seen += len(batch)
        self.mask_steps += int(masks)
        scalars = [k for k in ("loss", "cls", "rationale", "complement", "reg") if k in parts[0]]
        total = {k: torch.stack([t[k] for t in parts]).sum() for k in scalars}
        logits = torch.cat([t["logits"] for t in parts])
        hard = (torch.cat([t["own_mask"] for t in parts]) > 0.5).float()  # train S: the gold mask above 0.5
        stats = step_stats(total["loss"], total["cls"], logits, hard, batch)
        stats.update({k: float(v) for k, v in total.items() if k not in ("loss", "cls")}, masks=float(masks))
        return stats

    # -- evaluation --------------------------------------------------------------------------------------------
    def _scores(self, masks: torch.Tensor, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The mask (B, L) named by `rtp_mask_class`: of the predicted class, the gold class, or a fixed class."""
        which = self._mask_class(str(self.params["rtp_mask_class"]), masks.shape[-1])
        if which == "predicted":
            cls = logits.argmax(-1)
        elif which == "gold":
            cls = batch.labels
        else:
            cls = torch.full_like(batch.labels, int(which))
        return masks.gather(2, cls[:, None, None].expand(*masks.shape[:2], 1))[..., 0]

    def rationale(self, model: nn.Module, batch: Batch,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The chosen class's mask made hard (`rtp_select`), the live classifier's full-text logits (RTP's
        prediction) and that mask as the soft scores. Deterministic: `eval_mode` and the generator do not apply."""
        logits, masks = model.full(batch)
        scores = self._scores(masks, logits, batch) * batch.mask
        return select(scores, batch, str(self.params["rtp_select"]), self.fraction), logits, scores

    def class_rationales(self, model: nn.Module, batch: Batch,
                         generator: torch.Generator | None) -> torch.Tensor | None:
        """Every class's mask made hard by the same rule (B, L, K): what `ratbench show` prints per class."""
        logits, masks = model.full(batch)
        rule = str(self.params["rtp_select"])
        return torch.stack([select(masks[..., c] * batch.mask, batch, rule, self.fraction)
                            for c in range(masks.shape[-1])], dim=-1)

    def classify(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model.full(batch)[0]

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """The live classifier reading only `keep` (comprehensiveness, sufficiency, AOPC): unkept pieces removed."""
        return model.classify_kept(batch, keep)
