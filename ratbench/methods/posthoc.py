"""Shared machinery of the post-hoc baselines (docs/methods.md#post-hoc): a full-text classifier, top-k.

Attention and LIME explain the *same* classifier, so both share its module and training step here; they differ
only in how a token's score is computed. Their rationales are the top-k_b real tokens by that score, with
k_b = max(1, round(S* * len_b)) so that they are compared with the rationalizers at the same sparsity S*.

The classifier depends on the run's backbone (models/backbones.py): the BiGRU with additive attention over frozen
word vectors (`AttentionClassifier`, the published baseline), or one copy of the pretrained encoder read at
[CLS] (`TransformerClassifier`, docs/methods.md#attention). Both answer `full_text(batch, keep, explain)`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.data.corpus import Corpus, Split
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, step_stats
from ratbench.metrics import topk_select
from ratbench.models.backbones import TransformerBackbone
from ratbench.models.encoders import BiGRU, FrozenEmbedding
from ratbench.models.transformer import last_layer_attention

MATCH_MODES = ("rnp", "target", "gold")


class AttentionClassifier(nn.Module):
    """Frozen embedding -> BiGRU -> additive attention -> Dropout -> Linear(classes) (docs/methods.md#attention).

    A keep mask (B, L) zeroes the embeddings of removed positions, which is what a rationale mask does to the
    rationalizers' predictors; attention still spans every real position (padding is -inf), so a removed token
    is "present but blank", exactly as in comprehensiveness/sufficiency and in LIME's perturbations.
    """

    def __init__(self, vectors: torch.Tensor, hidden: int = 200, dropout: float = 0.2, gru_mode: str = "auto",
                 num_classes: int = 2):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)  # the name `embed` keeps it out of the engine's saved states
        self.encoder = BiGRU(self.embed.dim, hidden, gru_mode)
        self.proj = nn.Linear(hidden, hidden)  # W h_t + b
        self.score = nn.Linear(hidden, 1, bias=False)  # v^T tanh(.)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def from_embeddings(
        self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and attention weights (B, L; zero at padding) from already-masked embeddings."""
        h = self.encoder(emb, lengths)
        u = self.score(torch.tanh(self.proj(h))).squeeze(-1)
        u = u.masked_fill(mask <= 0, float("-inf"))
        alpha = u.softmax(-1)
        context = (alpha.unsqueeze(-1) * h).sum(1)
        return self.head(self.dropout(context)), alpha

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, keep: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(ids, mask)
        if keep is not None:
            emb = emb * (keep * mask).unsqueeze(-1)
        return self.from_embeddings(emb, mask, lengths)

    def full_text(
        self, batch: Batch, keep: torch.Tensor | None = None, explain: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and attention weights; the weights come with every pass (they are part of the prediction)."""
        return self(batch.ids, batch.mask, batch.lengths, keep)


CLS_POSITION = 0  # every supported encoder's corpus starts each example with [CLS] / <s> (data/subwords.py)


class TransformerClassifier(nn.Module):
    """Shared frozen word embeddings -> one copy of the pretrained encoder -> last hidden state of [CLS] ->
    Dropout -> Linear(H -> classes) (docs/methods.md#attention).

    [CLS] pooling, not the rationalizers' max-pool: the Attention baseline explains a prediction by the [CLS] row
    of the last layer's attention, and with [CLS] pooling that row is how the last layer mixes the pieces into
    the one state the head reads; under a max-pool the head would read every position's state and the [CLS]
    row would explain a state it mostly ignores. (BERT's own pooler, tanh(W h_cls), is not loaded by the
    backbone, so the head sits on h_cls directly, as BERT-style fine-tuning without the pooler does.)

    A keep mask removes the unkept pieces from attention as well as zeroing their embedding-layer output (the
    player encoder's `remove` path), so a removed piece has no effect at all, as if deleted with the other
    pieces' positions unchanged; [CLS], [SEP] and a query stay (`batch.forced`). That is ERASER's removal for
    transformers, used by comprehensiveness/sufficiency, the rationale-only accuracy and LIME's perturbations.
    """

    def __init__(self, backbone: TransformerBackbone, dropout: float = 0.2):
        super().__init__()
        self.embed = backbone.embedding()
        self.encoder = backbone.encoder()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.width, backbone.num_classes)

    def full_text(
        self, batch: Batch, keep: torch.Tensor | None = None, explain: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, classes) and, with `explain`, the [CLS] row of the last layer's attention averaged over heads
        (B, L; zero at padding, not yet restricted to selectable pieces); None without it (it costs an extra
        pass over the last layer's query/key projections)."""
        if batch.forced is None or not bool((batch.forced[:, CLS_POSITION] > 0).all()):
            raise ValueError("the transformer classifier reads [CLS] at position 0; this batch has none there")
        emb = self.embed(batch.ids, batch.mask)
        remove = keep is not None
        if not explain:
            return self._head(self.encoder(emb, batch, keep, remove)), None
        with last_layer_attention(self.encoder.transformer, query=CLS_POSITION) as probs:
            h = self.encoder(emb, batch, keep, remove)
        return self._head(h), probs[-1].mean(1)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        # float32 logits (a no-op unless under bf16 autocast), as the rationalizers' players return
        return self.head(self.dropout(h[:, CLS_POSITION])).float()


def normalise_scores(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] over each row's real tokens (0 at padding), so AUPRC pools comparable scores across
    examples; a row whose scores are all equal gets 0.5 everywhere."""
    real = mask > 0.5
    big = torch.finfo(scores.dtype).max
    lo = torch.where(real, scores, torch.full_like(scores, big)).min(1, keepdim=True).values
    hi = torch.where(real, scores, torch.full_like(scores, -big)).max(1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (scores - lo) / span.clamp_min(torch.finfo(scores.dtype).tiny), 0.5)
    return out * real.to(scores.dtype)


def gold_share(split: Split) -> float:
    """Share of real tokens inside the human rationale (splits store real tokens only, so a plain mean)."""
    if split.gold is None or split.gold.size == 0:
        raise RatbenchError("match_sparsity=gold needs a test split with gold rationales; this dataset has none. "
                            "Use match_sparsity=rnp or target.")
    return float(np.mean(split.gold > 0))


class PostHoc(Method):
    """Post-hoc explainer of a full-text attention classifier (shared base, not registered)."""

    defaults: ClassVar[dict[str, Any]] = {"match_sparsity": "rnp"}

    def __init__(self, config: RunConfig):
        super().__init__(config)
        mode = str(self.params["match_sparsity"])
        if mode not in MATCH_MODES:
            raise RatbenchError(f"match_sparsity must be one of {', '.join(MATCH_MODES)}, got {mode!r}.")
        self.match_mode = mode
        self.sparsity: float | None = None  # S* as a fraction, set by prepare()
        self.seed = 0

    # -- matched sparsity ----------------------------------------------------------------------------
    @classmethod
    def dependencies(cls, config: RunConfig) -> tuple[str, ...]:
        """RNP's run of the same dataset, seed and settings, when matching its sparsity (the default)."""
        mode = str({**cls.defaults, **config.method_params}.get("match_sparsity"))
        return ("rnp",) if mode == "rnp" else ()

    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """Fix S* before training (docs/methods.md#post-hoc): RNP's realised test S of the same dataset, seed
        and settings (`context["records"]["rnp"]`, found by the planner), the configured target, or the gold
        share; the choice and its provenance go to `notes`. A restored run keeps its recorded S*."""
        self.seed = int(context.get("seed", 0))
        own = context.get("own_notes") or {}
        if "matched_sparsity" in own:
            self._set(float(own["matched_sparsity"]), str(own.get("source")), own.get("record"))
            return
        if self.match_mode == "rnp":
            dep = (context.get("records") or {}).get("rnp")
            if dep is None:
                raise RatbenchError(
                    f"{self.name} matches the sparsity of RNP's run on {context.get('dataset')} seed {self.seed} "
                    "with the same settings, and that run has not finished. Train it first (`ratbench run "
                    "--methods rnp,...` trains it in the same grid), or choose --set match_sparsity=target "
                    "or gold.")
            s = (dep.get("metrics") or {}).get("S")
            if not isinstance(s, (int, float)) or not math.isfinite(s):
                raise RatbenchError(f"The RNP record {dep.get('path')} has no finite test S; retrain it.")
            self._set(float(s), "rnp", str(dep.get("path")))
            return
        if self.match_mode == "target":
            if self.config.target_sparsity is None:
                raise RatbenchError("match_sparsity=target needs target_sparsity; set it (--set target_sparsity=15) "
                                    "or use match_sparsity=gold.")
            self._set(float(self.config.target_sparsity), "target", None)
            return
        self._set(100.0 * gold_share(corpus.test), "gold", None)

    def _set(self, percent: float, source: str, record: str | None) -> None:
        if not 0.0 < percent <= 100.0:
            raise RatbenchError(f"Matched sparsity from {source} is {percent:.3g} %, outside (0, 100].")
        self.sparsity = percent / 100.0
        self.notes = {"matched_sparsity": percent, "source": source, "record": record}

    def _require_sparsity(self) -> float:
        if self.sparsity is None:
            raise RuntimeError(f"{self.name}: prepare() must run before rationales are computed (S* unknown).")
        return self.sparsity

    # -- model and training --------------------------------------------------------------------------
    # whether `token_scores` reads the classifier's attention (the transformer computes it only when asked)
    uses_attention: ClassVar[bool] = False

    def build_model(self, backbone: Any) -> nn.Module:
        c = self.config
        if isinstance(backbone, TransformerBackbone):
            return TransformerClassifier(backbone, dropout=c.dropout)
        return AttentionClassifier(backbone.vectors, hidden=c.hidden_size, dropout=c.dropout, gru_mode=c.gru_mode,
                                   num_classes=backbone.num_classes)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam group {classifier}; a transformer classifier with `encoder_lr` set gets two, its encoder at
        `encoder_lr` and the head at `lr`, as the rationalizers' players (Method.param_groups)."""
        if isinstance(model, TransformerClassifier):
            return [torch.optim.Adam(self.param_groups("classifier", model, self.config.lr))]
        params = [p for p in model.parameters() if p.requires_grad]
        return [torch.optim.Adam([{"params": params, "lr": self.config.lr, "name": "classifier"}])]

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """CE on the full text; z = the full mask so the engine's train_S reads 100 % rather than nonsense."""
        logits, _ = model.full_text(batch)
        loss = nn.functional.cross_entropy(logits, batch.labels)
        self.backward_step(loss, optimizers)
        return step_stats(loss, loss, logits, batch.mask, batch)

    pools_over_positions = False  # its predictor does not max-pool masked word vectors

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """GRU: the unkept tokens' vectors are zero; transformer: the unkept pieces are removed (see the classes)."""
        return model.full_text(batch, keep)[0]

    def classify(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model.full_text(batch)[0]

    # -- explanation ---------------------------------------------------------------------------------
    def token_scores(
        self, model: nn.Module, batch: Batch, logits: torch.Tensor, alpha: torch.Tensor | None
    ) -> torch.Tensor:
        """Raw importance of each position (B, L), higher = more important; only selectable pieces count (the
        caller multiplies by `batch.mask`). `alpha` is None when `uses_attention` is False on a transformer."""
        raise NotImplementedError

    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k_b mask by the explainer's scores, the classifier's full-text logits, scores in [0, 1]; scores and
        selection are restricted to selectable pieces (never [CLS], [SEP], a query or padding)."""
        sparsity = self._require_sparsity()
        logits, alpha = model.full_text(batch, explain=self.uses_attention)
        scores = self.token_scores(model, batch, logits, alpha).to(batch.mask.dtype) * batch.mask
        z = topk_select(scores, batch.mask, sparsity)
        return z, logits, normalise_scores(scores, batch.mask)
