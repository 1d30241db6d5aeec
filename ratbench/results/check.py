"""`ratbench check`: a regression gate comparing current results with a committed baseline.

Two rules, chosen per cell (docs/decisions/0006-regression-gate.md):
- **exact**, when both sides ran the same configuration, seeds and environment (device, CPU model and vector
  instructions, torch, CUDA, thread count; `runs.csv` beside each summary.csv carries the fingerprint):
  training is bitwise reproducible there, so any per-seed value that got worse (beyond 1e-6) is a regression.
- **statistical** otherwise (another machine takes another trajectory from the same seed): a cell regresses
  when it is worse than the baseline by more than its tolerance AND the seeds do not explain the gap: a
  z-test of the difference of the two seed means, with
the standard error from both sides' seed standard deviations and counts, rejects "no change" at `alpha`
(one-sided for Acc/P/R/F1, where only a drop is bad; two-sided for S, where any drift from the target is).
Not Welch's t-test: with the two or three seeds a CI job can afford it has one to four degrees of freedom
and no power (measured: RNP trained at target S 25 instead of 15, S +11.3 points over 2 seeds with
stds 1.6 and 0.4, Welch p = 0.053, a pass). The tolerance bounds what the normal approximation can flag.
When either side has fewer than two seeds or neither side varies, the tolerance alone decides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ratbench.errors import RatbenchError

DEFAULT_TOLERANCE = "f1=1.0,s=1.0,acc=2.0"
REQUIRED = ["dataset", "method", "metric", "mean", "std", "n"]
CANONICAL = {"s": "S", "acc": "Acc", "p": "P", "r": "R", "f1": "F1"}
TWO_SIDED = {"S"}


@dataclass
class Cell:
    dataset: str
    method: str
    metric: str
    baseline: float
    baseline_std: float
    baseline_n: int
    current: float
    current_std: float
    current_n: int
    delta: float
    tolerance: float
    p_value: float | None
    status: str  # ok | regression | within-spread | improved
    mode: str = "statistical"  # or "exact" (same configuration, seeds and environment)
    worst_seed_delta: float | None = None  # exact mode: the largest per-seed loss (worse is positive)


@dataclass
class CheckResult:
    cells: list[Cell]
    missing: list[str]  # "dataset/method/metric" in the baseline but not in the current summary
    extra: list[str]
    config_changed: list[str]  # dataset/method whose config hash differs

    @property
    def regressions(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "regression"]

    @property
    def exit_code(self) -> int:
        if self.missing:
            return 1
        return 3 if self.regressions else 0

    def to_dict(self) -> dict:
        return {"exit_code": self.exit_code, "regressions": len(self.regressions), "missing": self.missing,
                "extra": self.extra, "config_changed": self.config_changed,
                "cells": [asdict(c) for c in self.cells]}


def parse_tolerance(text: str) -> dict[str, float]:
    """'f1=1.0,s=1.0,acc=2.0' -> {'F1': 1.0, 'S': 1.0, 'Acc': 2.0}; other metric names pass through."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            tol = float(value)
            if tol < 0 or math.isnan(tol):
                raise ValueError
        except ValueError:
            raise RatbenchError(
                f"Cannot read tolerance {part!r}; write metric=points with a non-negative number, "
                f"e.g. --tolerance {DEFAULT_TOLERANCE}."
            ) from None
        out[CANONICAL.get(key.strip().lower(), key.strip())] = tol
    if not out:
        raise RatbenchError(f"No tolerance given; write e.g. --tolerance {DEFAULT_TOLERANCE}.")
    return out


