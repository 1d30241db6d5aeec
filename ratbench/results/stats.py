"""Paired tests over seeds against a baseline method (scipy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def paired_tests(runs: pd.DataFrame, baseline: str, metrics: list[str]) -> pd.DataFrame:
    """Paired t-test (two-sided) of each row vs the baseline's row on the seeds both finished.

    Seeds pair naturally: every method sees the same balanced data and seeding per seed. Fewer than two
    paired seeds, or identical differences (zero variance, up to floating-point rounding), give no p-value (NaN).
    """
    finished = runs[(runs["status"] == "finished") & runs["metric"].isin(metrics)]
    out = []
    for (dataset, metric), grp in finished.groupby(["dataset", "metric"]):
        base_rows = grp[grp["method"] == baseline]
        if base_rows.empty or base_rows["row"].nunique() != 1:
            continue
        base = base_rows.set_index("seed")["value"]
        for row, sub in grp[grp["method"] != baseline].groupby("row"):
            other = sub.set_index("seed")["value"]
            seeds = sorted(set(base.index) & set(other.index))
            p = np.nan
            if len(seeds) >= 2:
                diff = other[seeds].to_numpy() - base[seeds].to_numpy()
                # differences equal up to rounding (e.g. 0.31 - 0.21 vs 0.29 - 0.19) have no variance either
                if np.ptp(diff) > 1e-9 * max(1.0, float(np.abs(diff).max())):
                    p = float(stats.ttest_rel(other[seeds], base[seeds]).pvalue)
            out.append({"dataset": dataset, "row": row, "metric": metric, "p_value": p, "n_paired": len(seeds)})
    return pd.DataFrame(out, columns=["dataset", "row", "metric", "p_value", "n_paired"])
