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
from ratbench.methods.catalog import method_info_or_none, row_order
from ratbench.metrics.names import METRICS
from ratbench.paths import results_root
from ratbench.protocol import protocol
from ratbench.results.aggregate import _warn, faithfulness_runs, load_records, runs_frame, summarize
from ratbench.results.nrg import NRG_GROUPS, NRG_KEYS, TASK_ACC, nrg_over
from ratbench.results.published import best_published, load_published
from ratbench.results.record import RunRecord, backbone_description
from ratbench.results.render import cell_table, latex, markdown, title
from ratbench.results.stats import paired_tests

# the second table (faithfulness.md): its default columns and their headers
FAITHFULNESS_COLUMNS = ["Acc", "classifier_acc", "comprehensiveness", "sufficiency", "comp_aopc", "suff_aopc",
                        "comp_aopc_eraser_script", "suff_aopc_eraser_script", "auprc", "iou_f1", "F1", "nrg"]
COLUMN_LABELS = {
    "Acc": "Acc ↑", "classifier_acc": "Acc (full text) ↑", TASK_ACC: "task Acc ↑",
    "comprehensiveness": "comp ↑", "sufficiency": "suff ↓", "comp_aopc": "comp AOPC ↑", "suff_aopc": "suff AOPC ↓",
    "comp_aopc_eraser_script": "comp AOPC (script) ↑", "suff_aopc_eraser_script": "suff AOPC (script) ↓",
    "auprc": "AUPRC ↑", "iou_f1": "IOU-F1 ↑", "F1": "F1 ↑", "nrg": "NRG ↑", "nrg_faithfulness": "NRG faith. ↑",
    "nrg_plausibility": "NRG plaus. ↑", "nrg_task": "NRG task ↑",
}
# a record has faithfulness numbers when it has one of these (runs with faithfulness=false have none)
FAITHFULNESS_KEYS = ("comprehensiveness", "sufficiency", "comp_aopc", "suff_aopc", "auprc", "iou_f1")

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
            "Bold: best mean per column (S is not ranked). seeds = finished/requested. "
            f"Backbone: {'; '.join(sorted({backbone_description(r.backbone) for r in records}))}.")
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
                 published: bool, metrics: list[str], selection: str = PRIMARY_SELECTION,
                 faithfulness: bool = True, columns: list[str] | None = None) -> pd.DataFrame:
    """The main table (table.md/.tex, summary.csv, runs.csv) and, with `faithfulness`, the faithfulness and
    plausibility table (faithfulness.md/.tex, nrg.csv) over `columns` (default FAITHFULNESS_COLUMNS)."""
    unknown = set(formats) - {"md", "csv", "tex"}
    if unknown:
        raise RatbenchError(f"Unknown --format {sorted(unknown)}; choose from md, csv, tex.")
    columns = list(columns or FAITHFULNESS_COLUMNS)
    known = [*METRICS, TASK_ACC, *NRG_KEYS]
    bad = [c for c in columns if c not in known]
    if bad:
        raise RatbenchError(f"Unknown --columns {bad}; choose from {', '.join(known)}.")
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
        pub = best_published(load_published())[["method", "dataset", "encoder", "metric", "published",
                                                 "published_std", "published_source"]]
        summary = summary.merge(pub, on=["method", "dataset", "encoder", "metric"], how="left")
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
    _print_tables(console, tables, metrics)
    console.print(caption, style="dim")
    if faithfulness:
        _faithfulness_outputs(console, runs, flagged, baseline, columns, formats, out_dir, selection)
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


def _print_tables(console: Console, tables: dict[str, list[dict[str, str]]], metrics: list[str],
                  labels: dict[str, str] | None = None, notes: dict[str, str] | None = None) -> None:
    for dataset, rows in tables.items():
        t = Table(title=title(dataset))
        for c in ["method", *metrics, "seeds"]:
            t.add_column((labels or {}).get(c, c), justify="left" if c == "method" else "right")
        for r in rows:
            t.add_row(*[r.get(c, "–").replace("**", "") for c in ["method", *metrics, "seeds"]])
        console.print(t)
        if notes and notes.get(dataset):
            console.print(notes[dataset])


