"""CR (Zhang et al., ICML 2023): a variational soft selector and a necessity (PNS) term (docs/methods.md#cr).

Transformer backbone only. Per training batch:

- selector: encoder states -> Linear(H, 128) -> ReLU -> Linear(128, 1) -> dropout on the logit: l_t;
- z_t ~ RelaxedBernoulli(cr_tau, logits=l_t) (reparameterised), 0 at every non-selectable position;
- predictor: reads the whole input (no multiplication by z) under the additive attention bias log(z_vis + 1e-8)
  on the keys of every layer, z_vis = z on selectable pieces and 1 on [CLS]/[SEP]/query pieces, so a soft z_j
  scales key j's unnormalised attention weight by z_j; it max-pools over those always-visible positions only
  (a piece's own state carries its token through the residual path, so pooling over unselected pieces would
  read them);
- loss = CE + beta * KL(Bern(sigmoid(l)) || Bern(pi)) (per-example mean over selectable pieces, batch mean)
  + mu * L_PNS, L_PNS(b) = -mean_{j in S_b} log(1 + max(0, sg(P(y|z)) - P(y|z^(-j)))), S_b up to
  ceil(pns_k % * n_b) pieces drawn among those with z > 0.8, all ablations of a batch in one predictor call.

Evaluation selects the top-k pieces by sigmoid(l) per example at the target sparsity; there is no alpha, so the
catalog declares `sparsity="top-k"` and the engine calibrates nothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch, take_rows
from ratbench.errors import RatbenchError
from ratbench.methods.base import Method, accumulate_parts, register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.metrics import topk_select
from ratbench.models.players import PredictorPlayer, visible
from ratbench.models.rationalizer import Rationalizer

LOG_EPS = 1e-8  # inside log(z + eps): a z = 0 key keeps 1e-8 of its attention weight, i.e. it is dropped
KEEP_ABOVE = 0.8  # only pieces with z above this are ablated by the necessity term
HEAD_HIDDEN = 128
PNS_MODES = ("mean", "last_only")


# -- the pieces of the objective ---------------------------------------------------------------------------
def relaxed_bernoulli(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """z = sigmoid((l + log u - log(1 - u)) / tau), u ~ U(0, 1): torch's RelaxedBernoulli, reparameterised."""
    return torch.distributions.RelaxedBernoulli(torch.tensor(tau, device=logits.device), logits=logits).rsample()


