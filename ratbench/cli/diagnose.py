"""`ratbench diagnose`: the VER paper's probes for any method, as a CSV, a PNG and a printed table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ratbench import api
from ratbench.cli.common import DataRootOpt, ResultsOpt, parse_int_list
from ratbench.cli.progress import grid_events
from ratbench.config import parse_overrides
from ratbench.data.catalog import expand_datasets
from ratbench.methods.catalog import expand_methods
from ratbench.paths import data_root as _data_root
from ratbench.paths import results_root
from ratbench.probes import catalog as probe_catalog
from ratbench.probes.base import ProbeContext

app = typer.Typer(add_completion=False)


@app.command("diagnose")
def diagnose_cmd(
    probe_name: Annotated[str, typer.Option("--probe", "-p", help=", ".join(probe_catalog.names()))],
    methods: Annotated[str, typer.Option("--methods", "-m", help="Comma list or group.")] = "rnp,ver",
    datasets: Annotated[str, typer.Option("--datasets", "-d", help="Comma list or group.")] = "synth-appearance",
    seeds: Annotated[str, typer.Option("--seeds", help="e.g. 1,2 or 1-5.")] = "1,2",
    profile: Annotated[str, typer.Option("--profile", help="quick, paper, smoke or a YAML path.")] = "quick",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the epoch budget.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", help="Runs trained in parallel (processes).")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any setting: key=value.")] = None,
    values: Annotated[str | None, typer.Option(
        "--values", help="sweep: the p values, e.g. 0,0.1,0.2,0.3,0.4,0.5.")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain runs even if records exist.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Output dir (default <results>/diagnose).")] = None,
    data_root: DataRootOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Run probe P for methods x datasets x seeds: reuse finished runs, train the missing ones (with the probe's
    training hooks on), write <out>/<probe>/<probe>.csv, <probe>_summary.csv and <probe>.png."""
    console = Console(stderr=True)
    root, res = _data_root(data_root), results_root(results)
    options = {"values": [float(v) for v in values.split(",")]} if values else {}
    ctx = ProbeContext(expand_methods(methods), expand_datasets(datasets), parse_int_list(seeds), profile,
                       parse_overrides(set_ or []), epochs, device, root, res,
                       Path(out) if out else res / "diagnose", options)
    caption = (f"profile {profile} · seeds {seeds} · methods {','.join(ctx.methods)} · device {device}"
               + (f" · {' '.join(set_ or [])}" if set_ else ""))
    probe_plan = api.plan_probe(probe_name, ctx, retrain)
    console.print(f"[bold]ratbench diagnose {probe_name}[/]: {len(probe_plan.specs)} runs, {len(probe_plan.todo)} to "
                  f"train (profile {profile}), results in {res}")
    with grid_events(console, probe_plan.todo) as events:
        result = api.diagnose(probe_plan, ctx, caption, jobs=jobs, events=events)
    for o in result.trained:
        if o.status != "finished":
            console.print(f"[red]{o.status}[/] {o.label}: {o.error}")
    summary = result.summary
    table = Table(title=result.probe.title)
    for col in summary.columns:
        table.add_column(str(col), justify="right" if summary[col].dtype.kind in "fi" else "left")
    for row in summary.itertuples(index=False):
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
    console.print(f"Wrote {result.folder / (result.probe.name + '.csv')}, {result.probe.name}_summary.csv and "
                  f"{result.png.name}")
