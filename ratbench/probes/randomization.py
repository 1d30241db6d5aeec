"""Randomisation tests (REGEX's evaluation, Li et al. 2023; docs/probes.md#randomization): random tokens inserted
into, or random non-rationale tokens removed from, each test text, and how the method's rationale, prediction
and faithfulness change.

For each finished run (its checkpoint, restored in eval mode) and each rate rho of a grid, per test example with
n_b selectable tokens, k_b = round(rho * n_b) tokens (at least one when rho > 0):

- `insert`: k_b tokens drawn uniformly from the distinct token types of the training split's selectable positions
  are placed at uniformly drawn gaps of the selectable text (before any selectable token or after the last one,
  several may share a gap). They are never gold. A transformer gets random sub-word pieces between [CLS] and
  [SEP], and no text grows past the encoder's position limit (k_b is capped; `realised` says by how much).
- `remove`: k_b of the tokens outside the method's own rationale on the original text are deleted (drawn
  uniformly without replacement; at most all of them). The rationale's tokens and [CLS]/[SEP]/a query stay.

The perturbed text goes through the method as any text does (`rationale`, `predict_with`); the measures compare
it with the original text's pass. The original pass samples with the run's `eval_seed`; every perturbed pass with
`eval_seed + 1`, so rate 0 (the unperturbed text, another sample) is the noise floor of the sampled methods and 0
for deterministic ones. Measured at the level of the backbone's tokens (words for the GRU, pieces for a
transformer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ratbench.data.batching import make_batch
from ratbench.data.corpus import Split
from ratbench.engine import EVAL_BATCH, limit_split
from ratbench.errors import RatbenchError
from ratbench.models.transformer import TransformerEncoder
from ratbench.probes.base import Probe, ProbeContext, ProbeRun, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

DEFAULT_RATES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
KINDS = ("insert", "remove")
PROBE_STREAM = 13  # the probe's random streams: SeedSequence([run seed, this, kind, rate])
# position-embedding offset of RoBERTa-style encoders (their positions start after padding_idx)
OFFSET_POSITION_TYPES = ("roberta", "xlm-roberta")
MEASURES = ("rationale_change", "rationale_kept", "inserted_selected", "S", "F1", "pred_change", "prob_drop", "acc",
            "comprehensiveness", "sufficiency")


@dataclass
class Perturbed:
    """A perturbed split and, per position, where it came from in the original split (-1: an inserted token)."""

    split: Split
    origin: np.ndarray  # int64, aligned with split.ids
    changed: int  # tokens inserted or removed
    selectable: int  # selectable tokens of the original split


def selectable_positions(split: Split) -> np.ndarray:
    """Flat bool: positions a rationale may select (everything but [CLS], [SEP], a query)."""
    return np.ones(len(split.ids), bool) if split.forced is None else split.forced == 0


def counts_at(rate: float, n: np.ndarray) -> np.ndarray:
    """k_b = round(rate * n_b) (half to even), at least 1 when rate > 0 and n_b > 0."""
    k = np.rint(rate * n).astype(np.int64)
    return np.where((rate > 0) & (n > 0), np.maximum(k, 1), 0)


def _example_of(split: Split) -> np.ndarray:
    return np.repeat(np.arange(len(split)), split.lengths)


def _position_arrays(split: Split) -> dict[str, np.ndarray]:
    return {name: getattr(split, name) for name in ("gold", "forced", "token_type") if getattr(split, name) is not None}


def _rebuilt(split: Split, order: np.ndarray, ids: np.ndarray, lengths: np.ndarray,
             extra: dict[str, np.ndarray]) -> Split:
    """A split of the concatenated per-position arrays taken in `order` (word-level fields dropped: the probe
    measures at the backbone's token level)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrays = {name: values[order] for name, values in extra.items()}
    return Split(ids[order], offsets, split.labels.copy(), **arrays)


def insert_tokens(split: Split, rate: float, vocabulary: np.ndarray, rng: np.random.Generator,
                  max_length: int | None = None) -> Perturbed:
    """`k_b` random tokens of `vocabulary` at uniform random gaps of each example's selectable text."""
    example = _example_of(split)
    local = np.arange(len(split.ids)) - split.offsets[example]
    sel = selectable_positions(split)
    n_sel = np.bincount(example[sel], minlength=len(split))
    k = counts_at(rate, n_sel)
    if max_length is not None:
        k = np.minimum(k, np.maximum(max_length - split.lengths, 0))
    sel_flat = np.flatnonzero(sel)  # grouped by example, in order
    sel_start = np.concatenate([[0], np.cumsum(n_sel)])[:-1]
    new_example = np.repeat(np.arange(len(split)), k)
    gap = np.floor(rng.random(len(new_example)) * (n_sel[new_example] + 1)).astype(np.int64)
    after_last = gap == n_sel[new_example]
    # the selectable token a new one goes before (or, at the last gap, after)
    anchor = sel_flat[sel_start[new_example] + np.where(after_last, gap - 1, gap)]
    key = np.concatenate([local.astype(np.float64), local[anchor] + np.where(after_last, 0.5, -0.5)])
    owner = np.concatenate([example, new_example])
    order = np.lexsort((key, owner))  # by example, then position; new tokens sit between the half-integers
    new_ids = vocabulary[rng.integers(0, len(vocabulary), len(new_example))] if len(new_example) else \
        np.zeros(0, split.ids.dtype)
    ids = np.concatenate([split.ids, new_ids.astype(split.ids.dtype)])
    origin = np.concatenate([np.arange(len(split.ids)), np.full(len(new_example), -1)])
    extra: dict[str, np.ndarray] = {}
    zeros = np.zeros(len(new_example), np.uint8)
    if split.gold is not None:
        extra["gold"] = np.concatenate([split.gold, zeros.astype(split.gold.dtype)])
    if split.forced is not None:
        extra["forced"] = np.concatenate([split.forced, zeros.astype(split.forced.dtype)])
    if split.token_type is not None:  # the segment of the text it joins
        extra["token_type"] = np.concatenate([split.token_type, split.token_type[anchor]])
    out = _rebuilt(split, order, ids, split.lengths + k, extra)
    return Perturbed(out, origin[order], int(k.sum()), int(n_sel.sum()))


def remove_tokens(split: Split, rate: float, removable: np.ndarray, rng: np.random.Generator) -> Perturbed:
    """Delete `k_b` of each example's `removable` positions (flat bool), uniformly without replacement."""
    example = _example_of(split)
    sel = selectable_positions(split)
    n_sel = np.bincount(example[sel], minlength=len(split))
    candidates = np.flatnonzero(removable & sel)
    n_cand = np.bincount(example[candidates], minlength=len(split))
    k = np.minimum(counts_at(rate, n_sel), n_cand)
    shuffled = candidates[np.lexsort((rng.random(len(candidates)), example[candidates]))]
    first = np.concatenate([[0], np.cumsum(n_cand)])[:-1]
    rank = np.arange(len(shuffled)) - first[example[shuffled]]
    drop = np.zeros(len(split.ids), bool)
    drop[shuffled[rank < k[example[shuffled]]]] = True
    keep = np.flatnonzero(~drop)
    extra = _position_arrays(split)
    out = _rebuilt(split, keep, split.ids, split.lengths - k, extra)
    return Perturbed(out, keep.astype(np.int64), int(k.sum()), int(n_sel.sum()))


def unperturbed(split: Split) -> Perturbed:
    sel = selectable_positions(split)
    extra = _position_arrays(split)
    out = _rebuilt(split, np.arange(len(split.ids)), split.ids, split.lengths, extra)
    return Perturbed(out, np.arange(len(split.ids)), 0, int(sel.sum()))


def training_vocabulary(train: Split) -> np.ndarray:
    """The distinct token ids at the training split's selectable positions, without id 0 (padding / unknown)."""
    ids = np.unique(train.ids[selectable_positions(train)])
    ids = ids[ids != 0]
    if ids.size == 0:
        raise RatbenchError("The randomization probe draws inserted tokens from the training vocabulary, and the "
                            "training split has no token ids besides padding.")
    return ids


def position_limit(model: torch.nn.Module) -> int | None:
    """The longest input the run's transformer encoders take (None for the GRU: any length)."""
    limits = []
    for module in model.modules():
        if isinstance(module, TransformerEncoder):
            cfg = module.config
            limit = int(cfg.max_position_embeddings)
            if module.model_type in OFFSET_POSITION_TYPES:
                limit -= int(cfg.pad_token_id or 0) + 1
            limits.append(limit)
    return min(limits) if limits else None


@dataclass
class Pass:
    """One pass over a split: the hard rationale (flat, 0 outside selectable positions), the method's final
    class probabilities, and comprehensiveness / sufficiency per example (NaN when not computed)."""

    z: np.ndarray
    probs: np.ndarray
    comp: np.ndarray
    suff: np.ndarray


@torch.inference_mode()
def run_pass(method: Any, model: Any, split: Split, chunks: list[np.ndarray], generator: torch.Generator,
             width: int | None, faithfulness: bool) -> Pass:
    """The method on every example of `split`, batched by `chunks` (the same examples per batch in every pass)."""
    model.eval()
    z_flat = np.zeros(len(split.ids), np.float32)
    probs: np.ndarray | None = None
    comp = np.full(len(split), np.nan)
    suff = np.full(len(split), np.nan)

    def prob(batch: Any, keep: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        p = method.predict_with(model, batch, keep).float().softmax(-1)
        return p.gather(1, cls[:, None]).squeeze(1)

    for index in chunks:
        batch = make_batch(split, index, "cpu", width)
        z, logits, _ = method.rationale(model, batch, generator)
        zm = z.float() * batch.mask
        p = logits.float().softmax(-1).cpu().numpy()
        if probs is None:
            probs = np.zeros((len(split), p.shape[1]), np.float64)
        probs[index] = p
        if faithfulness:
            full = method.predict_with(model, batch, torch.ones_like(batch.mask)).float().softmax(-1)
            cls = full.argmax(-1)
            p_full = full.gather(1, cls[:, None]).squeeze(1)
            comp[index] = (p_full - prob(batch, 1.0 - zm, cls)).cpu().numpy()
            suff[index] = (p_full - prob(batch, zm, cls)).cpu().numpy()
        cols = np.arange(zm.shape[1])
        valid = cols[None, :] < split.lengths[index][:, None]
        positions = split.offsets[index][:, None] + cols[None, :]
        z_flat[positions[valid]] = zm.cpu().numpy()[valid]
    return Pass(z_flat, probs if probs is not None else np.zeros((0, 2)), comp, suff)


def compare(original: Pass, perturbed: Pass, pert: Perturbed, labels: np.ndarray) -> dict[str, float]:
    """The probe's measures (fractions as percent, probabilities as such) of one perturbed pass."""
    split = pert.split
    sel = selectable_positions(split)
    surviving = (pert.origin >= 0) & sel
    z_orig, z_pert = original.z[pert.origin[surviving]], perturbed.z[surviving]
    denom = float(z_orig.sum() + z_pert.sum())
    inserted = pert.origin < 0
    out = {
        "rationale_change": 100.0 * float(np.abs(z_orig - z_pert).sum()) / denom if denom > 0 else 0.0,
        "rationale_kept": 100.0 * float((z_orig * z_pert).sum()) / float(original.z.sum()) if original.z.sum() else
        float("nan"),
        "inserted_selected": 100.0 * float(perturbed.z[inserted].mean()) if inserted.any() else float("nan"),
        "S": 100.0 * float(perturbed.z[sel].sum()) / max(int(sel.sum()), 1),
        "F1": float("nan"),
    }
    if split.gold is not None:
        gold = split.gold[sel].astype(np.float64)
        chosen = perturbed.z[sel].astype(np.float64)
        tp, n_sel, n_gold = float((chosen * gold).sum()), float(chosen.sum()), float(gold.sum())
        p = tp / n_sel if n_sel else 0.0
        r = tp / n_gold if n_gold else 0.0
        out["F1"] = 100.0 * 2 * p * r / (p + r) if p + r > 0 else 0.0
    y_orig = original.probs.argmax(1)
    y_pert = perturbed.probs.argmax(1)
    rows = np.arange(len(y_orig))
    out.update({
        "pred_change": 100.0 * float((y_orig != y_pert).mean()),
        "prob_drop": float((original.probs[rows, y_orig] - perturbed.probs[rows, y_orig]).mean()),
        "acc": 100.0 * float((y_pert == labels).mean()),
        "comprehensiveness": float(np.mean(perturbed.comp)),
        "sufficiency": float(np.mean(perturbed.suff)),
    })
    return out


def randomization_table(method: Any, model: Any, test: Split, train: Split, rates: list[float], seed: int,
                        eval_seed: int, width: int | None = None, batch_size: int = EVAL_BATCH) -> list[dict[str, Any]]:
    """One row per (kind, rate) for one restored run (see the module docstring)."""
    order = np.argsort(test.lengths, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    original = run_pass(method, model, test, chunks, torch.Generator().manual_seed(eval_seed), width, False)
    vocabulary = training_vocabulary(train)
    limit = position_limit(model)
    removable = original.z < 0.5
    rows = []
    for k, kind in enumerate(KINDS):
        for rate in rates:
            rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, PROBE_STREAM, k,
                                                                 int(round(rate * 1e6))]))
            if rate == 0:
                pert = unperturbed(test)
            elif kind == "insert":
                pert = insert_tokens(test, rate, vocabulary, rng, limit)
            else:
                pert = remove_tokens(test, rate, removable, rng)
            pw = None if width is None else max(width, int(pert.split.lengths.max()))
            perturbed = run_pass(method, model, pert.split, chunks, torch.Generator().manual_seed(eval_seed + 1), pw,
                                 True)
            rows.append({"kind": kind, "rate": float(rate),
                         "realised": pert.changed / pert.selectable if pert.selectable else 0.0,
                         **compare(original, perturbed, pert, test.labels), "n": len(test)})
    return rows


