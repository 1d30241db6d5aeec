"""The `ratbench` command. Verbs live in their own modules and import heavy libraries lazily."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from ratbench import __version__
from ratbench.errors import RatbenchError

_state = {"debug": False}


class _Group(TyperGroup):
    """Turns RatbenchError into one paragraph on stderr and exit code 1 (also under CliRunner)."""

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


def _register() -> None:
    import importlib

    for module in ("data", "listing", "run", "report", "check", "score", "show", "diagnose"):
        try:
            mod = importlib.import_module(f"ratbench.cli.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"ratbench.cli.{module}":
                raise
            continue
        mod.register(app)


_register()


def main() -> None:
    app()
