"""Inter_RAT (Yue et al., EMNLP 2023): selector and predictor de-confounded by a backdoor adjustment
(docs/methods.md#interrat).

A learnable embedding per class is the confounder dictionary. Each token state (selector) and the pooled
rationale (predictor) attends over the class embeddings; the prior-weighted mixture of them is concatenated
to the representation before the output layer, so the decision is made "averaged over" the confounder
instead of conditioned on it. Re-hosted on the shared pipeline (docs/methods.md#shared-pipeline; docs/methods.md#quirks
(Q19)): frozen GloVe, balanced training
set, dev-accuracy selection, alpha calibrated on dev, GRUs that never read padding (`gru_mode`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import Corpus, Split
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.models.encoders import BiGRU, FrozenEmbedding
from ratbench.models.gumbel import sample_st

UNIFORM_PRIOR = (0.5, 0.5)  # for a corpus the catalog does not know (an in-memory test corpus)


# -- the per-example regularisers (unlike RNP's batch-pooled ones, docs/methods.md#shared-pipeline) --------
def per_example_sparsity(z: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """mean_b |sum_t z_bt p_bt / sum_t p_bt - alpha|: every review is pulled to alpha on its own, so a long
    review cannot pay for a short one as in RNP's pooled ratio. Padding never counts."""
    selected = (z * mask).sum(1)
    return (selected / mask.sum(1).clamp_min(1.0) - alpha).abs().mean()