INFO = ProbeInfo(
    name="randomization",
    title="Randomisation tests: random tokens inserted, non-rationale tokens removed",
    reads="the run's checkpoint",
    figure="REGEX (Li et al. 2023) randomisation tests",
)


@register_probe(INFO)
class RandomizationProbe(Probe):
    needs_checkpoint = True

    def rates(self, ctx: ProbeContext) -> list[float]:
        rates = [float(v) for v in (ctx.options.get("values") or DEFAULT_RATES)] if ctx else list(DEFAULT_RATES)
        if any(not np.isfinite(r) or r < 0 for r in rates):
            raise RatbenchError(f"The randomization rates must be finite and >= 0, got {rates}.")
        return sorted(set(rates) | {0.0})  # rate 0 is the floor every curve starts from

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        rates = self.rates(ctx)
        rows = []
        for run in runs:
            rec = run.record
            method, model, corpus = run.restore()
            cfg = method.config
            test = limit_split(corpus.test, cfg.test_limit)
            train = limit_split(corpus.train, cfg.train_limit)
            width = cfg.max_len if cfg.pad_to == "max_len" else None
            for row in randomization_table(method, model, test, train, rates, int(rec.seed), cfg.eval_seed, width):
                rows.append({"dataset": rec.dataset, "method": rec.method, "seed": rec.seed, **row})
        return pd.DataFrame(rows)

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per dataset, method, kind and rate: every measure's mean over seeds, and the seeds' std of the
        rationale change and the prediction change."""
        g = frame.groupby(["dataset", "method", "kind", "rate"], sort=True)
        out = g[["realised", *MEASURES]].mean()
        out["rationale_change_std"] = g["rationale_change"].std()
        out["pred_change_std"] = g["pred_change"].std()
        out["seeds"] = g["seed"].nunique()
        return out.reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        summary = self.summary(frame)
        datasets = sorted(summary["dataset"].unique())
        panels = [("rationale_change", "rationale change (%)"), ("inserted_selected", "inserted tokens selected (%)"),
                  ("pred_change", "prediction changed (%)"), ("comprehensiveness", "comprehensiveness"),
                  ("sufficiency", "sufficiency")]
        fig, axes = figure(len(datasets), len(panels), self.title, width=4.2)
        styles = {"insert": ("-", "o"), "remove": ("--", "s")}
        for i, d in enumerate(datasets):
            sub = summary[summary["dataset"] == d]
            for j, m in enumerate(sorted(sub["method"].unique())):
                for kind, (ls, marker) in styles.items():
                    s = sub[(sub["method"] == m) & (sub["kind"] == kind)].sort_values("rate")
                    for ax, (key, _) in zip(axes[i], panels):
                        if key == "inserted_selected" and kind != "insert":
                            continue
                        ax.plot(100 * s["rate"], s[key], ls=ls, marker=marker, color=f"C{j}", label=f"{m} {kind}")
                s = sub[(sub["method"] == m) & (sub["kind"] == "insert")].sort_values("rate")
                # a selector blind to the inserted tokens selects them at its overall rate S at most
                axes[i][1].plot(100 * s["rate"], s["S"], ls=":", color=f"C{j}", label=f"{m} S")
            for ax, (_, ylabel) in zip(axes[i], panels):
                ax.set_title(f"{d}: {ylabel}", fontsize=9)
                ax.set_xlabel("tokens inserted / removed (% of the text)")
                ax.set_ylabel(ylabel)
                ax.legend(fontsize=6)
        save(fig, png, caption)
