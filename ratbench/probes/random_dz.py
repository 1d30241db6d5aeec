"""The negative-result experiment of the VER paper (Figure 6): a predictor trained first on random rationales
at the sparsity target, then frozen while the selector trains, next to RNP trained as usual.

The paper's point: a predictor that has seen only random rationales does not guide the selector to the
human rationale. The runs are ordinary records of the method `rnp-random-dz` (and of the compared methods).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ratbench.probes.base import Probe, ProbeContext, ProbeRun, RunRequest, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

METHOD = "rnp-random-dz"


INFO = ProbeInfo(
    name="random-dz",
    title="Predictor trained on random rationales, then frozen (random-dz) vs cooperative training",
    reads="run records (trains rnp-random-dz beside the compared methods)",
    figure="VER Figure 6",
)


@register_probe(INFO)
class RandomDZProbe(Probe):
    def requests(self, ctx: ProbeContext) -> list[RunRequest]:
        methods = [METHOD, *[m for m in ctx.methods if m != METHOD]]
        return [RunRequest(methods, ctx.datasets, ctx.seeds, ctx.overrides)]

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        rows = []
        for run in runs:
            rec = run.record
            for c in rec.curves:
                rows.append({"dataset": rec.dataset, "method": rec.method, "seed": rec.seed,
                             "epoch": c["epoch"], "test_F1": c["test_F1"], "test_S": c["test_S"],
                             "train_acc": c["train_acc"], "dev_acc": c["dev_acc"],
                             "selected": c["epoch"] == rec.selected_epoch})
        return pd.DataFrame(rows)

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        sel = frame[frame["selected"]]
        return sel.groupby(["dataset", "method"]).agg(
            F1=("test_F1", "mean"), F1_std=("test_F1", "std"), S=("test_S", "mean"), dev_acc=("dev_acc", "mean"),
            seeds=("seed", "nunique")).reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        datasets = sorted(frame["dataset"].unique())
        fig, axes = figure(len(datasets), 2, self.title)
        for i, d in enumerate(datasets):
            g = frame[frame["dataset"] == d].groupby(["method", "epoch"]).mean(numeric_only=True).reset_index()
            for j, m in enumerate(sorted(g["method"].unique())):
                s = g[g["method"] == m]
                axes[i][0].plot(s["epoch"], s["test_F1"], marker="o", color=f"C{j}", label=m)
                axes[i][1].plot(s["epoch"], s["dev_acc"], marker="o", color=f"C{j}", label=f"{m} dev")
                axes[i][1].plot(s["epoch"], s["train_acc"], ls=":", color=f"C{j}", label=f"{m} train")
            axes[i][0].set_ylabel("test rationale F1 (%)")
            axes[i][1].set_ylabel("accuracy (%)")
            for ax, t in zip(axes[i], ["test F1 (Fig. 6)", "accuracy"]):
                ax.set_title(f"{d}: {t}", fontsize=10)
                ax.set_xlabel("epoch")
                ax.legend(fontsize=7)
        save(fig, png, caption)
