"""The `ratbench` command. Each verb is its own module, imported only when that verb runs.

`ratbench --help` lists the verbs from the table below without importing them, and `ratbench report`
imports the report verb alone, so neither pays for torch. A verb module defines `app`, a Typer app with its
command(s); it imports what it needs at its top (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

from ratbench import __version__
from ratbench.errors import RatbenchError

# verb -> (module, one-line help shown by `ratbench --help`)
VERBS = {
    "run": ("ratbench.cli.run", "Train methods x datasets x seeds; one RunRecord per run, resumable."),
    "report": ("ratbench.cli.report", "Tables (md, csv, tex) from run records: mean (std) over seeds, tests."),
    "check": ("ratbench.cli.check", "Regression gate: exit 3 when results regress against a baseline."),
    "diagnose": ("ratbench.cli.diagnose", "Run a diagnostic probe: a CSV, a PNG and a printed table."),
    "show": ("ratbench.cli.show", "A finished run's rationales next to the human ones (terminal or HTML)."),
    "score": ("ratbench.cli.score", "Score rationales in ERASER's formats (token P/R/F1, IOU, AUPRC, ...)."),
    "export": ("ratbench.cli.export", "Write finished runs' test predictions in ERASER's results format."),
    "data": ("ratbench.cli.data", "Fetch, import, inspect and list datasets and word vectors."),
    "list": ("ratbench.cli.listing", "List registered methods, datasets, probes or profiles."),
}

_state = {"debug": False}


def load_verb(name: str) -> click.Command:
    module = importlib.import_module(VERBS[name][0])
    command = typer.main.get_command(module.app)
    command.name = name
    return command


class _Group(TyperGroup):
    """Lazy verbs, and RatbenchError as one paragraph on stderr with exit code 1 (also under CliRunner)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """A stub carrying the one-line help (for listings); the real command loads in `resolve_command`."""
        if name not in VERBS:
            return None
        return click.Command(name, help=VERBS[name][1], short_help=VERBS[name][1])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if name in VERBS:
            return name, load_verb(name), args[1:]
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except RatbenchError as err:
            if _state["debug"]:
                raise
            typer.echo(f"Error: {err}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted. Finished runs are kept; rerun the same command to resume.", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    name="ratbench",
    cls=_Group,
    help="Benchmark selective rationalization methods: train, report, diagnose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ratbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def main() -> None:
    app()
