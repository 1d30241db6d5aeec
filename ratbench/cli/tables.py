"""Console tables shared by more than one verb (verbs never import each other)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ratbench.data.catalog import groups, visible
from ratbench.data.loading import dataset_status
from ratbench.data.vectors import HOW_GLOVE, available_glove, imported_names
from ratbench.paths import data_root as _root


def print_dataset_table(data_root: str | Path | None) -> None:
    """Every dataset, whether it is here, and (only when it is not) how to get it."""
    root = _root(data_root)
    table = Table(title=f"Datasets (data root {root})")
    for col in ("dataset", "available", "how to get it"):
        table.add_column(col)
    for name in visible():
        ok, how = dataset_status(name, root)
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", "" if ok else how)
    glove = available_glove(root)
    table.add_row("glove-6b-100d (vectors)", "[green]yes[/]" if glove else "[red]no[/]",
                  "" if glove else f"{HOW_GLOVE} (needed by beer and hotel)")
    for name in imported_names(root):
        table.add_row(f"{name} (vectors)", "[green]yes[/]", f"use with --set vectors={name}")
    console = Console()
    console.print(table)
    console.print("Groups: " + ", ".join(f"{g} = {','.join(v)}" for g, v in groups().items()))
