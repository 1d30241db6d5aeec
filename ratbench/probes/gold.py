"""The trained predictor fed the human rationale (VER paper Figures 3 and 10; docs/probes.md#gold).

For each run's selected model, on the annotated test set: accuracy and median (and mean) cross-entropy of the
predictor reading (a) the gold rationale, (b) the model's own rationale, (c) the full text. Two definitions of
(a), both reported: `gold` (ratbench) feeds e*g and max-pools over all real tokens, exactly as the predictor
reads its own rationale in training; `gold_pooled` (the VER paper's definition, and its code) passes g as the
pooling mask as well, so only gold positions are pooled, an input the predictor never saw in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ratbench.data.batching import eval_batches
from ratbench.engine import EVAL_BATCH, limit_split
from ratbench.probes.base import Probe, ProbeContext, ProbeRun, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

INPUTS = ("gold", "gold_pooled", "own", "full")
LABELS = {"gold": "gold (pool over all tokens)", "gold_pooled": "gold (pool over gold: paper)",
          "own": "own rationale", "full": "full text"}


def input_scores(method: Any, model: Any, batches: list, eval_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per input: (correct 0/1, cross-entropy) per test example."""
    gen = torch.Generator(device=batches[0].ids.device).manual_seed(eval_seed)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in INPUTS}
    with torch.inference_mode():
        for batch in batches:
            z, own_logits, _ = method.rationale(model, batch, gen)
            logits = {"own": own_logits, "gold": method.predict_with(model, batch, batch.gold),
                      "full": method.predict_with(model, batch, torch.ones_like(batch.mask))}
            if method.pools_over_positions:
                logits["gold_pooled"] = method.predict_pooled_over(model, batch, batch.gold)
            for k, lg in logits.items():
                ce = torch.nn.functional.cross_entropy(lg, batch.labels, reduction="none")
                out[k].append(((lg.argmax(-1) == batch.labels).float().cpu().numpy(), ce.cpu().numpy()))
    return {k: (np.concatenate([a for a, _ in v]), np.concatenate([c for _, c in v])) for k, v in out.items() if v}


INFO = ProbeInfo(
    name="gold",
    title="Trained predictor on the gold rationale, its own rationale and the full text",
    reads="the run's checkpoint",
    figure="VER Figures 3 and 10",
)


@register_probe(INFO)
class GoldProbe(Probe):
    needs_checkpoint = True

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        rows = []
        for run in runs:
            rec = run.record
            method, model, corpus = run.restore()
            test = limit_split(corpus.test, method.config.test_limit)
            scores = input_scores(method, model, eval_batches(test, EVAL_BATCH), method.config.eval_seed)
            for k, (correct, ce) in scores.items():
                rows.append({"dataset": rec.dataset, "method": rec.method, "seed": rec.seed, "input": k,
                             "acc": 100.0 * float(correct.mean()), "median_ce": float(np.median(ce)),
                             "mean_ce": float(ce.mean()), "n": len(ce)})
        return pd.DataFrame(rows)

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        g = frame.groupby(["dataset", "method", "input"], sort=False)
        return g.agg(acc=("acc", "mean"), acc_std=("acc", "std"), median_ce=("median_ce", "mean"),
                     mean_ce=("mean_ce", "mean"), seeds=("seed", "nunique")).reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        summary = self.summary(frame)
        datasets = sorted(summary["dataset"].unique())
        fig, axes = figure(len(datasets), 2, self.title, width=5.5)
        for i, d in enumerate(datasets):
            sub = summary[summary["dataset"] == d]
            methods = list(dict.fromkeys(sub["method"]))
            x = np.arange(len(methods))
            width = 0.8 / len(INPUTS)
            for j, inp in enumerate(INPUTS):
                s = sub[sub["input"] == inp].set_index("method").reindex(methods)
                left = x + (j - (len(INPUTS) - 1) / 2) * width
                axes[i][0].bar(left, s["acc"], width, yerr=s["acc_std"].fillna(0), label=LABELS[inp])
                axes[i][1].bar(left, s["median_ce"], width, label=LABELS[inp])
            for ax, ylabel in zip(axes[i], ["test accuracy (%)", "median cross-entropy"]):
                ax.set_xticks(x, methods)
                ax.set_xlabel("method")
                ax.set_ylabel(ylabel)
                ax.set_title(f"{d}: {ylabel}", fontsize=10)
                ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
                ax.legend(title="predictor input", fontsize=7, ncol=2, loc="upper center")
        save(fig, png, caption)