def faithfulness_caption(selection: str, baseline: str | None) -> str:
    text = (f"Faithfulness and plausibility at {SELECTION_TEXT[selection]} (the epochs of table.md), mean (std) over "
            "seeds. Acc: the prediction made from the method's rationale. Acc (full text): a full-text classifier's "
            "prediction (post-hoc explainers, explained classifiers), which reads the whole text. comp / suff: "
            "ERASER comprehensiveness (↑) and sufficiency (↓) of the hard rationale, probability differences of the "
            "model that makes the prediction; AOPC: the same over the top-k% bins {1, 5, 10, 20, 50} of the soft "
            "scores, divided by |B|+1 = 6 (ERASER paper, UNIREX) or, (script), by |B| = 5 (ERASER's scoring "
            "script). AUPRC and IOU-F1 in [0, 1], F1 in % (plausibility: agreement with the human rationale). "
            "NRG (UNIREX): each metric's row means min-max normalised over the compared set (lower-is-better "
            "metrics flipped), averaged within faithfulness (" + ", ".join(NRG_GROUPS["faithfulness"]) + "), "
            "plausibility (" + ", ".join(NRG_GROUPS["plausibility"]) + ") and task (Acc, or Acc (full text)), "
            "then over the three; it depends on the compared set, printed under each block. Bold: best mean per "
            "column.")
    if baseline:
        text += f" †: paired t-test vs {baseline} over seeds, p < 0.05."
    return text


def faithfulness_table(runs: pd.DataFrame, flagged: dict[tuple[str, str], str], baseline: str | None,
                       columns: list[str]) -> tuple[dict[str, list[dict[str, str]]], dict[str, str], pd.DataFrame]:
    """(cells per dataset, NRG set sentence per dataset, nrg.csv rows) of the faithfulness table."""
    fruns = faithfulness_runs(runs)
    summary = summarize(fruns)
    extra, nrg_rows, notes = [], [], {}
    for dataset, grp in summary.groupby("dataset", sort=True):
        method_of = dict(zip(grp["row"], grp["method"]))
        order = sorted(method_of, key=lambda r: (row_order(method_of[r])[0], r))
        means = {row: dict(zip(sub["metric"], sub["mean"])) for row, sub in grp.groupby("row")}
        leaking = {row for (d, row) in flagged if d == dataset}
        result = nrg_over({row: means[row] for row in order}, leaking)
        notes[dataset] = result.sentence()
        for row in order:
            base = grp[grp["row"] == row].iloc[0]
            scores = result.scores.get(row, {})
            for key, value in scores.items():
                extra.append({**base.to_dict(), "metric": key, "mean": value, "std": float("nan"),
                              "n": int(grp.loc[grp["row"] == row, "n"].max())})
            nrg_rows.append({"dataset": dataset, "row": row, "method": method_of[row],
                             **{k: scores.get(k, float("nan")) for k in NRG_KEYS}, "in_set": row in result.compared,
                             "excluded": result.excluded.get(row, ""), "compared_set": ";".join(result.compared)})
    if extra:
        summary = pd.concat([summary, pd.DataFrame(extra)], ignore_index=True)
    p_values = paired_tests(fruns, baseline, columns) if baseline else None
    directions = {TASK_ACC: True, **dict.fromkeys(NRG_KEYS, True)}
    places = {TASK_ACC: 1, **dict.fromkeys(NRG_KEYS, 3)}
    tables = cell_table(summary, columns, p_values, False, flagged, directions, places, frozenset(NRG_KEYS))
    return tables, notes, pd.DataFrame(nrg_rows)


def _faithfulness_outputs(console: Console, runs: pd.DataFrame, flagged: dict[tuple[str, str], str],
                          baseline: str | None, columns: list[str], formats: list[str], out_dir: Path,
                          selection: str) -> None:
    if not runs["metric"].isin(FAITHFULNESS_KEYS).any():
        console.print("No faithfulness metrics in these records (runs trained with faithfulness=false): no "
                      "faithfulness table.", style="dim")
        return
    tables, notes, nrg_frame = faithfulness_table(runs, flagged, baseline, columns)
    caption = faithfulness_caption(selection, baseline)
    if "csv" in formats:
        write_text(out_dir / "nrg.csv", nrg_frame.to_csv(index=False))
    if "md" in formats:
        write_text(out_dir / "faithfulness.md", markdown(tables, columns, caption, COLUMN_LABELS, notes,
                                                         "Faithfulness and plausibility"))
    if "tex" in formats:
        tex_caption = caption + " " + " ".join(f"{title(d)}: {n}" for d, n in notes.items())
        write_text(out_dir / "faithfulness.tex", latex(tables, columns, tex_caption, COLUMN_LABELS))
    console.print("Faithfulness and plausibility", style="bold")
    _print_tables(console, tables, columns, COLUMN_LABELS, notes)
    console.print(caption, style="dim")
