"""`ratbench list methods|datasets|probes|profiles`."""

from __future__ import annotations

import typer

from ratbench.errors import RatbenchError
from ratbench.registry import suggest

KINDS = ["methods", "datasets", "probes", "profiles"]


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_cmd(
        kind: str = typer.Argument(..., help="methods, datasets, probes or profiles"),
        data_root: str = typer.Option(None, "--data-root", help="Data directory (for dataset availability)."),
    ) -> None:
        """List what ratbench knows: registered methods, datasets, probes or profiles."""
        from rich.console import Console
        from rich.table import Table

        console = Console()
        if kind == "datasets":
            from ratbench.cli.data import print_dataset_table

            print_dataset_table(data_root)
            return
        if kind == "methods":
            from ratbench.methods import METHOD_GROUPS, METHODS

            table = Table(title="Methods")
            for col in ("name", "description", "family", "citation", "BERT"):
                table.add_column(col)
            for name, cls in METHODS.items():
                table.add_row(name, (cls.__doc__ or "").strip().splitlines()[0], cls.family, cls.citation,
                              "needs BERT" if cls.needs_bert else "no")
            console.print(table)
            console.print("Groups: " + ", ".join(f"{g} = {','.join(v)}" for g, v in METHOD_GROUPS.items()))
            return
        if kind == "profiles":
            from ratbench.config import list_profiles

            table = Table(title="Profiles")
            table.add_column("name")
            table.add_column("description")
            for name, desc in list_profiles():
                table.add_row(name, desc)
            console.print(table)
            return
        if kind == "probes":
            from ratbench.probes import PROBES

            table = Table(title="Probes (ratbench diagnose --probe NAME)")
            table.add_column("name")
            table.add_column("what it shows")
            table.add_column("reads")
            for name, cls in PROBES.items():
                reads = ", ".join(x for x, on in (("checkpoint", cls.needs_checkpoint),
                                                  (f"training hook {','.join(cls.collects)}", bool(cls.collects)))
                                  if on) or "run records"
                table.add_row(name, cls.title, reads)
            console.print(table)
            return
        raise RatbenchError(f"Cannot list {kind!r}.{suggest(kind, KINDS)} Choose one of: {', '.join(KINDS)}.")
