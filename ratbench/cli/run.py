"""`ratbench run`: train a grid of methods x datasets x seeds and write one RunRecord per run."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ratbench import api
from ratbench.cli.common import DataRootOpt, ResultsOpt, parse_int_list
from ratbench.cli.progress import grid_events
from ratbench.config import parse_overrides
from ratbench.data.catalog import expand_datasets
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import expand_methods
from ratbench.paths import data_root as _data_root
from ratbench.paths import results_root
from ratbench.results.record import is_finished

EXECUTOR_CHOICES = ("local", "ray")


app = typer.Typer(add_completion=False)


@app.command("run")
def run_cmd(
    methods: Annotated[str, typer.Option("--methods", "-m", help="Comma list or group (all, table1).")] = "rnp,ver",
    datasets: Annotated[
        str, typer.Option("--datasets", "-d", help="Comma list or group (synth, beer, hotel, all).")
    ] = "synth",
    seeds: Annotated[str, typer.Option("--seeds", help="e.g. 1-5 or 1,3.")] = "1-5",
    profile: Annotated[str, typer.Option(
        "--profile", help="quick, paper, smoke, or a path to your own profile YAML.")] = "quick",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the profile's epoch budget.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", help="Runs trained in parallel (processes).")] = 1,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (processes on this machine) or ray (a local Ray or --ray-address).")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="An existing Ray cluster, e.g. ray://head:10001 or auto.")] = None,
    runs_per_gpu: Annotated[int, typer.Option(
        "--runs-per-gpu", help="Runs sharing one GPU (Ray: fractional GPU requests).")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any setting: key=value.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip runs whose record exists.")] = True,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List which runs are finished and which would train; train nothing.")] = False,
    data_root: DataRootOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Train every (method, dataset, seed) and write results/runs/<dataset>/<method>/seed<k>-<hash>.json."""
    console = Console(stderr=True)
    if jobs < 1 or runs_per_gpu < 1:
        raise RatbenchError("--jobs and --runs-per-gpu must be at least 1.")
    if executor not in EXECUTOR_CHOICES:
        raise RatbenchError(f"--executor must be local or ray, got {executor!r}.")
    root, out = _data_root(data_root), results_root(results)
    wanted = expand_methods(methods)
    named = {t.strip() for t in methods.split(",")} & set(wanted)
    grid = api.plan(wanted, expand_datasets(datasets), parse_int_list(seeds), profile,
                    parse_overrides(set_ or []), epochs, device, root, out, resume, named=named)
    left_out = [m for m in wanted if m not in {s.method for s in grid}]
    if left_out:
        console.print(f"Left out (they do not run on this backbone): {', '.join(left_out)}.")
    todo = [s for s in grid if not (resume and is_finished(s.path))]
    console.print(f"[bold]ratbench run[/]: {len(grid)} runs ({len(grid) - len(todo)} already finished, "
                  f"{len(todo)} to train), profile {profile}, results in {out}")
    if dry_run:
        for spec in grid:
            state = "train" if spec in todo else "finished"
            console.print(f"  {state:8} {spec.label}  {spec.path}", highlight=False, markup=False)
        return
    if not todo:
        console.print("Nothing to do. Use --no-resume to retrain, or `ratbench report` to see the table.")
        return
    with grid_events(console, todo) as events:
        outcomes = api.run_grid(todo, executor, jobs, runs_per_gpu, ray_address, events)
    failures = [o for o in outcomes if o.status == "failed"]
    elsewhere = [o.label for o in outcomes if o.status == "skipped"]
    done = sum(o.status == "finished" for o in outcomes)
    console.print(f"Finished {done} of {len(todo)} runs; records in {out / 'runs'}.")
    for o in failures:
        console.print(f"[red]failed[/] {o.label}: {o.error}")
    if failures:
        console.print("Failed runs are recorded with their error; rerunning the same command retries them.")
    if elsewhere:
        console.print(f"Left to another ratbench process training them now: {', '.join(elsewhere)}.")
    console.print(f"Next: ratbench report --results {out}")