def per_example_continuity(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean_b sum_{t>=2} |z_bt - z_b,t-1| / (len_b - 1) over pairs of real tokens: the number of switches
    per review, normalised by its own length (not by B x 255 as RNP's). Length-1 reviews contribute 0."""
    zm = z * mask
    pairs = mask[:, 1:] * mask[:, :-1]
    switches = ((zm[:, 1:] - zm[:, :-1]).abs() * pairs).sum(1)
    return (switches / (mask.sum(1) - 1.0).clamp_min(1.0)).mean()


def selected_count(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """max(1, sum_t z_t) per example, keeping the straight-through gradient of the sum (as the reference does:
    it adds 1 only where nothing was selected). The 0.5 threshold absorbs the rounding of hard - p + p."""
    n = (z * mask).sum(1)
    return n + (n.detach() < 0.5).to(n.dtype)


def resolve_priors(text: str, dataset: str | None) -> tuple[float, float]:
    """`auto`: the dataset's `class_prior` from the catalog (the reference's 0.05 / 0.95 for beer and the
    beer-like synthetic corpus, 0.5 / 0.5 otherwise). Anything else must be two non-negative numbers, e.g.
    "0.5,0.5"."""
    if str(text).strip().lower() == "auto":
        if dataset in DATASETS:
            prior = DATASETS.get(dataset).class_prior
            return float(prior[0]), float(prior[1])
        return UNIFORM_PRIOR
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(map(math.isfinite, values)) or min(values) < 0 or sum(values) <= 0:
        raise RatbenchError(f"interrat.priors must be auto or two non-negative numbers like 0.05,0.95 "
                            f"(pi_0,pi_1), got {text!r}. Fix it with --set priors=0.5,0.5.")
    return float(values[0]), float(values[1])


# -- the model ------------------------------------------------------------------------------------------
class ClassConfounder(nn.Module):
    """Class embeddings C (2 x H, N(0, 0.1^2)) and W_c, shared by the selector and the predictor."""

    def __init__(self, hidden: int, priors: tuple[float, float], num_classes: int = 2):
        super().__init__()
        self.classes = nn.Parameter(torch.randn(num_classes, hidden) * 0.1)
        self.project = nn.Linear(hidden, hidden)  # W_c, used by the selector only (reference)
        self.register_buffer("priors", torch.tensor(priors, dtype=torch.float32))

    def mixture(self, scores: torch.Tensor) -> torch.Tensor:
        """u = sum_k pi_k softmax(scores)_k c_k for scores (..., 2) -> (..., H)."""
        return (scores.softmax(-1) * self.priors) @ self.classes

    def token_mixture(self, h: torch.Tensor) -> torch.Tensor:
        """Selector side: scores s_t = h_t^T W_c C^T."""
        return self.mixture(h @ self.project(self.classes).transpose(0, 1))

    def pooled_mixture(self, r: torch.Tensor) -> torch.Tensor:
        """Predictor side: scores r^T C^T on the raw class embeddings (no W_c, as the reference)."""
        return self.mixture(r @ self.classes.transpose(0, 1))


class MaskedEncoder(nn.Module):
    """Input dropout on the (masked) vectors, BiGRU, outputs zeroed beyond each length (reference MaskGRU)."""

    def __init__(self, dim: int, hidden: int, dropout: float, gru_mode: str):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.gru = BiGRU(dim, hidden, gru_mode)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.gru(self.dropout(x), lengths) * mask.unsqueeze(-1)


def length_mask(lengths: torch.Tensor, width: int, device: torch.device) -> torch.Tensor:
    """(B, width) float mask from lengths (the selector API of Rationalizer takes lengths only)."""
    return (torch.arange(width, device=device)[None, :] < lengths.to(device)[:, None]).float()


class InterRATModel(nn.Module):
    """Embedding, confounder-aware selector and predictor, with the Rationalizer API the base hooks use
    (`embed`, `select_logits(emb, lengths)`, `predict(emb, z, mask, lengths)`)."""

    def __init__(self, vectors: torch.Tensor, hidden: int, dropout: float, gru_mode: str,
                 priors: tuple[float, float]):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)  # named as in Rationalizer: the engine leaves `embed.*` out of states
        self.confounder = ClassConfounder(hidden, priors)
        self.selector = MaskedEncoder(self.embed.dim, hidden, dropout, gru_mode)
        self.selector_head = nn.Linear(2 * hidden, 2)
        self.predictor = MaskedEncoder(self.embed.dim, hidden, dropout, gru_mode)
        self.predictor_head = nn.Linear(2 * hidden, 2)

    def select_logits(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, 2) logits from [h_t; u_t]; index 1 = select."""
        h = self.selector(emb, length_mask(lengths, emb.shape[1], emb.device), lengths)
        return self.selector_head(torch.cat([h, self.confounder.token_mixture(h)], -1))

    def pooled(self, emb: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """r = sum of the predictor's states over all real positions / max(1, number selected). Unselected
        positions still carry GRU states and are summed; only the count is of selected tokens (reference)."""
        z = z * mask
        h = self.predictor(emb * z.unsqueeze(-1), mask, lengths)
        return h.sum(1) / selected_count(z, mask).unsqueeze(1)

    def predict(self, emb: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        r = self.pooled(emb, z, mask, lengths)
        return self.predictor_head(torch.cat([r, self.confounder.pooled_mixture(r)], -1))


# -- the method -----------------------------------------------------------------------------------------
INFO = MethodInfo(
    name="interrat",
    title="Inter_RAT",
    description="Inter_RAT: RNP de-confounded by backdoor adjustment over learnable class embeddings",
    family="cooperative + backdoor adjustment (class confounders)",
    citation="Yue et al., EMNLP 2023",
    order=40,
    groups=("table1",),
    provenance="adaptation",
)


@register_method(INFO)
class InterRAT(Method):
    """Inter_RAT: RNP de-confounded by backdoor adjustment over learnable class embeddings (selector and predictor).

    Its regulariser weights are its own `lambda_s`/`lambda_c` (reference 0.05/0.01, per-example terms);
    RunConfig.lambda_sparsity/lambda_continuity are RNP's (11/12, pooled terms) and are not used, nor is
    cls_weight (no 0.9 on the cross-entropy). The reference lr is 1e-3 (set `lr` in the profile); after
    every epoch lr <- max(lr_floor, lr_decay * lr).
    """

    defaults = {"lambda_s": 0.05, "lambda_c": 0.01, "lr_decay": 0.97, "lr_floor": 5e-5, "priors": "auto"}

    def __init__(self, config: RunConfig):
        super().__init__(config)
        self.priors = resolve_priors(self.params["priors"], None)

    def prepare(self, corpus: Corpus, train: Split, context: dict[str, Any]) -> None:
        """The priors depend on the dataset (beer vs others), known only here."""
        dataset = context.get("dataset") or getattr(corpus, "name", None)
        self.priors = resolve_priors(self.params["priors"], dataset)
        self.notes["priors"] = list(self.priors)

    def build_model(self, backbone: Any) -> nn.Module:
        """Its own GRU architecture over the frozen vectors (GRU backbone only)."""
        c = self.config
        return InterRATModel(backbone.vectors, hidden=c.hidden_size, dropout=c.dropout, gru_mode=c.gru_mode,
                             priors=self.priors)

    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """One Adam, one lr for everything (reference); the frozen embedding is left out."""
        params = [p for p in model.parameters() if p.requires_grad]
        return [torch.optim.Adam([{"params": params, "lr": self.config.lr, "name": "all"}])]

    def on_epoch_end(self, epoch: int, optimizers: list[torch.optim.Optimizer]) -> None:
        """lr <- max(floor, decay * lr). The floor never lifts lr above the configured start (a run started
        below 5e-5 just decays), which the reference, always started at 1e-3, never meets."""
        decay, floor = float(self.params["lr_decay"]), float(self.params["lr_floor"])
        for opt in optimizers:
            for group in opt.param_groups:
                start = group.setdefault("initial_lr", group["lr"])
                group["lr"] = max(min(floor, start), decay * group["lr"])

    def regulariser(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """lambda_s * per-example sparsity + lambda_c * per-example continuity (docs/methods.md#interrat), alpha as
        calibrated."""
        p = self.params
        return (float(p["lambda_s"]) * per_example_sparsity(z, mask, self.alpha)
                + float(p["lambda_c"]) * per_example_continuity(z, mask))

    def _select(self, model: nn.Module, batch: Batch, emb: torch.Tensor,
                generator: torch.Generator | None = None, argmax: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard selection on real tokens only (the reference multiplies by the mask) and the selector logits."""
        logits = model.select_logits(emb, batch.lengths)
        if argmax:
            z = (logits[..., 1] > logits[..., 0]).to(logits.dtype)
        else:
            z, _ = sample_st(logits, self.config.tau, generator)
        return z * batch.mask, logits

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        emb = model.embed(batch.ids, batch.mask)
        z, _ = self._select(model, batch, emb)
        pred_logits = model.predict(emb, z, batch.mask, batch.lengths)
        cls = nn.functional.cross_entropy(pred_logits, batch.labels)
        loss = cls + self.regulariser(z, batch.mask)
        self.backward_step(loss, optimizers)
        return step_stats(loss, cls, pred_logits, z, batch)

    def rationale(
        self, model: nn.Module, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As Method.rationale (eval_mode sample/argmax), but z is already masked to real tokens."""
        emb = model.embed(batch.ids, batch.mask)
        z, logits = self._select(model, batch, emb, generator, argmax=self.config.eval_mode == "argmax")
        pred = model.predict(emb, z, batch.mask, batch.lengths)
        return z, pred, logits.softmax(-1)[..., 1]

    pools_over_positions = False  # its predictor does not max-pool masked word vectors

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """Predictor logits reading only `keep` of the real tokens; pooling divides by the kept count."""
        emb = model.embed(batch.ids, batch.mask)
        return model.predict(emb, keep * batch.mask, batch.mask, batch.lengths)
