"""`ratbench diagnose`: the VER paper's probes for any method, as a CSV, a PNG and a printed table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ratbench.cli.common import DataRootOpt, ResultsOpt, parse_int_list


def _runs_needed(probe: Any, jobs: list, retrain: bool) -> tuple[list, list]:
    """(jobs to train, jobs whose finished record already holds what the probe needs)."""
    from ratbench.results.record import is_finished, load_record

    todo, ready = [], []
    for job in jobs:
        if not retrain and is_finished(job.path) and probe.usable(load_record(job.path), job.path):
            ready.append(job)
        else:
            job.resume = False  # a finished record without the probe's data is retrained with its hooks on
            todo.append(job)
    return todo, ready


def register(app: typer.Typer) -> None:
    @app.command("diagnose")
    def diagnose_cmd(
        probe_name: Annotated[str, typer.Option("--probe", "-p", help="nonoverlap, gold, lipschitz, sweep, random-dz")],
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
        from rich.console import Console
        from rich.table import Table

        from ratbench import __version__
        from ratbench.atomic import write_text
        from ratbench.cli.run import execute
        from ratbench.config import parse_overrides
        from ratbench.data.specs import expand_datasets
        from ratbench.errors import RatbenchError
        from ratbench.methods import expand_methods
        from ratbench.paths import data_root as _data_root
        from ratbench.paths import results_root
        from ratbench.probes import PROBES, ProbeContext
        from ratbench.results.record import load_record

        console = Console(stderr=True)
        probe = PROBES.get(probe_name)()
        root, res = _data_root(data_root), results_root(results)
        options = {"values": [float(v) for v in values.split(",")]} if values else {}
        ctx = ProbeContext(expand_methods(methods), expand_datasets(datasets), parse_int_list(seeds), profile,
                           parse_overrides(set_ or []), epochs, device, root, res,
                           Path(out) if out else res / "diagnose", options)
        grid = probe.jobs(ctx)
        todo, _ = _runs_needed(probe, grid, retrain)
        console.print(f"[bold]ratbench diagnose {probe.name}[/]: {len(grid)} runs, {len(todo)} to train "
                      f"(profile {profile}), results in {res}")
        for label, status, err in execute(todo, root, console, jobs) if todo else []:
            console.print(f"[red]{status}[/] {label}: {err}")
        runs = []
        for job in grid:
            rec = load_record(job.path) if job.path.exists() else None
            if rec is None or rec.get("status") != "finished":
                raise RatbenchError(f"The run {job.label} did not finish ({(rec or {}).get('error', 'no record')}); "
                                    f"see {job.path} and rerun the same command to retry it.")
            runs.append((job.path, rec))
        frame = probe.compute(ctx, runs)
        summary = probe.summary(frame)
        folder = ctx.out / probe.name
        write_text(folder / f"{probe.name}.csv", frame.to_csv(index=False))
        write_text(folder / f"{probe.name}_summary.csv", summary.to_csv(index=False))
        caption = (f"ratbench {__version__} · probe {probe.name} · profile {profile} · seeds {seeds} · "
                   f"methods {','.join(ctx.methods)} · device {device}"
                   + (f" · {' '.join(set_ or [])}" if set_ else ""))
        png = folder / f"{probe.name}.png"
        probe.plot(frame, png, caption)
        table = Table(title=probe.title)
        for col in summary.columns:
            table.add_column(str(col), justify="right" if summary[col].dtype.kind in "fi" else "left")
        for row in summary.itertuples(index=False):
            table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
        Console().print(table)
        console.print(f"Wrote {folder / (probe.name + '.csv')}, {probe.name}_summary.csv and {png.name}")
