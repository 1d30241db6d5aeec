"""`ratbench data list | fetch | import | info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ratbench.cli.common import DataRootOpt
from ratbench.cli.tables import print_dataset_table
from ratbench.data.acquire import fetch, import_path
from ratbench.data.info import dataset_info, leakage_lines
from ratbench.errors import RatbenchError
from ratbench.paths import data_root as _root

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Fetch, import, inspect and list datasets and "
                                                                     "word vectors.")


@app.command("list")
def list_cmd(data_root: DataRootOpt = None) -> None:
    """Every dataset and word-vector resource, whether it is available, and how to get what is missing."""
    print_dataset_table(data_root)


@app.command("fetch")
def fetch_cmd(
    names: Annotated[list[str], typer.Argument(
        help="hotel, eraser (all seven tasks) or one ERASER dataset such as eraser-movies, glove, glove-stanford "
             "(beer is on request).")],
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
    data_root: DataRootOpt = None,
) -> None:
    """Download, verify (checksum) and cache datasets or word vectors."""
    root = _root(data_root)
    for name in names:
        for path in fetch(name, root, force=force):
            typer.echo(f"{name}: {path}")


@app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="beer, hotel, eraser, glove or vectors")],
    path: Annotated[Path, typer.Argument(help="Folder, archive or file you have.")],
    vector_name: Annotated[str | None, typer.Option(
        "--name", help="vectors: the name runs select with --set vectors=NAME (default: the file's name).")] = None,
    data_root: DataRootOpt = None,
) -> None:
    """Validate local copies (beer folder; hotel data.zip or folder; an ERASER <task>.tar.gz or its folder; GloVe or
    any word-vector file) and place them under the data root."""
    root = _root(data_root)
    imported = import_path(name, path, root, vector_name)
    typer.echo(imported.message)
    for dataset in imported.datasets:  # what the audit finds in the splits just placed (docs/leakage.md)
        for line in leakage_lines(dataset, root):
            typer.echo(f"{dataset}: {line}")


@app.command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="A dataset name, e.g. beer-appearance.")],
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    splits: Annotated[str, typer.Option("--splits", help="published, or repaired (no review of an earlier split "
                                                         "in a later one: docs/leakage.md).")] = "published",
    data_root: DataRootOpt = None,
) -> None:
    """Per split: n, n_pos, n_neg, avg_len; gold sparsity of the annotated split (VER Table 4 layout); and the
    duplicates within and between the splits (exact match after lower-casing and collapsing whitespace)."""
    if fmt not in ("table", "json"):
        raise RatbenchError(f"--format must be table or json, got {fmt!r}.")
    info = dataset_info(name, _root(data_root), splits)
    if fmt == "json":
        typer.echo(json.dumps(info, indent=1))
        return
    if "eraser" in info:
        _print_eraser_info(info, name)
        return
    table = Table(title=f"{info['title']} ({name})")
    for col in ("split", "n", "pos", "neg", "avg_len", "gold S %"):
        table.add_column(col, justify="right")
    for s in info["splits"]:
        gs = f"{s['gold_sparsity']:.1f}" if "gold_sparsity" in s else ""
        table.add_row(s["split"], str(s["n"]), str(s["n_pos"]), str(s["n_neg"]), f"{s['avg_len']:.0f}", gs)
    console = Console()
    console.print(table)
    console.print(f"Duplicates ({info['leakage']['normalisation']}):", highlight=False)
    for line in info["leakage_summary"]:
        console.print(f"  {line}", highlight=False)


def _number(value: object) -> str:
    if isinstance(value, dict):
        return " / ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def _print_eraser_info(info: dict, name: str) -> None:
    """Per split: examples, class counts, document / query length, evidence sparsity, examples without evidence;
    then the published numbers beside ours, each with its source."""
    console = Console()
    table = Table(title=f"{info['title']} ({name})")
    for col in ("split", "n", "classes", "doc len", "query len", "evidence S % (macro / micro)", "no evidence"):
        table.add_column(col, justify="left" if col == "classes" else "right")
    for s in info["splits"]:
        query = f"{s['mean_query_tokens']:.1f}" if "mean_query_tokens" in s else "–"
        sparsity = (f"{100 * s['evidence_sparsity_macro']:.1f} / {100 * s['evidence_sparsity_micro']:.1f}"
                    if "evidence_sparsity_macro" in s else "–")
        table.add_row(s["split"], str(s["n"]), _number(s["class_counts"]), f"{s['mean_document_tokens']:.1f}", query,
                      sparsity, str(s["examples_without_evidence"]))
    console.print(table)
    console.print(f"Note: {info['eraser']['no_evidence']}.", highlight=False)
    rows = info["eraser"]["comparison"]
    if rows:
        published = Table(title="Published statistics (dev = ERASER's val)")
        for col in ("split", "statistic", "ours", "published", "source"):
            published.add_column(col, justify="right" if col in ("ours", "published") else "left")
        for r in rows:
            published.add_row(r["split"], r["metric"], _number(r["ours"]), _number(r["published"]), r["source"])
        console.print(published)
    console.print(f"Duplicates ({info['leakage']['normalisation']}):", highlight=False)
    for line in info["leakage_summary"]:
        console.print(f"  {line}", highlight=False)
