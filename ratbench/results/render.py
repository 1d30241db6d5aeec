"""Tables in the VER paper's layout: one block per dataset, rows = methods, columns S Acc P R F1."""

from __future__ import annotations

import math

import pandas as pd

from ratbench.data.catalog import DATASETS
from ratbench.methods.catalog import row_order
from ratbench.metrics.names import higher_is_better


def title(dataset: str) -> str:
    return DATASETS.get(dataset).title if dataset in DATASETS else dataset


def _fmt(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = "–" if std is None or (isinstance(std, float) and math.isnan(std)) else f"{std:.1f}"
    return f"{mean:.1f} ({s})"


def _row_key(row: str, grp: pd.DataFrame) -> tuple[int, str]:
    """Rows in each method's declared table order (the VER paper's Table 1 order first: post-hoc explainers,
    RNP, ..., VER last); configurations of one method by their label."""
    method = str(grp.loc[grp["row"] == row, "method"].iloc[0])
    return (row_order(method)[0], row)


def cell_table(summary: pd.DataFrame, metrics: list[str], p_values: pd.DataFrame | None, published: bool,
               flagged: dict[tuple[str, str], str] | None = None) -> dict[str, list[dict[str, str]]]:
    """dataset -> rows of formatted cells; best mean per ranked column in bold (the direction comes from the
    metric vocabulary: S is not ranked, sufficiency is lower-is-better), † for p < 0.05."""
    out: dict[str, list[dict[str, str]]] = {}
    pv = {}
    if p_values is not None and not p_values.empty:
        pv = {(r.dataset, r.row, r.metric): r.p_value for r in p_values.itertuples()}
    for dataset, grp in summary.groupby("dataset", sort=True):
        leaking = {row for (d, row) in (flagged or {}) if d == dataset}
        ranked = grp[~grp["row"].isin(leaking)]  # a label-leaking row is never the best of a column
        best = {}
        for m in metrics:
            vals = ranked[ranked["metric"] == m]["mean"]
            direction = higher_is_better(m)
            if direction is not None and not vals.empty:
                best[m] = vals.max() if direction else vals.min()
        rows = []
        order = sorted(grp["row"].unique(), key=lambda r: _row_key(r, grp))
        for row in order:
            sub = grp[grp["row"] == row]
            cells = {"method": f"{row} ‡" if row in leaking else row}
            by = sub.set_index("metric")
            n = int(sub["n"].max())
            n_exp = int(sub["n_expected"].max())
            n_fail = int(sub["n_failed"].max())
            for m in metrics:
                if m not in by.index:
                    cells[m] = "–"
                    continue
                r = by.loc[m]
                text = _fmt(r["mean"], r["std"])
                if m in best and r["mean"] == best[m]:
                    text = f"**{text}**"
                p = pv.get((dataset, row, m))
                if p is not None and not math.isnan(p) and p < 0.05:
                    text += " †"
                if published and "published" in by.columns and not pd.isna(r.get("published")):
                    text += f" [{r['published']:.1f}, Δ {r['delta']:+.1f}]"
                cells[m] = text
            seeds = f"{n}/{n_exp}" + (f", {n_fail} failed" if n_fail else "")
            cells["seeds"] = seeds
            rows.append(cells)
        out[dataset] = rows
    return out


def markdown(tables: dict[str, list[dict[str, str]]], metrics: list[str], caption: str) -> str:
    lines = [caption, ""]
    for dataset, rows in tables.items():
        lines.append(f"### {title(dataset)}")
        lines.append("")
        cols = ["method", *metrics, "seeds"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
        for r in rows:
            lines.append("| " + " | ".join(r.get(c, "–") for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("Δ", r"$\Delta$"), ("†", r"$^\dagger$"), ("–", "--")):
        text = text.replace(a, b)
    while "**" in text:
        text = text.replace("**", r"\textbf{", 1).replace("**", "}", 1)
    return text


def latex(tables: dict[str, list[dict[str, str]]], metrics: list[str], caption: str) -> str:
    cols = ["method", *metrics, "seeds"]
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}",
             r"\toprule", " & ".join(_tex_escape(c) for c in cols) + r" \\"]
    for dataset, rows in tables.items():
        lines += [r"\midrule", rf"\multicolumn{{{len(cols)}}}{{l}}{{\textit{{{_tex_escape(title(dataset))}}}}} \\"]
        for r in rows:
            lines.append(" & ".join(_tex_escape(r.get(c, "–")) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}", ""]
    return "\n".join(lines)
