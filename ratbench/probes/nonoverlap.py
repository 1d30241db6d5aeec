"""Adjacent-iteration non-overlap of the selector's masks (VER paper Figure 2a; docs/probes.md#nonoverlap).

At each training step: m1 = a selector sample on the batch before the update, m2 = one on the same batch
right after it, m3 = a second, independent one after it (the noise floor: how much two samples of the *same*
selector differ). Train mode as in the reference (dropout and Gumbel noise on); masks restricted to real tokens.
D = sum|m1 - m2| / (sum m1 + sum m2), averaged over an epoch's steps; the floor is the same ratio for m2, m3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ratbench.engine.callbacks import Callback
from ratbench.probes.base import Probe, ProbeContext, ProbeRun, register_probe
from ratbench.probes.catalog import ProbeInfo
from ratbench.probes.plotting import figure, save

KEYS = ("nonoverlap", "nonoverlap_floor", "nonoverlap_len")


def non_overlap(m1: torch.Tensor, m2: torch.Tensor) -> float:
    """sum|m1 - m2| / (sum m1 + sum m2); 0 when both masks are empty."""
    denom = float(m1.sum() + m2.sum())
    return float((m1 - m2).abs().sum()) / denom if denom > 0 else 0.0


def length_normalised(m1: torch.Tensor, m2: torch.Tensor, mask: torch.Tensor) -> float:
    """sum|m1 - m2| / (2 * number of real tokens)."""
    return float((m1 - m2).abs().sum()) / (2.0 * float(mask.sum().clamp_min(1.0)))


class NonOverlapHook(Callback):
    def on_fit_start(self, engine: Any) -> None:
        self.engine = engine
        self.rng = np.random.default_rng([engine.seed, 7])
        self.values: list[tuple[float, float, float]] = []
        self._before: torch.Tensor | None = None

    def _sample(self, batch: Any) -> torch.Tensor:
        """A train-mode selector sample drawn from a private seed; the global RNG state is restored after, so
        the run's own randomness (dropout, Gumbel noise, data order) is exactly what it is without the probe."""
        devices = [batch.ids.device] if batch.ids.is_cuda else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(int(self.rng.integers(2**62)))
            z = self.engine.method.select(self.engine.model, batch, None)
        return (z > 0.5).float() * batch.mask

    def before_step(self, engine: Any, batch: Any) -> None:
        self._before = self._sample(batch)

    def after_step(self, engine: Any, batch: Any, stats: dict[str, float], step: int, n_steps: int) -> None:
        m2, m3 = self._sample(batch), self._sample(batch)
        m1 = self._before
        self.values.append((non_overlap(m1, m2), non_overlap(m2, m3), length_normalised(m1, m2, batch.mask)))

    def epoch_values(self, engine: Any, epoch: int) -> dict[str, float]:
        arr = np.array(self.values) if self.values else np.full((1, 3), np.nan)
        self.values = []
        return dict(zip(KEYS, (float(v) for v in arr.mean(0))))


INFO = ProbeInfo(
    name="nonoverlap",
    title="Adjacent-iteration non-overlap of the selector's masks",
    reads="a training hook (retrains runs without it)",
    figure="VER Figure 2",
)


@register_probe(INFO)
class NonOverlapProbe(Probe):
    hook = NonOverlapHook

    def curve_keys(self) -> list[str]:
        return list(KEYS)

    def compute(self, ctx: ProbeContext, runs: list[ProbeRun]) -> pd.DataFrame:
        rows = []
        for run in runs:
            rec = run.record
            for c in rec.curves:
                rows.append({"dataset": rec.dataset, "method": rec.method, "seed": rec.seed,
                             "epoch": c["epoch"], **{k: c[k] for k in KEYS},
                             "test_F1": c["test_F1"], "train_acc": c["train_acc"], "dev_acc": c["dev_acc"]})
        return pd.DataFrame(rows)

    def summary(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per method and dataset: first and last epoch's non-overlap (mean over seeds) and the floor."""
        g = frame.groupby(["dataset", "method", "epoch"])[[*KEYS, "test_F1"]].mean().reset_index()
        out = []
        for (d, m), sub in g.groupby(["dataset", "method"]):
            first, last = sub.iloc[0], sub.iloc[-1]
            out.append({"dataset": d, "method": m, "nonoverlap_first": first["nonoverlap"],
                        "nonoverlap_last": last["nonoverlap"], "floor_last": last["nonoverlap_floor"],
                        "above_floor_last": last["nonoverlap"] - last["nonoverlap_floor"],
                        "test_F1_last": last["test_F1"]})
        return pd.DataFrame(out)

    def plot(self, frame: pd.DataFrame, png: Path, caption: str) -> None:
        datasets = sorted(frame["dataset"].unique())
        fig, axes = figure(len(datasets), 3, self.title)
        for i, d in enumerate(datasets):
            sub = frame[frame["dataset"] == d].groupby(["method", "epoch"]).mean(numeric_only=True).reset_index()
            for j, m in enumerate(sorted(sub["method"].unique())):
                s = sub[sub["method"] == m]
                color = f"C{j}"
                axes[i][0].plot(s["epoch"], 100 * s["nonoverlap"], color=color, marker="o", label=m)
                axes[i][0].plot(s["epoch"], 100 * s["nonoverlap_floor"], color=color, ls="--",
                                label=f"{m} noise floor")
                axes[i][1].plot(s["epoch"], s["test_F1"], color=color, marker="o", label=m)
                axes[i][2].plot(s["epoch"], s["train_acc"], color=color, marker="o", label=f"{m} train")
                axes[i][2].plot(s["epoch"], s["dev_acc"], color=color, ls=":", label=f"{m} dev")
            for ax, (title, ylabel) in zip(axes[i], [("non-overlap (2a)", "non-overlap (%)"),
                                                      ("test rationale F1 (2b)", "F1 (%)"),
                                                      ("accuracy (2c)", "accuracy (%)")]):
                ax.set_title(f"{d}: {title}", fontsize=10)
                ax.set_xlabel("epoch")
                ax.set_ylabel(ylabel)
                ax.legend(fontsize=7)
        save(fig, png, caption)
