"""Tables in the VER paper's layout: one block per dataset, rows = methods, columns S Acc P R F1."""

from __future__ import annotations

import math

import pandas as pd

from ratbench.data.catalog import DATASETS
from ratbench.methods.catalog import row_order
from ratbench.metrics.names import METRICS, higher_is_better


def title(dataset: str) -> str:
    return DATASETS.get(dataset).title if dataset in DATASETS else dataset


def digits(metric: str) -> int:
    """Decimals of a cell: one for percentages, three for probabilities and ratios (comp, suff, AUPRC, IOU-F1)."""
    info = METRICS.get(metric)
    return 3 if info is not None and info.unit != "%" else 1


def _fmt(mean: float, std: float, places: int = 1, plain: bool = False) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if round(mean, places) == 0:
        mean = 0.0  # no "-0.000"
    if plain:
        return f"{mean:.{places}f}"
    s = "–" if std is None or (isinstance(std, float) and math.isnan(std)) else f"{std:.{places}f}"
    return f"{mean:.{places}f} ({s})"


def _row_key(row: str, grp: pd.DataFrame) -> tuple[int, str]:
    """Rows in each method's declared table order (the VER paper's Table 1 order first: post-hoc explainers,
    RNP, ..., VER last); configurations of one method by their label."""
    method = str(grp.loc[grp["row"] == row, "method"].iloc[0])
    return (row_order(method)[0], row)


def cell_table(summary: pd.DataFrame, metrics: list[str], p_values: pd.DataFrame | None, published: bool,
               flagged: dict[tuple[str, str], str] | None = None, directions: dict[str, bool | None] | None = None,
               places: dict[str, int] | None = None, plain: frozenset[str] = frozenset(),
               ) -> dict[str, list[dict[str, str]]]:
    """dataset -> rows of formatted cells; best mean per ranked column in bold (the direction comes from the
    metric vocabulary: S is not ranked, sufficiency is lower-is-better; `directions` adds or overrides), † for
    p < 0.05. Decimals per column from `digits` (or `places`); `plain` columns show the mean without a std."""
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
            direction = (directions or {}).get(m, higher_is_better(m))
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
                text = _fmt(r["mean"], r["std"], (places or {}).get(m, digits(m)), m in plain)
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


def markdown(tables: dict[str, list[dict[str, str]]], metrics: list[str], caption: str,
             labels: dict[str, str] | None = None, notes: dict[str, str] | None = None,
             heading: str | None = None) -> str:
    """The blocks under the caption (and a `## heading`); `labels` name columns, `notes` follow a block."""
    lines = ([f"## {heading}", ""] if heading else []) + [caption, ""]
    for dataset, rows in tables.items():
        lines.append(f"### {title(dataset)}")
        lines.append("")
        cols = ["method", *metrics, "seeds"]
        lines.append("| " + " | ".join((labels or {}).get(c, c) for c in cols) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
        for r in rows:
            lines.append("| " + " | ".join(r.get(c, "–") for c in cols) + " |")
        lines.append("")
        if notes and notes.get(dataset):
            lines += [notes[dataset], ""]
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("Δ", r"$\Delta$"), ("†", r"$^\dagger$"), ("–", "--")):
        text = text.replace(a, b)
    while "**" in text:
        text = text.replace("**", r"\textbf{", 1).replace("**", "}", 1)
    for a, b in (("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("‡", r"$^\ddagger$")):
        text = text.replace(a, b)
    return text


def latex(tables: dict[str, list[dict[str, str]]], metrics: list[str], caption: str,
          labels: dict[str, str] | None = None) -> str:
    cols = ["method", *metrics, "seeds"]
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}",
             r"\toprule", " & ".join(_tex_escape((labels or {}).get(c, c)) for c in cols) + r" \\"]
    for dataset, rows in tables.items():
        lines += [r"\midrule", rf"\multicolumn{{{len(cols)}}}{{l}}{{\textit{{{_tex_escape(title(dataset))}}}}} \\"]
        for r in rows:
            lines.append(" & ".join(_tex_escape(r.get(c, "–")) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}", ""]
    return "\n".join(lines)
