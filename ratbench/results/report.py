"""The `report` pipeline: records -> runs.csv, summary.csv, table.md/.tex and a console table."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from ratbench.atomic import write_text
from ratbench.config import PRIMARY_SELECTION, SELECTION_RULES, RunConfig, config_of
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import method_info_or_none
from ratbench.paths import results_root
from ratbench.protocol import protocol
from ratbench.results.aggregate import _warn, load_records, runs_frame, summarize
from ratbench.results.published import best_published, load_published
from ratbench.results.record import RunRecord
from ratbench.results.render import cell_table, latex, markdown, title
from ratbench.results.stats import paired_tests

SELECTION_TEXT = {
    "dev_acc_matched_s": "the epoch of best dev accuracy among epochs whose dev S is within the tolerance of the "
                         "target (ratbench's rule)",
    "dev_acc": "the epoch of best dev accuracy (the published rule)",
}


def _protocol_sentence(records: list[RunRecord]) -> str:
    """Every protocol item where some run differs from the published code, with the values the runs used."""
    used: dict[str, dict[str, str]] = {}
    for r in records:
        info = method_info_or_none(r.method)
        items = r.protocol or [asdict(i) for i in protocol(config_of(r.config), not info or info.calibrates_alpha)]
        for item in items:
            if item["differs"]:
                used.setdefault(item["name"], {"published": item["published"]}).setdefault(item["used"], "")
    if not used:
        return "Protocol: as the published code."
    order = [i.name for i in protocol(RunConfig())]
    parts = [f"{name}: {' / '.join(k for k in v if k != 'published')} (published: {v['published']})"
             for name, v in sorted(used.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)]
    return "Protocol where it differs from the published code: " + "; ".join(parts) + "."


def _leakage_notes(records: list[RunRecord]) -> list[str]:
    """One sentence per dataset whose test set overlaps its training data in the runs' splits."""
    notes = {}
    for r in records:
        overlap = (r.leakage.get("overlaps") or {}).get("test_in_train") if r.leakage else None
        if overlap and overlap.get("count"):
            notes[r.dataset] = (f"{title(r.dataset)}: {overlap['count']} of {overlap['n']} test reviews "
                                f"({overlap['percent']:.0f} %) also occur in its training data")
    return [notes[d] for d in sorted(notes)]


def _caption(records: list[RunRecord], runs: pd.DataFrame, baseline: str | None, several_configs: bool,
             selection: str, flagged: dict[tuple[str, str], str]) -> str:
    seeds = sorted({int(r.seed) for r in records})
    profiles = sorted({str(r.profile) for r in records})
    devices = sorted({str(r.device) for r in records})
    versions = sorted({f"ratbench {r.versions.get('ratbench')}, torch {r.versions.get('torch')}"
                       for r in records if r.versions})
    text = (f"Test-set metrics at {SELECTION_TEXT[selection]}, mean (std) over seeds {seeds} (std with ddof=1); "
            f"profile {', '.join(profiles)}; device {', '.join(devices)}; {'; '.join(versions)}. "
            "Bold: best mean per column (S is not ranked). seeds = finished/requested.")
    if baseline:
        text += f" †: paired t-test vs {baseline} over seeds, p < 0.05."
    if several_configs:
        text += " Rows with [hash] are different configurations of the same method (not averaged together)."
    if flagged:
        reasons = sorted(set(flagged.values()))
        text += f" ‡: label-leaking, never marked best ({'; '.join(reasons)})."
    text += " " + _protocol_sentence(records)
    leaks = _leakage_notes(records)
    if leaks:
        text += " Test data seen in training: " + "; ".join(leaks) + " (`--set splits=repaired` trains without them)."
    return text


