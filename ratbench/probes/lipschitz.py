"""Lipschitz estimate of the predictor over the training set (DR App. A.4, VER Figure 4; docs/probes.md#lipschitz).

For each training text: Z = the selector's rationale, f = predictor probability of class 1, G_t = df/d(e_t z_t);
v = sum_t z_t |G_t| / sum_t z_t; L_i = ||v||_2; report max_i L_i and the mean (empty rationales skipped).
ratbench: eval mode, a fixed sampling seed, per-example gradients (examples do not interact in the predictor,
so the gradient of the batch *sum* holds each example's own gradient), unscaled. Reference-compatible value
(`lipschitz_ref_max`): train mode, gradient of the batch *mean*, x1000, so it depends on the batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ratbench.data.batching import eval_batches
from ratbench.engine import Callback, limit_split
from ratbench.probes.base import Probe, ProbeContext, ProbeRun, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

EPOCH_EXAMPLES = 500  # per-epoch tracking uses this fixed subset of the training set (the final value: all)
SEED = 20240607


def applicable(model: Any) -> bool:
    """The probe needs the standard predictor reading masked word vectors: a GRU player (DMR's, Inter_RAT's and
    the post-hoc models differ; on a transformer the rationale multiplies the embedding layer's output)."""
    encoder = getattr(getattr(model, "predictor", None), "encoder", None)
    return bool(getattr(encoder, "reads_word_vectors", False))


def lipschitz(method: Any, model: Any, split: Any, device: torch.device, batch_size: int,
              reference: bool = False) -> dict[str, float]:
    """max and mean of L_i over `split`; `reference` = the published computation (docs/probes.md#lipschitz)."""
    if not applicable(model):
        return {"max": float("nan"), "mean": float("nan")}
    was_training = model.training
    model.train(reference)
    values = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(SEED)
        gen = torch.Generator(device=device).manual_seed(SEED)
        for batch in eval_batches(split, batch_size, device):
            with torch.no_grad():
                z = method.select(model, batch, gen) * batch.mask
            x = (model.embed(batch.ids, batch.mask) * z.unsqueeze(-1)).detach().requires_grad_(True)
            prob = model.predictor(x, None, batch).softmax(-1)[:, 1]
            target = prob.mean() * 1000.0 if reference else prob.sum()
            (grad,) = torch.autograd.grad(target, x)
            n_sel = z.sum(1)
            v = (z.unsqueeze(-1) * grad.abs()).sum(1) / n_sel.clamp_min(1.0).unsqueeze(-1)
            values.append(v.norm(dim=1)[n_sel > 0].detach().cpu().numpy())
    model.train(was_training)
    arr = np.concatenate(values) if values else np.zeros(0)
    if not len(arr):
        return {"max": float("nan"), "mean": float("nan")}
    return {"max": float(arr.max()), "mean": float(arr.mean())}


class LipschitzHook(Callback):
    """Per-epoch value on a fixed subset of the training set (after the epoch's evaluation)."""

    def on_fit_start(self, engine: Any) -> None:
        self.subset = limit_split(engine.train, EPOCH_EXAMPLES)

    def epoch_values(self, engine: Any, epoch: int) -> dict[str, float]:
        e = engine
        ours = lipschitz(e.method, e.model, self.subset, e.device, e.config.batch_size)
        ref = lipschitz(e.method, e.model, self.subset, e.device, e.config.batch_size, reference=True)
        return {"lipschitz_max": ours["max"], "lipschitz_mean": ours["mean"], "lipschitz_ref_max": ref["max"]}


INFO = ProbeInfo(
    name="lipschitz",
    title="Lipschitz estimate of the predictor",
    reads="a training hook and the run's checkpoint",
    figure="VER Figure 4",
)


@register_probe(INFO)
class LipschitzProbe(Probe):
    hook = LipschitzHook
    needs_checkpoint = True

    def curve_keys(self) -> list[str]:
        return ["lipschitz_max", "lipschitz_mean", "lipschitz_ref_max"]

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        """One row per run and epoch (subset values) plus a row `epoch = selected` over the whole training set."""
        rows = []
        for run in runs:
            rec = run.record
            base = {"dataset": rec.dataset, "method": rec.method, "seed": rec.seed}
            for c in rec.curves:
                rows.append({**base, "epoch": c["epoch"], "scope": f"{EPOCH_EXAMPLES} train examples",
                             "lipschitz_max": c["lipschitz_max"], "lipschitz_mean": c["lipschitz_mean"],
                             "lipschitz_ref_max": c["lipschitz_ref_max"], "test_F1": c["test_F1"]})
            method, model, corpus = run.restore()
            train = limit_split(corpus.train, method.config.train_limit)
            dev = torch.device("cpu")
            ours = lipschitz(method, model, train, dev, method.config.batch_size)
            ref = lipschitz(method, model, train, dev, method.config.batch_size, reference=True)
            rows.append({**base, "epoch": rec.selected_epoch, "scope": "selected epoch, all train",
                         "lipschitz_max": ours["max"], "lipschitz_mean": ours["mean"], "lipschitz_ref_max": ref["max"],
                         "test_F1": rec.metrics["F1"]})
        return pd.DataFrame(rows)

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        sel = frame[frame["scope"] == "selected epoch, all train"]
        return sel.groupby(["dataset", "method"]).agg(
            lipschitz_max=("lipschitz_max", "mean"), lipschitz_max_std=("lipschitz_max", "std"),
            lipschitz_mean=("lipschitz_mean", "mean"), lipschitz_ref_max=("lipschitz_ref_max", "mean"),
            test_F1=("test_F1", "mean"), seeds=("seed", "nunique")).reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        per_epoch = frame[frame["scope"] != "selected epoch, all train"]
        datasets = sorted(per_epoch["dataset"].unique())
        fig, axes = figure(len(datasets), 2, self.title)
        for i, d in enumerate(datasets):
            sub = per_epoch[per_epoch["dataset"] == d]
            g = sub.groupby(["method", "epoch"])
            mean, std = g.mean(numeric_only=True).reset_index(), g.std(numeric_only=True).reset_index()
            for j, m in enumerate(sorted(mean["method"].unique())):
                s, e = mean[mean["method"] == m], std[std["method"] == m]
                axes[i][0].errorbar(s["epoch"], s["lipschitz_max"], yerr=e["lipschitz_max"].fillna(0),
                                    color=f"C{j}", marker="o", capsize=2, label=m)
                axes[i][1].plot(s["epoch"], s["test_F1"], color=f"C{j}", marker="o", label=m)
            axes[i][0].set_ylabel("max_i L_i (per-example, eval mode)")
            axes[i][0].set_title(f"{d}: Lipschitz estimate (Fig. 4)", fontsize=10)
            axes[i][1].set_ylabel("test F1 (%)")
            axes[i][1].set_title(f"{d}: test rationale F1", fontsize=10)
            for ax in axes[i]:
                ax.set_xlabel("epoch")
                ax.legend(fontsize=7)
        save(fig, png, caption)
