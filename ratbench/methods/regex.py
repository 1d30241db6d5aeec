"""REGEX (Li et al., TrustNLP 2023; docs/methods.md#regex): a classifier trained for robustness and for agreement
with its own saliency, explained by that saliency's top-k tokens. **Reconstructed**: no code or hyperparameters
of REGEX are public, so every term below follows the paper's description and every number is a setting.

Per training batch, with E the word embeddings the classifier reads and p = softmax(F(E)) of the training pass:

- CE(F(E), y);
- input-gradient regularisation: lambda_igr * mean_b ||d CE_b / d E_b||^2 (double back-propagation);
- virtual adversarial training: d ~ N(0, I) on the selectable tokens, unit norm per example; `vat_iterations`
  power iterations g = d KL(p0 || p(E + xi d)) / d r, d <- g / ||g|| (eval mode, p0 = the eval-mode prediction
  on E, no parameter gradient); r_adv = eps d; lambda_vat * KL(sg(p) || p(E + r_adv));
- saliency masking (Saliency Guided Training): the gold class's attribution (Input x Gradient by default,
  Integrated Gradients as in the paper with `regex_saliency=integrated_gradients`; eval mode, detached) ranks the
  selectable tokens; the lowest `mask_ratio` share is replaced by [MASK] (GRU: the zero PAD/UNK vector);
  lambda_mask * KL(sg(p) || p(masked));
- attention alignment: a = the classifier's attention over the selectable tokens (GRU: its additive attention;
  transformer: the last layer's [CLS] row averaged over heads), renormalised; s = softmax(saliency / T) over the
  same tokens; lambda_att * KL(s || a).

Rationale: the top-S* tokens by the highlight explainer (the saliency's by default) for the predicted class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ratbench.config import RunConfig
from ratbench.data.batching import Batch
from ratbench.errors import RatbenchError
from ratbench.methods.base import register_method, step_stats
from ratbench.methods.catalog import MethodInfo
from ratbench.methods.unirex import EmbeddingView, ExplainedClassifier, evaluating, gradient_explainer, percent_rule
from ratbench.metrics import topk_select

TINY = 1e-12


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Half-precision logits (autocast) in float32 for the divergences; float64 stays float64."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


# -- the pieces (checked by hand in tests/test_method_regex.py) -------------------------------------------------
def input_gradient_penalty(ce_per_example: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """mean_b ||d CE_b / d E_b||^2 with its graph (double back-propagation); `emb` is the leaf the CE was computed
    from. Rows are independent, so the gradient of the summed CE holds every example's own gradient."""
    (grad,) = torch.autograd.grad(ce_per_example.sum(), emb, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def kl_to(target_logp: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per batch (mean over rows) with p = exp(target_logp) held fixed, q = softmax(logits)."""
    return nn.functional.kl_div(at_least_float32(logits).log_softmax(-1), at_least_float32(target_logp.detach()),
                                log_target=True, reduction="batchmean")


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Each example's (L, D) block scaled to unit L2 norm (a zero block stays zero)."""
    norm = torch.linalg.vector_norm(x.flatten(1), dim=1).clamp_min(TINY)
    return x / norm.view(-1, *([1] * (x.dim() - 1)))


def vat_perturbation(forward: Callable[[torch.Tensor], torch.Tensor], emb: torch.Tensor, mask: torch.Tensor,
                     xi: float, eps: float, iterations: int = 1, direction: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, logits: torch.Tensor | None = None) -> torch.Tensor:
    """r_adv (B, L, D): `eps` times the unit direction (per example, over the tokens with mask 1) found by
    `iterations` power iterations of the Hessian of r -> KL(p(E) || p(E + r)) at r = 0, estimated by the finite
    difference at r = xi d. `direction` is the starting d (default Gaussian noise from `generator`). Only
    gradients with respect to r are taken: no parameter receives a .grad. `logits`: forward(emb) if the caller
    has it (saves a pass). Detached."""
    e = emb.detach()
    m = mask.to(e.dtype).unsqueeze(-1)
    if logits is None:
        with torch.no_grad():
            logits = forward(e)
    target = at_least_float32(logits.detach()).log_softmax(-1)
    d = torch.randn(e.shape, generator=generator, device=e.device, dtype=e.dtype) if direction is None else direction
    d = unit_rows(d.to(e.dtype) * m)
    for _ in range(int(iterations)):
        r = (xi * d).requires_grad_(True)
        divergence = nn.functional.kl_div(at_least_float32(forward(e + r)).log_softmax(-1), target, log_target=True,
                                          reduction="sum")
        (g,) = torch.autograd.grad(divergence, r)
        d = unit_rows(g.detach() * m)
    return eps * d


def lowest_share(scores: torch.Tensor, mask: torch.Tensor, share: float) -> torch.Tensor:
    """(B, L) 0/1: the max(1, round(share * n)) lowest-scoring of each row's n tokens with mask 1 (ties to the
    earlier position), the tokens REGEX masks."""
    return topk_select(-scores.detach().float(), mask, share)


def masked_softmax(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the positions with mask 1 (0 elsewhere; a row without any stays 0)."""
    real = mask > 0.5
    out = values.float().masked_fill(~real, float("-inf")).softmax(-1)
    return torch.nan_to_num(out, nan=0.0) * real


def attention_alignment(saliency: torch.Tensor, attention: torch.Tensor, mask: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """mean_b KL(s_b || a_b), s = softmax(saliency / T) and a = the attention renormalised, both over the tokens
    with mask 1; s is held fixed (the saliency is a target, not trained)."""
    s = masked_softmax(saliency.detach() / temperature, mask)
    a = attention.float() * mask
    a = a / a.sum(1, keepdim=True).clamp_min(TINY)
    kl = s * (torch.log(s.clamp_min(TINY)) - torch.log(a.clamp_min(TINY)))
    return (kl * mask).sum(1).mean()


INFO = MethodInfo(
    name="regex",
    title="REGEX",
    description="REGEX: robust (input-gradient, VAT) and saliency-guided training of a classifier; top-k saliency",
    family="explanation-trained classifier",
    citation="Li et al., Towards Faithful Explanations for Text Classification with Robustness Improvement and "
             "Explanation Guided Training, TrustNLP 2023",
    order=170,
    backbones=("gru", "transformer"),
    kind="explained-classifier",
    runs_after=("rnp",),
    provenance="reconstructed",
    sparsity="top-k",
)


@register_method(INFO)
class Regex(ExplainedClassifier):
    """REGEX: robust (input-gradient, VAT) and saliency-guided training of a classifier; top-k saliency.

    Settings (docs/methods.md#regex), all reconstructed: `regex_lambda_igr`, `regex_lambda_vat`, `regex_vat_xi`,
    `regex_vat_eps`, `regex_vat_iterations`, `regex_lambda_mask`, `regex_mask_ratio`, `regex_lambda_att`,
    `regex_att_temperature`; `regex_saliency` (the training explainer) and `regex_ig_steps`; `regex_highlights`
    (`saliency` = the training explainer, or another explainer's name); `regex_weight_decay` (AdamW)."""

    defaults: ClassVar[dict[str, Any]] = {
        **ExplainedClassifier.defaults,
        "regex_lambda_igr": 0.01, "regex_lambda_vat": 1.0, "regex_vat_xi": 0.1, "regex_vat_eps": 1.0,
        "regex_vat_iterations": 1, "regex_lambda_mask": 1.0, "regex_mask_ratio": 0.5, "regex_lambda_att": 1.0,
        "regex_att_temperature": 1.0, "regex_saliency": "input_x_gradient", "regex_ig_steps": 20,
        "regex_highlights": "saliency", "regex_weight_decay": 0.0,
    }

    def __init__(self, config: RunConfig):
        super().__init__(config)
        p = self.params
        steps = int(p["regex_ig_steps"])
        self.saliency = gradient_explainer(str(p["regex_saliency"]), steps, "regex_saliency")
        self.lambdas = {k: float(p[f"regex_lambda_{k}"]) for k in ("igr", "vat", "mask", "att")}
        checks = [
            (all(v >= 0 for v in self.lambdas.values()), "the regex_lambda_* weights must be non-negative"),
            (0.0 < float(p["regex_mask_ratio"]) < 1.0,
             f"regex_mask_ratio must be in (0, 1), got {p['regex_mask_ratio']}"),
            (float(p["regex_vat_xi"]) > 0 and float(p["regex_vat_eps"]) > 0,
             "regex_vat_xi and regex_vat_eps must be > 0"),
            (int(p["regex_vat_iterations"]) >= 1, "regex_vat_iterations must be at least 1"),
            (float(p["regex_att_temperature"]) > 0, "regex_att_temperature must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise RatbenchError(message + ".")
        self.highlights_name = str(p["regex_saliency"]) if p["regex_highlights"] == "saliency" \
            else str(p["regex_highlights"])
        self.highlighter = gradient_explainer(self.highlights_name, steps, "regex_highlights")
        # Input x Gradient / Saliency highlights cost one backward pass: cheap enough to explain every epoch
        self.explain_every_epoch = self.highlighter.passes(True).backward <= 1

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {**super().describe(), "provenance": "reconstructed from the paper's description (no public code)",
                "saliency": p["regex_saliency"], "highlights": self.highlights_name,
                "objectives": {k: v for k, v in self.lambdas.items() if v > 0} or "none"}

    def evaluation_variants(self) -> dict[str, dict[str, Any]]:
        """The native binarisation (the share training keeps unmasked) and, beside Input x Gradient highlights,
        Integrated Gradients ones (and the reverse), as the paper reports IG highlights."""
        keep = percent_rule(round(100.0 * (1.0 - float(self.params["regex_mask_ratio"])), 6))
        out = self.binarise_variants([keep])
        other = "integrated_gradients" if self.highlights_name != "integrated_gradients" else "input_x_gradient"
        out[f"regex_highlights={other}"] = {"regex_highlights": other}
        return out

    def make_optimizer(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, weight_decay=float(self.params["regex_weight_decay"]))

    # -- evaluation ---------------------------------------------------------------------------------------------
    def token_scores(self, model: nn.Module, batch: Batch, logits: torch.Tensor,
                     alpha: torch.Tensor | None) -> torch.Tensor:
        """The highlight explainer's attribution of the predicted class (read at call time: a variant may change
        the explainer)."""
        name = str(self.params["regex_saliency"]) if self.params["regex_highlights"] == "saliency" \
            else str(self.params["regex_highlights"])
        explainer = self.highlighter if name == self.highlights_name else \
            gradient_explainer(name, int(self.params["regex_ig_steps"]), "regex_highlights")
        return self.attribute(model, batch, explainer, logits=logits).scores

    # -- training -----------------------------------------------------------------------------------------------
    def losses(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """CE + the four weighted REGEX terms of one batch, with the parts (see the module docstring)."""
        lam, p = self.lambdas, self.params
        view = EmbeddingView(model.classifier)
        args = view.args(batch)
        emb = view.embed(batch).detach()
        x = emb.clone().requires_grad_(lam["igr"] > 0)
        if lam["att"] > 0:
            logits, attention = view.logits_and_attention(x, *args)
        else:
            logits, attention = view.only_logits(x, *args), None
        logits = logits.float()
        ce_each = nn.functional.cross_entropy(logits, batch.labels, reduction="none")
        zero = ce_each.sum() * 0.0
        terms = {"ce": ce_each.mean(), "igr": zero, "vat": zero, "mask": zero, "att": zero}
        logp = logits.detach().log_softmax(-1)
        if lam["igr"] > 0:
            terms["igr"] = input_gradient_penalty(ce_each, x)
        eval_logits = None  # the eval-mode prediction on E: the attribution's forward, reused as VAT's p0
        if lam["mask"] > 0 or lam["att"] > 0:
            att = self.attribute(model, batch, self.saliency, target=batch.labels)
            saliency, eval_logits = att.scores, att.logits
        if lam["vat"] > 0:
            with evaluating(model):
                r_adv = vat_perturbation(lambda e: view.only_logits(e, *args), emb, batch.mask,
                                         float(p["regex_vat_xi"]), float(p["regex_vat_eps"]),
                                         int(p["regex_vat_iterations"]), logits=eval_logits)
            terms["vat"] = kl_to(logp, view.only_logits(emb + r_adv, *args))
        if lam["mask"] > 0 or lam["att"] > 0:
            if lam["mask"] > 0:
                hidden = lowest_share(saliency, batch.mask, float(p["regex_mask_ratio"])).unsqueeze(-1) > 0.5
                filler = view.mask_vector()
                filler = torch.zeros((), dtype=emb.dtype, device=emb.device) if filler is None else filler
                terms["mask"] = kl_to(logp, view.only_logits(torch.where(hidden, filler, emb), *args))
            if lam["att"] > 0:
                terms["att"] = attention_alignment(saliency, attention, batch.mask,
                                                   float(p["regex_att_temperature"]))
        loss = terms["ce"] + sum((lam[k] * terms[k] for k in ("igr", "vat", "mask", "att")), zero)
        return {"loss": loss, **terms, "logits": logits}

    def train_step(self, model: nn.Module, batch: Batch, optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        terms = self.losses(model, batch)
        self.optimise(terms["loss"], optimizers)
        stats = step_stats(terms["loss"], terms["ce"], terms["logits"], batch.mask, batch)
        stats.update({f"{k}_loss": float(terms[k].detach()) for k in ("igr", "vat", "mask", "att")})
        return stats
