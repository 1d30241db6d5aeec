"""`ratbench data list | fetch | import | info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ratbench.cli.common import DataRootOpt

data_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data", help="Fetch, import, inspect and list datasets and word vectors.")


def print_dataset_table(data_root: str | Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ratbench.data.embeddings import GENSIM_NAME, STANFORD_NAME
    from ratbench.data.loading import dataset_status
    from ratbench.data.specs import DATASETS, GROUPS
    from ratbench.paths import data_root as _root

    root = _root(data_root)
    table = Table(title=f"Datasets (data root {root})")
    for col in ("dataset", "available", "how to get it"):
        table.add_column(col)
    for name in DATASETS:
        ok, how = dataset_status(name, root)
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", how)
    glove = any((root / "glove" / n).exists() for n in (STANFORD_NAME, GENSIM_NAME))
    table.add_row("glove (vectors)", "[green]yes[/]" if glove else "[red]no[/]",
                  "`ratbench data fetch glove` or `ratbench data import glove FILE` (needed by beer and hotel)")
    console = Console()
    console.print(table)
    console.print("Groups: " + ", ".join(f"{g} = {','.join(v)}" for g, v in GROUPS.items()))


@data_app.command("list")
def list_cmd(data_root: DataRootOpt = None) -> None:
    """Every dataset, whether it is available, and the exact command to get it."""
    print_dataset_table(data_root)


@data_app.command("fetch")
def fetch_cmd(
    names: Annotated[list[str], typer.Argument(help="hotel, glove (beer is on request: see the message).")],
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
    data_root: DataRootOpt = None,
) -> None:
    """Download, verify (checksum) and cache datasets or word vectors."""
    from ratbench.data.download import fetch
    from ratbench.paths import data_root as _root

    root = _root(data_root)
    for name in names:
        for path in fetch(name, root, force=force):
            typer.echo(f"{name}: {path}")


@data_app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="beer, hotel or glove")],
    path: Annotated[Path, typer.Argument(help="Folder, archive or file you have.")],
    data_root: DataRootOpt = None,
) -> None:
    """Validate local copies (beer folder; hotel data.zip or folder; GloVe txt/zip/gz) and place them."""
    from ratbench.data.importer import import_dataset
    from ratbench.paths import data_root as _root

    root = _root(data_root)
    placed = import_dataset(name, path, root)
    typer.echo(f"Imported {len(placed)} file(s) for {name} into {root} (sha256 recorded in manifest.json).")


@data_app.command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="A dataset name, e.g. beer-appearance.")],
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    data_root: DataRootOpt = None,
) -> None:
    """Per split: n, n_pos, n_neg, avg_len; gold sparsity of the annotated split (VER Table 4 layout)."""
    from ratbench.data.info import dataset_info
    from ratbench.errors import RatbenchError
    from ratbench.paths import data_root as _root

    if fmt not in ("table", "json"):
        raise RatbenchError(f"--format must be table or json, got {fmt!r}.")
    info = dataset_info(name, _root(data_root))
    if fmt == "json":
        typer.echo(json.dumps(info, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{info['title']} ({name})")
    for col in ("split", "n", "pos", "neg", "avg_len", "gold S %"):
        table.add_column(col, justify="right")
    for s in info["splits"]:
        gs = f"{s['gold_sparsity']:.1f}" if "gold_sparsity" in s else ""
        table.add_row(s["split"], str(s["n"]), str(s["n_pos"]), str(s["n_neg"]), f"{s['avg_len']:.0f}", gs)
    Console().print(table)