def kl_to_prior(logits: torch.Tensor, mask: torch.Tensor, pi: float) -> torch.Tensor:
    """mean_b [ sum_t p_t KL(Bern(sigmoid(l_t)) || Bern(pi)) / sum_t p_t ], p = the selectable pieces.

    KL(Bern(q) || Bern(pi)) = q log(q / pi) + (1 - q) log((1 - q) / (1 - pi)), with log q and log(1 - q) taken
    as logsigmoid(+-l) so a saturated logit does not produce 0 * log 0."""
    q = torch.sigmoid(logits)
    kl = (q * (nn.functional.logsigmoid(logits) - math.log(pi))
          + (1.0 - q) * (nn.functional.logsigmoid(-logits) - math.log(1.0 - pi)))
    per_example = (kl * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return per_example.mean()


def log_mask_bias(z: torch.Tensor, batch: Batch) -> torch.Tensor:
    """log(z_vis + 1e-8) per key: z on selectable pieces, 1 on the forced ones ([CLS], [SEP], a query), so those
    are never biased; padding stays closed whatever the bias (models/transformer.py)."""
    if batch.forced is None:
        raise RatbenchError("CR's predictor needs the transformer backbone's batches ([CLS]/[SEP] positions); "
                            "run it with --set backbone=transformer.")
    return torch.log(visible(z, batch) + LOG_EPS)


def necessity_sites(z: torch.Tensor, batch: Batch, k_percent: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the ablated pieces: per example up to ceil(k% * n_b) of its selectable pieces with
    z > 0.8, uniformly without replacement (all of them when fewer); n_b = its real length, [CLS]/[SEP]
    included, as the published code counts it.

    Vectorised: random keys ranked per row, the first m_b candidates win (uniform sampling without
    replacement)."""
    cand = (z.detach() > KEEP_ABOVE) & (batch.mask > 0.5)
    n_real = batch.attention.sum(1).double()
    budget = torch.ceil(n_real * k_percent / 100.0).long()  # n * k first: 60 * 5 / 100 is exactly 3
    take = torch.minimum(cand.sum(1), budget)
    keys = torch.rand(z.shape, generator=generator, device=z.device).masked_fill(~cand, -1.0)
    order = keys.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous())
    chosen = (ranks < take.unsqueeze(1)) & cand
    rows, cols = chosen.nonzero(as_tuple=True)
    return rows, cols


def pns_from_probs(prob_full: torch.Tensor, prob_ablated: torch.Tensor, rows: torch.Tensor, batch_size: int,
                   mode: str = "mean") -> torch.Tensor:
    """The batch's necessity loss from P(y|z) per example and P(y|z^(-j)) per ablation (of example rows[i]).

    L_PNS(b) = -(1/|S_b|) sum_j log(1 + max(0, sg(P(y|z_b)) - P(y|z_b^(-j)))), 0 when S_b is empty.
    `mean`: the mean of L_PNS(b) over all examples of the batch. `last_only`: L_PNS of the last example alone
    (the published code resets its accumulator inside the per-example loop; docs/methods.md#cr)."""
    drop = (prob_full.detach()[rows] - prob_ablated).clamp_min(0.0)
    terms = torch.log1p(drop)
    sums = torch.zeros(batch_size, dtype=terms.dtype, device=terms.device).index_add(0, rows, terms)
    counts = torch.bincount(rows, minlength=batch_size).to(terms.dtype)
    per_example = -sums / counts.clamp_min(1.0)
    if mode == "last_only":
        return per_example[-1]
    return per_example.mean()


# -- the players ---------------------------------------------------------------------------------------------
class CausalSelector(nn.Module):
    """encoder -> Linear(H, 128) -> ReLU -> Linear(128, 1) -> Dropout: one selection logit per position."""

    def __init__(self, encoder: nn.Module, width: int, dropout: float, hidden: int = HEAD_HIDDEN):
        super().__init__()
        self.encoder = encoder  # named like SelectorPlayer's, so `encoder_lr` finds it
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.dropout(self.head(self.encoder(emb, batch)).squeeze(-1))


class CausalRationalizer(Rationalizer):
    """The Rationalizer API with CR's players: `select_logits` gives (B, L, 2) = [0, l] (so softmax(.)[1] is
    sigmoid(l) and "a1 > a0" is l > 0), `selection_logits` the raw l (B, L); `predict` reads z through the
    log-mask attention bias and pools over the always-visible positions."""

    def __init__(self, backbone: Any, dropout: float = 0.2, num_classes: int = 2):
        # Not Rationalizer.__init__: it would deep-copy a pretrained encoder for a selector that is replaced.
        nn.Module.__init__(self)
        self.embed = backbone.embedding()
        self.selector = CausalSelector(backbone.encoder(), backbone.width, dropout)
        self.predictor = PredictorPlayer(backbone.encoder(), backbone.width, dropout, num_classes)

    def selection_logits(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.selector(emb, batch).float()

    def select_logits(self, emb: torch.Tensor, batch: Batch) -> torch.Tensor:
        logit = self.selection_logits(emb, batch)
        return torch.stack([torch.zeros_like(logit), logit], dim=-1)

    def predict(self, emb: torch.Tensor, z: torch.Tensor, batch: Batch, pool: torch.Tensor | None = None,
                remove: bool = False) -> torch.Tensor:
        """Predictor logits with z (soft or hard) as the log-mask bias; a z = 0 piece is out of attention
        already, so `remove` changes nothing. Pools over the forced positions unless `pool` is given."""
        bias = log_mask_bias(z, batch)
        return self.predictor(emb, None, batch, batch.forced if pool is None else pool, attn_bias=bias).float()


INFO = MethodInfo(
    name="cr",
    title="CR",
    description="CR: relaxed-Bernoulli selector with a KL prior, log-mask attention predictor, necessity (PNS) loss",
    family="variational selector + causal necessity",
    citation="Zhang et al., Towards Trustworthy Explanation: On Causal Rationalization, ICML 2023",
    order=130,
    backbones=("transformer",),
    provenance="adaptation",
    sparsity="top-k",
)


@register_method(INFO)
class CR(Method):
    """CR: relaxed-Bernoulli selector with a KL prior, log-mask attention predictor, necessity (PNS) loss.

    Settings (docs/methods.md#cr): `pi` the Bernoulli prior (None: the target sparsity; the published scripts
    use 0.1), `beta` the KL weight, `cr_tau` the relaxation temperature (the engine's `tau` is Gumbel's and
    unused here), `pns_k` the percent of the length ablated, `mu` the PNS weight, `cr_pns` mean | last_only,
    `micro_batches` how many parts each batch is split into for gradient accumulation (one optimizer step
    per batch; `batch_size` is the effective batch)."""

    defaults = {"pi": None, "beta": 1.0, "cr_tau": 0.5, "pns_k": 5.0, "mu": 0.1, "cr_pns": "mean",
                "micro_batches": 1}
    model_class = CausalRationalizer
    pools_over_positions = False  # CR pools over [CLS]/[SEP] only: the gold probe's pooled variant does not apply

    def __init__(self, config: RunConfig):
        super().__init__(config)
        p = self.params
        target = config.target_sparsity
        if p["pi"] is None and target is None:
            raise RatbenchError("CR needs a prior pi: set target_sparsity (pi follows it) or --set pi=0.1.")
        self.pi = float(p["pi"]) if p["pi"] is not None else float(target) / 100.0
        # top-k at the target sparsity so every method is compared at the same S; pi only without a target
        self.eval_fraction = float(target) / 100.0 if target is not None else self.pi
        checks = [
            (0.0 < self.pi < 1.0, f"pi must be in (0, 1), got {self.pi}"),
            (0.0 < self.eval_fraction <= 1.0, f"target_sparsity must be in (0, 100], got {target}"),
            (float(p["cr_tau"]) > 0.0, f"cr_tau must be positive, got {p['cr_tau']}"),
            (float(p["pns_k"]) > 0.0, f"pns_k must be positive, got {p['pns_k']}"),
            (p["cr_pns"] in PNS_MODES, f"cr_pns must be one of {', '.join(PNS_MODES)}, got {p['cr_pns']!r}"),
            (int(p["micro_batches"]) >= 1, f"micro_batches must be at least 1, got {p['micro_batches']}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RatbenchError(message + ".")
        self.notes.update(
            pi=self.pi, eval_topk_percent=100.0 * self.eval_fraction, cr_pns=p["cr_pns"],
            sparsity="top-k of sigmoid(l) at the target sparsity; alpha and its dev calibration are unused",
        )

    # -- construction ------------------------------------------------------------------------------
    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """AdamW (torch's defaults, weight decay 0.01) as the published code, over the usual groups."""
        groups = [*self.param_groups("selector", model.selector, self.config.lr),
                  *self.param_groups("predictor", model.predictor, self.config.lr)]
        return [torch.optim.AdamW(groups)]

    # -- training ------------------------------------------------------------------------------------
    def necessity(self, model: nn.Module, emb: torch.Tensor, z: torch.Tensor, batch: Batch,
                  prob_full: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """mu-free L_PNS of the batch; every ablated mask of the batch goes through the predictor in one call."""
        rows, cols = necessity_sites(z, batch, float(self.params["pns_k"]), generator)
        if self.params["cr_pns"] == "last_only":
            keep = rows == len(batch) - 1  # the others would be computed and then thrown away
            rows, cols = rows[keep], cols[keep]
        if rows.numel() == 0:
            return z.new_zeros(())
        ablated = z[rows] * (1.0 - nn.functional.one_hot(cols, z.shape[1]).to(z.dtype))
        sub = take_rows(batch, rows)
        logits = model.predict(emb[rows], ablated, sub)
        prob = logits.softmax(-1).gather(1, sub.labels[:, None]).squeeze(1)
        return pns_from_probs(prob_full, prob, rows, len(batch), str(self.params["cr_pns"]))

    def losses(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """CE + beta * KL + mu * PNS of one (micro-)batch, with its parts."""
        p = self.params
        emb = model.embed(batch.ids, batch.mask)
        logits = model.selection_logits(emb, batch)
        z = relaxed_bernoulli(logits, float(p["cr_tau"])) * batch.mask
        pred = model.predict(emb, z, batch)
        cls = nn.functional.cross_entropy(pred, batch.labels)
        kl = kl_to_prior(logits, batch.mask, self.pi)
        mu = float(p["mu"])
        if mu > 0.0:
            prob_full = pred.detach().softmax(-1).gather(1, batch.labels[:, None]).squeeze(1)
            pns = self.necessity(model, emb, z, batch, prob_full)
        else:
            pns = z.new_zeros(())
        loss = cls + float(p["beta"]) * kl + mu * pns
        return {"loss": loss, "cls": cls, "kl": kl, "pns": pns, "pred": pred, "z": z}

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One optimizer step per batch; with `micro_batches` n > 1 the batch is processed in n parts whose
        gradients add up (each weighted by its share of the examples), as the published gradient accumulation."""
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        parts = accumulate_parts(batch, int(self.params["micro_batches"]), lambda part: self.losses(model, part))
        for opt in optimizers:
            opt.step()
        total = {k: torch.stack([t[k] for t in parts]).sum() for k in ("loss", "cls", "kl", "pns")}
        pred = torch.cat([t["pred"] for t in parts])
        hard = (torch.cat([t["z"] for t in parts]) > 0.5).float()  # train S counts pieces with z > 0.5
        stats = step_stats(total["loss"], total["cls"], pred, hard, batch)
        stats.update(kl=float(total["kl"]), pns=float(total["pns"]))
        return stats

    # -- evaluation ----------------------------------------------------------------------------------
    def rationale(self, model: nn.Module, batch: Batch,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k of sigmoid(l) per example at the target sparsity (round(S * selectable pieces), at least one,
        ties to the earlier piece), the predictor on that hard mask, and sigmoid(l) as the soft scores.
        Deterministic: no sampling, so `eval_mode` and the generator do not apply."""
        emb = model.embed(batch.ids, batch.mask)
        scores = torch.sigmoid(model.selection_logits(emb, batch)) * batch.mask
        z = topk_select(scores, batch.mask, self.eval_fraction)
        return z, model.predict(emb, z, batch), scores

    def predict_with(self, model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
        """The predictor with `keep` as its log-mask: an unkept piece is out of attention (ERASER's removal)."""
        emb = model.embed(batch.ids, batch.mask)
        return model.predict(emb, keep * batch.mask, batch)
