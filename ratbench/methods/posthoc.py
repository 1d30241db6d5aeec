"""Shared machinery of the post-hoc baselines (methods.md §10): a full-text classifier, matched sparsity, top-k.

Attention and LIME explain the *same* classifier, so both share its module and training step here; they differ
only in how a token's score is computed. Their rationales are the top-k_b real tokens by that score, with
k_b = max(1, round(S* * len_b)) so that they are compared with the rationalizers at the same sparsity S*.
"""

from __future__ import annotations

import math
from pathlib import Path
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
from ratbench.models.encoders import BiGRU, FrozenEmbedding

MATCH_MODES = ("rnp", "target", "gold")


class AttentionClassifier(nn.Module):
    """Frozen embedding -> BiGRU -> additive attention -> Dropout -> Linear(2) (methods.md §10.1).

    A keep mask (B, L) zeroes the embeddings of removed positions, which is what a rationale mask does to the
    rationalizers' predictors; attention still spans every real position (padding is -inf), so a removed token
    is "present but blank", exactly as in comprehensiveness/sufficiency and in LIME's perturbations.
    """

    def __init__(self, vectors: torch.Tensor, hidden: int = 200, dropout: float = 0.2, gru_mode: str = "auto"):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)  # the name `embed` keeps it out of the engine's saved states
        self.encoder = BiGRU(self.embed.dim, hidden, gru_mode)
        self.proj = nn.Linear(hidden, hidden)  # W h_t + b
        self.score = nn.Linear(hidden, 1, bias=False)  # v^T tanh(.)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 2)

    def from_embeddings(
        self, emb: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, 2) and attention weights (B, L; zero at padding) from already-masked embeddings."""
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


def find_rnp_record(results: str | Path, dataset: str, seed: int, profile: str | None) -> tuple[Path, float] | None:
    """The finished RNP record of this dataset and seed: same profile preferred, then the newest file.

    Returns (path, S in percent) or None. Unreadable, failed or S-less records are skipped, not fatal: a grid
    may hold half-written or crashed runs.
    """
    from ratbench.results.record import load_record

    folder = Path(results) / "runs" / dataset / "rnp"
    found: list[tuple[bool, float, Path, float]] = []
    for path in folder.glob(f"seed{seed}-*.json"):
        try:
            rec = load_record(path)
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        s = (rec.get("metrics") or {}).get("S")
        if rec.get("status") != "finished" or not isinstance(s, (int, float)) or not math.isfinite(s):
            continue
        if rec.get("seed", seed) != seed or rec.get("dataset", dataset) != dataset:
            continue
        found.append((profile is not None and rec.get("profile") == profile, mtime, path, float(s)))
    if not found:
        return None
    best = max(found, key=lambda f: (f[0], f[1], str(f[2])))
    return best[2], best[3]


class PostHoc(Method):
    """Post-hoc explainer of a full-text attention classifier (shared base, not registered)."""

    family: ClassVar[str] = "post-hoc explainer"
    defaults: ClassVar[dict[str, Any]] = {"match_sparsity": "rnp"}
    post_hoc: ClassVar[bool] = True
    runs_after: ClassVar[tuple[str, ...]] = ("rnp",)

    def __init__(self, config: RunConfig):
        super().__init__(config)
        mode = str(self.params["match_sparsity"])
        if mode not in MATCH_MODES:
            raise RatbenchError(f"match_sparsity must be one of {', '.join(MATCH_MODES)}, got {mode!r}.")
        self.match_mode = mode
        self.sparsity: float | None = None  # S* as a fraction, set by prepare()
        self.seed = 0

    # -- matched sparsity ----------------------------------------------------------------------------
    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """Fix S* before training (methods.md §10): RNP's realised test S of the same dataset and seed, the
        configured target, or the gold share; the choice and its provenance go to `notes`."""
        self.seed = int(context.get("seed", 0))
        target = self.config.target_sparsity
        reason = None
        if self.match_mode == "rnp":
            results, dataset = context.get("results"), context.get("dataset")
            hit = None
            if results is None or dataset is None:
                reason = "no results directory or dataset in the run context"
            else:
                hit = find_rnp_record(results, str(dataset), self.seed, context.get("profile"))
                if hit is None:
                    reason = f"no finished RNP record for {dataset} seed {self.seed} under {results}"
            if hit is not None:
                path, s = hit
                self._set(s, "rnp", str(path))
                return
        if self.match_mode in ("rnp", "target") and target is not None:
            self._set(float(target), "target", None, reason)
            return
        if self.match_mode == "target":
            raise RatbenchError("match_sparsity=target needs target_sparsity; set it (--set target_sparsity=15) "
                                "or use match_sparsity=gold.")
        if reason is not None:
            reason += "; target_sparsity is unset"
        self._set(100.0 * gold_share(corpus.test), "gold", None, reason)

    def _set(self, percent: float, source: str, record: str | None, reason: str | None = None) -> None:
        if not 0.0 < percent <= 100.0:
            raise RatbenchError(f"Matched sparsity from {source} is {percent:.3g} %, outside (0, 100].")
        self.sparsity = percent / 100.0
        self.notes = {"matched_sparsity": percent, "source": source, "record": record}
        if reason is not None:
            self.notes["fallback_reason"] = reason

    def _require_sparsity(self) -> float:
        if self.sparsity is None:
            raise RuntimeError(f"{self.name}: prepare() must run before rationales are computed (S* unknown).")
        return self.sparsity

    # -- model and training --------------------------------------------------------------------------
    def build_model(self, vectors: torch.Tensor) -> nn.Module:
        c = self.config
        return AttentionClassifier(vectors, hidden=c.hidden_size, dropout=c.dropout, gru_mode=c.gru_mode)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        params = [p for p in model.parameters() if p.requires_grad]
        return [torch.optim.Adam([{"params": params, "lr": self.config.lr, "name": "classifier"}])]

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """CE on the full text; z = the full mask so the engine's train_S reads 100 % rather than nonsense."""
        logits, _ = model(batch.ids, batch.mask, batch.lengths)
        loss = nn.functional.cross_entropy(logits, batch.labels)
        self.backward_step(loss, optimizers)
        return step_stats(loss, loss, logits, batch.mask, batch)

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        return model(batch.ids, batch.mask, batch.lengths, keep)[0]

    def classify(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch.ids, batch.mask, batch.lengths)[0]

    # -- explanation ---------------------------------------------------------------------------------
    def token_scores(self, model: nn.Module, batch: Batch, logits: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Raw importance of each position (B, L), higher = more important. Subclasses define it."""
        raise NotImplementedError

    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k_b mask by the explainer's scores, the classifier's full-text logits, scores in [0, 1]."""
        sparsity = self._require_sparsity()
        logits, alpha = model(batch.ids, batch.mask, batch.lengths)
        scores = self.token_scores(model, batch, logits, alpha).to(batch.mask.dtype) * batch.mask
        z = topk_select(scores, batch.mask, sparsity)
        return z, logits, normalise_scores(scores, batch.mask)
