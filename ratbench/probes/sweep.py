"""VER's perturbation rate p swept over a grid (VER paper Figure 9): test F1 (mean, std over seeds) per p.

Each p is an ordinary run with `--set p_flip=<p>` (its own config hash), so finished runs are reused and an
interrupted sweep resumes. Only methods with a `p_flip` setting can be swept. RNP is trained beside them as
the explicit no-perturbation reference (VER at p = 0 is RNP step for step; docs/probes.md#sweep).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_class
from ratbench.probes.base import Probe, ProbeContext, ProbeRun, RunRequest, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

DEFAULT_VALUES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
REFERENCE = "rnp"


INFO = ProbeInfo(
    name="sweep",
    title="Test rationale F1 against the perturbation rate p",
    reads="run records (trains VER at each p)",
    figure="VER Figure 9",
)


@register_probe(INFO)
class SweepProbe(Probe):
    def values(self, ctx: ProbeContext) -> list[float]:
        return [float(v) for v in ctx.options.get("values") or DEFAULT_VALUES]

    def requests(self, ctx: ProbeContext) -> list[RunRequest]:
        swept = [m for m in ctx.methods if "p_flip" in method_class(m).defaults]
        if not swept:
            raise RatbenchError(f"The sweep probe varies p_flip, which none of {', '.join(ctx.methods)} has; "
                                "use --methods ver.")
        reference = RunRequest([REFERENCE], ctx.datasets, ctx.seeds, dict(ctx.overrides))
        sweep = [RunRequest(swept, ctx.datasets, ctx.seeds, {**ctx.overrides, "p_flip": p}) for p in self.values(ctx)]
        return [reference, *sweep]

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        rows = []
        for run in runs:
            rec, m = run.record, run.record.metrics
            p = rec.config["method_params"].get("p_flip", float("nan"))  # RNP: no p
            rows.append({"dataset": rec.dataset, "method": rec.method, "seed": rec.seed,
                         "p_flip": p, "F1": m["F1"], "S": m["S"],
                         "Acc": m["Acc"], "P": m["P"], "R": m["R"]})
        return pd.DataFrame(rows).sort_values(["dataset", "method", "p_flip", "seed"])

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.groupby(["dataset", "method", "p_flip"], dropna=False).agg(
            F1=("F1", "mean"), F1_std=("F1", "std"), S=("S", "mean"), Acc=("Acc", "mean"),
            seeds=("seed", "nunique")).reset_index()

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        summary = self.summary(frame)
        datasets = sorted(summary["dataset"].unique())
        fig, axes = figure(1, len(datasets), self.title)
        for i, d in enumerate(datasets):
            ax = axes[0][i]
            sub = summary[summary["dataset"] == d]
            for j, (m, s) in enumerate(sub[sub["method"] != REFERENCE].groupby("method")):
                ax.errorbar(s["p_flip"], s["F1"], yerr=s["F1_std"].fillna(0), marker="o", capsize=3,
                            color=f"C{j}", label=f"{m} (mean ± std over seeds)")
            ref = sub[sub["method"] == REFERENCE]
            if len(ref):
                mean, std = float(ref["F1"].iloc[0]), float(ref["F1_std"].fillna(0).iloc[0])
                ax.axhline(mean, color="grey", ls="--", label=f"{REFERENCE} (no perturbation)")
                ax.axhspan(mean - std, mean + std, color="grey", alpha=0.15)
            ax.set_xlabel("perturbation rate p")
            ax.set_ylabel("test F1 (%)")
            ax.set_title(f"{d} (Fig. 9)", fontsize=10)
            ax.legend(fontsize=7)
        save(fig, png, caption)