def _add_random_rows(tables: dict[str, list[dict[str, str]]], runs: pd.DataFrame) -> None:
    """A reference row per dataset: what uniform random selection at the runs' own sparsity scores."""
    rand = runs[runs["metric"].isin(["p_random", "r_random", "f1_random"])]
    for dataset, grp in rand.groupby("dataset"):
        if dataset not in tables:
            continue
        means = grp.groupby("metric")["value"].mean()
        tables[dataset].append({"method": "random (same S)", "P": f"{means.get('p_random', float('nan')):.1f}",
                                "R": f"{means.get('r_random', float('nan')):.1f}",
                                "F1": f"{means.get('f1_random', float('nan')):.1f}", "seeds": "expected"})


def build_report(results: Path | None, out: Path | None, formats: list[str], baseline: str | None,
                 published: bool, metrics: list[str], selection: str = PRIMARY_SELECTION) -> pd.DataFrame:
    unknown = set(formats) - {"md", "csv", "tex"}
    if unknown:
        raise RatbenchError(f"Unknown --format {sorted(unknown)}; choose from md, csv, tex.")
    if selection not in SELECTION_RULES:
        raise RatbenchError(f"Unknown --selection {selection!r}; choose from {', '.join(SELECTION_RULES)}.")
    res = results_root(results)
    out_dir = Path(out) if out else res
    records = load_records(res)
    runs = runs_frame(records, selection)
    flagged = _flagged(records, runs)
    summary = summarize(runs)
    p_values = None
    if baseline:
        if baseline not in set(runs["method"]):
            raise RatbenchError(f"--baseline {baseline}: no records of that method under {res}.")
        p_values = paired_tests(runs, baseline, metrics)
        summary = summary.merge(p_values[["dataset", "row", "metric", "p_value"]], on=["dataset", "row", "metric"],
                                how="left")
    if published:
        pub = best_published(load_published())[["method", "dataset", "metric", "published", "published_std",
                                                 "published_source"]]
        summary = summary.merge(pub, on=["method", "dataset", "metric"], how="left")
        summary["delta"] = summary["mean"] - summary["published"]
    cols = ["dataset", "method", "metric", "mean", "std", "n"]
    if published:
        cols += ["published", "delta"]
    extra = [c for c in summary.columns if c not in cols]
    summary = summary[cols + extra].sort_values(["dataset", "row", "metric"]).reset_index(drop=True)
    several = (summary.groupby(["dataset", "method"])["row"].nunique() > 1).any()
    caption = _caption(records, runs, baseline, bool(several), selection, flagged)
    tables = cell_table(summary, metrics, p_values, published, flagged)
    _add_random_rows(tables, runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    if "csv" in formats:
        write_text(out_dir / "summary.csv", summary.to_csv(index=False))
        write_text(out_dir / "runs.csv", runs.drop(columns=["row"]).to_csv(index=False))
    if "md" in formats:
        write_text(out_dir / "table.md", markdown(tables, metrics, caption))
    if "tex" in formats:
        write_text(out_dir / "table.tex", latex(tables, metrics, caption))
    console = Console()
    for dataset, rows in tables.items():
        t = Table(title=title(dataset))
        for c in ["method", *metrics, "seeds"]:
            t.add_column(c, justify="left" if c == "method" else "right")
        for r in rows:
            t.add_row(*[r.get(c, "–").replace("**", "") for c in ["method", *metrics, "seeds"]])
        console.print(t)
    console.print(caption, style="dim")
    for note in _leakage_notes(records):
        _warn(f"{note}: that table's numbers are measured on reviews the models trained on. Train on leak-free "
              "splits with --set splits=repaired (docs/leakage.md).")
    console.print(f"Wrote {', '.join(formats)} tables to {out_dir}")
    return summary


def _flagged(records: list[RunRecord], runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(dataset, row) -> why its numbers leak test labels (from the records)."""
    rows = runs.drop_duplicates(["dataset", "config_hash", "row"]).set_index(["dataset", "config_hash"])["row"]
    out = {}
    for r in records:
        if r.label_leak and (r.dataset, r.config_hash) in rows.index:
            out[(r.dataset, str(rows.loc[(r.dataset, r.config_hash)]))] = f"{r.method}: {r.label_leak}"
    return out
