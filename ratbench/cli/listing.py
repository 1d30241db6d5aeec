"""`ratbench list methods|datasets|probes|profiles|metrics` (from the torch-free catalogs)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ratbench.cli.tables import print_dataset_table
from ratbench.config import list_profiles
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import catalog as method_catalog
from ratbench.methods.catalog import method_groups
from ratbench.metrics.names import METRICS
from ratbench.probes.catalog import catalog as probe_catalog
from ratbench.registry import suggest

KINDS = ["methods", "datasets", "probes", "profiles", "metrics"]

app = typer.Typer(add_completion=False)


@app.command("list")
def list_cmd(
    kind: str = typer.Argument(..., help="methods, datasets, probes, profiles or metrics"),
    data_root: str = typer.Option(None, "--data-root", help="Data directory (for dataset availability)."),
) -> None:
    """List what ratbench knows: registered methods, datasets, probes, profiles, or the metrics a record holds."""
    console = Console()
    if kind == "datasets":
        print_dataset_table(data_root)
    elif kind == "methods":
        table = Table(title="Methods")
        for col in ("name", "description", "family", "citation", "backbones", "provenance"):
            table.add_column(col)
        for name, info in method_catalog().items():
            table.add_row(name, info.description, info.family, info.citation, ", ".join(info.backbones),
                          info.provenance)
        console.print(table)
        console.print("Groups: " + ", ".join(f"{g} = {','.join(v)}" for g, v in method_groups().items()))
    elif kind == "profiles":
        table = Table(title="Profiles")
        table.add_column("name")
        table.add_column("description")
        for name, desc in list_profiles():
            table.add_row(name, desc)
        console.print(table)
    elif kind == "probes":
        table = Table(title="Probes (ratbench diagnose --probe NAME)")
        for col in ("name", "what it shows", "reads", "reproduces"):
            table.add_column(col)
        for name, info in probe_catalog().items():
            table.add_row(name, info.title, info.reads, info.figure)
        console.print(table)
    elif kind == "metrics":
        table = Table(title="Metrics (record keys; docs/metrics.md)")
        for col in ("name", "group", "better", "unit", "description"):
            table.add_column(col)
        for name, info in METRICS.items():
            better = {True: "higher", False: "lower", None: "-"}[info.higher_is_better]
            table.add_row(name, info.group, better, info.unit, info.description)
        console.print(table)
    else:
        raise RatbenchError(f"Cannot list {kind!r}.{suggest(kind, KINDS)} Choose one of: {', '.join(KINDS)}.")