def read_summary(path: Path, role: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        hint = ("run `ratbench report` first, or pass --current FILE" if role == "current"
                else "pass the summary.csv of a committed reference run, e.g. results/synth-quick/summary.csv")
        raise RatbenchError(f"The {role} summary {path} does not exist; {hint}.")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RatbenchError(f"The {role} summary {path} is not a readable CSV ({err}); regenerate it with "
                            "`ratbench report`.") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise RatbenchError(
            f"The {role} summary {path} lacks the column(s) {', '.join(missing)}; a summary.csv written by "
            f"`ratbench report` has {', '.join(REQUIRED)}. Regenerate it, or point at the right file."
        )
    return df


def _p_value(delta_worse: float, b: pd.Series, c: pd.Series, two_sided: bool) -> float | None:
    """z-test of 'no change' from summary statistics; None when there is no spread to test."""
    from scipy import stats

    nb, nc = int(b["n"]), int(c["n"])
    sb, sc = float(b["std"] if pd.notna(b["std"]) else 0.0), float(c["std"] if pd.notna(c["std"]) else 0.0)
    if nb < 2 or nc < 2 or (sb == 0 and sc == 0):
        return None
    z = delta_worse / math.sqrt(sb**2 / nb + sc**2 / nc)
    return float(2 * stats.norm.sf(abs(z))) if two_sided else float(stats.norm.sf(z))


EXACT_TOLERANCE = 1e-6  # float noise of a CSV round trip; bitwise-equal runs differ by 0


def read_runs(summary_path: Path) -> pd.DataFrame | None:
    """The per-seed `runs.csv` written beside a summary.csv, if there is one with environment fingerprints."""
    path = Path(summary_path).with_name("runs.csv")
    if not path.is_file():
        return None
    runs = pd.read_csv(path)
    return runs if {"env", "seed", "metric", "value", "config_hash"} <= set(runs.columns) else None


def _exact(key: tuple[str, str, str], base_runs: pd.DataFrame | None, cur_runs: pd.DataFrame | None,
           two_sided: bool) -> float | None:
    """The largest per-seed loss when both sides are comparable bit for bit, else None."""
    if base_runs is None or cur_runs is None:
        return None
    sides = []
    for runs in (base_runs, cur_runs):
        rows = runs[(runs["dataset"] == key[0]) & (runs["method"] == key[1]) & (runs["metric"] == key[2])
                    & (runs["status"] == "finished")]
        if rows.empty or rows["env"].isna().any() or rows["env"].nunique() != 1 or rows["config_hash"].nunique() != 1:
            return None
        sides.append(rows.set_index("seed"))
    b, c = sides
    if (set(b.index) != set(c.index) or b["env"].iloc[0] != c["env"].iloc[0]
            or b["config_hash"].iloc[0] != c["config_hash"].iloc[0]):
        return None
    diff = c["value"] - b["value"].reindex(c.index)
    worse = diff.abs() if two_sided else -diff
    return float(worse.max())


def compare(baseline: pd.DataFrame, current: pd.DataFrame, tolerance: dict[str, float],
            alpha: float = 0.05, baseline_runs: pd.DataFrame | None = None,
            current_runs: pd.DataFrame | None = None) -> CheckResult:
    """Per cell: the exact rule when the per-seed runs of both sides are comparable bit for bit, else the
    statistical rule (tolerance and z-test)."""
    key = ["dataset", "method", "metric"]
    base = baseline[baseline["metric"].isin(tolerance)].drop_duplicates(key).set_index(key)
    cur = current[current["metric"].isin(tolerance)].drop_duplicates(key).set_index(key)
    missing = ["/".join(k) for k in base.index if k not in cur.index]
    extra = ["/".join(k) for k in cur.index if k not in base.index]
    changed: list[str] = []
    if "config_hash" in baseline.columns and "config_hash" in current.columns:
        for k in base.index.intersection(cur.index):
            b_hash, c_hash = base.loc[k, "config_hash"], cur.loc[k, "config_hash"]
            name = f"{k[0]}/{k[1]}"
            if str(b_hash) != str(c_hash) and name not in changed:
                changed.append(name)
    cells = []
    for k in base.index.intersection(cur.index):
        b, c = base.loc[k], cur.loc[k]
        metric = k[2]
        tol = tolerance[metric]
        delta = float(c["mean"]) - float(b["mean"])
        two_sided = metric in TWO_SIDED
        worse = abs(delta) if two_sided else -delta
        exact = _exact(k, baseline_runs, current_runs, two_sided)
        p = None
        if exact is not None:
            mode = "exact"
            status = "regression" if exact > EXACT_TOLERANCE else ("improved" if delta > EXACT_TOLERANCE else "ok")
        else:
            mode = "statistical"
            p = _p_value(worse, b, c, two_sided)
            explained = p is not None and p >= alpha
            if worse > tol:
                status = "within-spread" if explained else "regression"
            elif not two_sided and delta > tol and not explained:
                status = "improved"
            else:
                status = "ok"
        cells.append(Cell(k[0], k[1], metric, float(b["mean"]), float(b["std"]) if pd.notna(b["std"]) else 0.0,
                          int(b["n"]), float(c["mean"]), float(c["std"]) if pd.notna(c["std"]) else 0.0,
                          int(c["n"]), delta, tol, p, status, mode, exact))
    return CheckResult(cells, missing, extra, changed)


def render(result: CheckResult, console) -> None:
    from rich.table import Table

    style = {"ok": "green", "regression": "bold red", "within-spread": "yellow", "improved": "cyan"}
    table = Table(title="ratbench check: current vs baseline (mean (std) over seeds)")
    for col in ("dataset", "method", "metric", "baseline", "current", "Δ", "rule", "tol", "p", "status"):
        table.add_column(col, justify="right" if col in ("baseline", "current", "Δ", "tol", "p") else "left")
    for c in result.cells:
        table.add_row(
            c.dataset, c.method, c.metric, f"{c.baseline:.1f} ({c.baseline_std:.1f})",
            f"{c.current:.1f} ({c.current_std:.1f})", f"{c.delta:+.1f}", c.mode,
            "per seed" if c.mode == "exact" else f"{c.tolerance:g}",
            "–" if c.p_value is None else f"{c.p_value:.3f}", f"[{style[c.status]}]{c.status}[/]",
        )
    console.print(table)
    if result.config_changed:
        console.print(f"[yellow]Note:[/] the configuration differs from the baseline's for "
                      f"{', '.join(result.config_changed)} (config hash); numbers may not be comparable.")
    if result.extra:
        console.print(f"Not in the baseline (not compared): {', '.join(result.extra)}")
    if result.missing:
        console.print(f"[bold red]The files do not match up:[/] the current summary lacks "
                      f"{', '.join(result.missing)}. Run those methods/datasets, or pass a matching baseline.")
    elif result.regressions:
        console.print(f"[bold red]{len(result.regressions)} regression(s)[/] beyond tolerance and the seeds' spread.")
    else:
        console.print(f"[green]All {len(result.cells)} compared cells hold.[/]")
