"""`ratbench check`: exit 3 when the current results regress against a committed baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ratbench.cli.common import ResultsOpt
from ratbench.data.catalog import expand_datasets
from ratbench.errors import RatbenchError
from ratbench.methods.catalog import expand_methods
from ratbench.paths import results_root
from ratbench.results.check import DEFAULT_TOLERANCE, compare, parse_tolerance, read_runs, read_summary, render

app = typer.Typer(add_completion=False)


@app.command("check")
def check_cmd(
    baseline: Annotated[Path, typer.Option("--baseline", help="The reference summary.csv (or its directory).")],
    current: Annotated[Path | None, typer.Option(
        "--current", help="The summary.csv to check (default: summary.csv in the results directory).")] = None,
    tolerance: Annotated[str, typer.Option(
        "--tolerance", help="Points per metric a cell may lose before it can count as a regression.")
    ] = DEFAULT_TOLERANCE,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the seed test.")] = 0.05,
    datasets: Annotated[str | None, typer.Option(
        "--datasets", help="Compare only these datasets/groups (e.g. a CI job that trains one aspect).")] = None,
    methods: Annotated[str | None, typer.Option("--methods", help="Compare only these methods.")] = None,
    results: ResultsOpt = None,
    exact: Annotated[bool, typer.Option(
        "--exact/--no-exact", help="Compare per seed, bit for bit, where both sides ran the same configuration "
                                   "and environment (runs.csv beside each summary.csv).")] = True,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Compare per dataset x method x metric, by one of two rules per cell.

    Exact (the same configuration, seeds and environment on both sides: device, CPU model and vector
    instructions, torch, CUDA, threads; training is bitwise reproducible there): any per-seed value that got
    worse is a regression. Measured on the quick gate (RNP and VER on synth-appearance, seeds 1-2, 2-core
    CPU): no false alarm in 10 unchanged reruns, and an RNP that lost 0.1 F1 points per seed
    fails; the detection limit is any loss.

    Statistical (anything else, e.g. another CPU): a cell is a regression when it is worse than the baseline
    by more than its tolerance AND the seeds do not explain the gap (z-test of the difference of seed means,
    standard error from both sides' seed stds, p < alpha; one-sided for Acc/P/R/F1, two-sided for S;
    tolerance alone with fewer than 2 seeds). Its detection limit is the tolerance where the seeds agree: on
    the quick gate another CPU's trajectories differ by tens of F1 points, so ratbench's own cross-machine
    gate uses f1=35 and catches a collapse toward random selection, not small losses.

    Exit 0: all hold; 3: a regression; 1: the files do not match up (missing cells are listed)."""
    if fmt not in ("table", "json"):
        raise RatbenchError(f"Unknown --format {fmt!r}; use table or json.")
    tol = parse_tolerance(tolerance)
    base_path = baseline / "summary.csv" if baseline.is_dir() else baseline
    cur_path = current if current is not None else results_root(results) / "summary.csv"
    if cur_path.is_dir():
        cur_path = cur_path / "summary.csv"
    base, cur = read_summary(base_path, "baseline"), read_summary(cur_path, "current")
    if datasets:
        keep = expand_datasets(datasets)
        base, cur = base[base["dataset"].isin(keep)], cur[cur["dataset"].isin(keep)]
    if methods:
        keep = expand_methods(methods)
        base, cur = base[base["method"].isin(keep)], cur[cur["method"].isin(keep)]
    base_runs = read_runs(base_path) if exact else None
    cur_runs = read_runs(cur_path) if exact else None
    result = compare(base, cur, tol, alpha, base_runs, cur_runs)
    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        render(result, Console(soft_wrap=True))
    raise typer.Exit(result.exit_code)
