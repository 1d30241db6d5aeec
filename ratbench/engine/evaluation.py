"""Evaluation passes: accuracy, sparsity and agreement with the human rationale, and the faithfulness
metrics of the selected model (docs/metrics.md). Every pass runs in inference mode with a sampling
generator re-seeded from `eval_seed`, so the same model always gets the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ratbench.data.batching import Batch
from ratbench.metrics import AOPC_BINS, Accuracy, TokenOverlap, aopc, auprc, iou_f1, topk_select

EVAL_BATCH = 256


def to_words(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Piece-level values (B, L) -> word-level (B, W): each word takes the maximum over its pieces (a word is
    selected if any of its pieces is). Positions outside words (specials, query, padding) are dropped."""
    width = batch.word_mask.shape[1]
    index = torch.where(batch.word_index < 0, torch.full_like(batch.word_index, width), batch.word_index)
    out = torch.zeros(values.shape[0], width + 1, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(1, index, values, "amax", include_self=True)[:, :width]


def _levels(z: torch.Tensor, batch: Batch, gold: bool) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(suffix, selection, gold, mask) per level the metrics are reported at: words ("" suffix) and pieces
    ("_subword") when the batch holds sub-word pieces, else the tokens themselves."""
    mask = batch.mask.cpu().numpy()
    g = batch.gold.cpu().numpy() if (gold and batch.gold is not None) else np.zeros_like(mask)
    if batch.word_index is None:
        return [("", z.float().cpu().numpy(), g, mask)]
    words = to_words(z.float() * batch.mask, batch).cpu().numpy()
    wmask = batch.word_mask.cpu().numpy()
    wg = batch.word_gold.cpu().numpy() if (gold and batch.word_gold is not None) else np.zeros_like(wmask)
    return [("", words, wg, wmask), ("_subword", z.float().cpu().numpy(), g, mask)]


def eval_generator(device: torch.device, seed: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


@torch.inference_mode()
def full_text_accuracy(method: Any, model: torch.nn.Module, batches: list[Batch]) -> float:
    """The predictor on the whole text (every real token selected)."""
    model.eval()
    acc = Accuracy()
    for batch in batches:
        logits = method.predict_with(model, batch, torch.ones_like(batch.mask))
        acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
    return acc.compute()


@torch.inference_mode()
def evaluate(method: Any, model: torch.nn.Module, batches: list[Batch], gold: bool, generator: torch.Generator,
             explain: bool = True) -> dict[str, float]:
    """One pass: accuracy, sparsity and (with `gold`) overlap with the human rationale. Without `explain`
    only the classification is computed and rationale metrics are NaN (costly post-hoc explainers)."""
    model.eval()
    post_hoc = method.post_hoc
    acc, rat_acc = Accuracy(), Accuracy()
    overlaps: dict[str, TokenOverlap] = {}
    for batch in batches:
        if explain:
            z, logits, _ = method.rationale(model, batch, generator)
        else:
            logits, z = method.classify(model, batch), None
        acc.update(logits.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
        if post_hoc and explain:
            on_rationale = method.predict_with(model, batch, z)
            rat_acc.update(on_rationale.argmax(-1).cpu().numpy(), batch.labels.cpu().numpy())
        if z is not None:
            for suffix, sel, g, mask in _levels(z, batch, gold):
                overlaps.setdefault(suffix, TokenOverlap()).update(sel, g, mask)
    out = {"Acc": acc.compute()}
    # the published code's S and P count selected padding, at the level of its tensors (tokens, or pieces)
    ref = overlaps.get("_subword", overlaps.get(""))
    for suffix in overlaps or {"": None}:
        ov = overlaps[suffix].compute() if explain and overlaps else dict.fromkeys(TokenOverlap.KEYS, float("nan"))
        ref_ov = ref.compute() if explain and ref is not None else dict.fromkeys(TokenOverlap.KEYS, float("nan"))
        out[f"S{suffix}"] = ov["S"]
        if not suffix:
            out["s_ref"] = ref_ov["S_ref"]
        if gold:
            out.update({f"P{suffix}": ov["P"], f"R{suffix}": ov["R"], f"F1{suffix}": ov["F1"]})
            if not suffix:
                out["p_ref"] = ref_ov["P_ref"]
            out.update({f"p_macro{suffix}": ov["P_macro"], f"r_macro{suffix}": ov["R_macro"],
                        f"f1_macro{suffix}": ov["F1_macro"]})
            out.update({f"p_random{suffix}": ov["P_random"], f"r_random{suffix}": ov["R_random"],
                        f"f1_random{suffix}": ov["F1_random"]})
    if post_hoc and explain:
        out["rationale_acc"] = rat_acc.compute()
    return out


@torch.inference_mode()
def faithfulness(method: Any, model: torch.nn.Module, batches: list[Batch],
                 generator: torch.Generator) -> dict[str, float]:
    """ERASER comprehensiveness/sufficiency of the hard rationale, their AOPC over top-k% of the selector's
    soft scores, IOU-F1 and AUPRC, and the predictor's full-text accuracy, all from one pass."""
    model.eval()
    comp, suff = [], []
    comp_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
    suff_bins: dict[float, list[np.ndarray]] = {k: [] for k in AOPC_BINS}
    full_acc = Accuracy()
    spans: list[tuple[torch.Tensor, ...]] = []

    def prob(keep: torch.Tensor, batch: Batch, cls: torch.Tensor) -> np.ndarray:
        p = method.predict_with(model, batch, keep).float().softmax(-1)
        return p.gather(1, cls[:, None]).squeeze(1).cpu().numpy()

    for batch in batches:
        z, _, scores = method.rationale(model, batch, generator)
        zm = z * batch.mask
        full_logits = method.predict_with(model, batch, torch.ones_like(batch.mask))
        cls = full_logits.argmax(-1)
        full_acc.update(cls.cpu().numpy(), batch.labels.cpu().numpy())
        p_full = full_logits.float().softmax(-1).gather(1, cls[:, None]).squeeze(1).cpu().numpy()
        comp.append(p_full - prob(1.0 - zm, batch, cls))
        suff.append(p_full - prob(zm, batch, cls))
        for k in AOPC_BINS:
            top = topk_select(scores, batch.mask, k)
            comp_bins[k].append(p_full - prob(1.0 - top, batch, cls))
            suff_bins[k].append(p_full - prob(top, batch, cls))
        if batch.word_index is not None and batch.word_gold is not None:  # spans and AUPRC over words
            spans.append((to_words(zm, batch), batch.word_gold, batch.word_mask,
                          to_words(scores.float() * batch.mask, batch)))
        elif batch.gold is not None:
            spans.append((zm, batch.gold, batch.mask, scores))
    comp_a = aopc({k: np.concatenate(v) for k, v in comp_bins.items()})
    suff_a = aopc({k: np.concatenate(v) for k, v in suff_bins.items()})
    out = {
        "comprehensiveness": float(np.concatenate(comp).mean()),
        "sufficiency": float(np.concatenate(suff).mean()),
        "comp_aopc": comp_a["aopc"],
        "suff_aopc": suff_a["aopc"],
        "comp_aopc_eraser_script": comp_a["aopc_eraser_script"],
        "suff_aopc_eraser_script": suff_a["aopc_eraser_script"],
        "full_text_acc": full_acc.compute(),
    }
    if spans and len(spans) == len(batches):
        out.update(span_metrics(spans))
    return out


def span_metrics(spans: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
    """IOU-F1 and AUPRC over the whole test set from per-batch (selection, gold, mask, soft score), padded
    to the longest test example."""
    width = max(t[0].shape[1] for t in spans)
    cols = [np.concatenate([torch.nn.functional.pad(t[i], (0, width - t[i].shape[1])).float().cpu().numpy()
                            for t in spans]) for i in range(4)]
    sel_a, gold_a, mask_a, score_a = cols
    iou = iou_f1(sel_a, gold_a, mask_a)
    pr = auprc(score_a, gold_a, mask_a)
    return {
        "iou_f1": iou["F1"],
        "iou_p": iou["P"],
        "iou_r": iou["R"],
        "auprc": pr["auprc"],
        "average_precision": pr.get("average_precision", float("nan")),
    }
