"""VER's perturbation rate p swept over a grid (VER paper Figure 9): test F1 (mean, std over seeds) per p.

Each p is an ordinary run with `--set p_flip=<p>` (its own config hash), so finished runs are reused and an
interrupted sweep resumes. Only methods with a `p_flip` setting can be swept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ratbench.errors import RatbenchError
from ratbench.probes.base import Probe, ProbeContext, register_probe
from ratbench.probes.plotting import figure, save

DEFAULT_VALUES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


@register_probe("sweep")
class SweepProbe(Probe):
    title = "Test rationale F1 against the perturbation rate p"

    def values(self, ctx: ProbeContext) -> list[float]:
        return [float(v) for v in ctx.options.get("values") or DEFAULT_VALUES]

    def jobs(self, ctx: ProbeContext) -> list:
        from ratbench.methods import METHODS
        from ratbench.runner import plan

        swept = [m for m in ctx.methods if "p_flip" in METHODS.get(m).defaults]
        if not swept:
            raise RatbenchError(f"The sweep probe varies p_flip, which none of {', '.join(ctx.methods)} has; "
                                "use --methods ver.")
        jobs = []
        for p in self.values(ctx):
            jobs += plan(swept, ctx.datasets, ctx.seeds, ctx.profile, {**ctx.overrides, "p_flip": p}, ctx.epochs,
                         ctx.device, ctx.data_root, ctx.results)
        return jobs

    def compute(self, ctx: ProbeContext, runs: list[tuple[Path, dict[str, Any]]]) -> pd.DataFrame:
        rows = []
        for _, rec in runs:
            m = rec["metrics"]
            rows.append({"dataset": rec["dataset"], "method": rec["method"], "seed": rec["seed"],
                         "p_flip": rec["config"]["method_params"]["p_flip"], "F1": m["F1"], "S": m["S"],
                         "Acc": m["Acc"], "P": m["P"], "R": m["R"]})
        return pd.DataFrame(rows).sort_values(["dataset", "method", "p_flip", "seed"])

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.groupby(["dataset", "method", "p_flip"]).agg(
            F1=("F1", "mean"), F1_std=("F1", "std"), S=("S", "mean"), Acc=("Acc", "mean"),
            seeds=("seed", "nunique")).reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        summary = self.summary(frame)
        datasets = sorted(summary["dataset"].unique())
        fig, axes = figure(1, len(datasets), self.title)
        for i, d in enumerate(datasets):
            ax = axes[0][i]
            for j, (m, s) in enumerate(summary[summary["dataset"] == d].groupby("method")):
                ax.errorbar(s["p_flip"], s["F1"], yerr=s["F1_std"].fillna(0), marker="o", capsize=3,
                            color=f"C{j}", label=f"{m} (mean ± std over seeds)")
            ax.set_xlabel("perturbation rate p")
            ax.set_ylabel("test F1 (%)")
            ax.set_title(f"{d} (Fig. 9)", fontsize=10)
            ax.legend(fontsize=7)
        save(fig, png, caption)
