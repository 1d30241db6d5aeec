"""`ratbench run`: train a grid of methods x datasets x seeds and write one RunRecord per run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer

from ratbench.cli.common import DataRootOpt, ResultsOpt, parse_int_list

_PROGRESS = None  # in a worker process: the queue of epoch rows to the parent's progress display


def _worker(job) -> dict:
    """Process-pool entry: run one job, streaming epoch rows to the parent's progress display."""
    import os

    import torch

    from ratbench.runner import run_job

    if not job.config.num_threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("RATBENCH_JOBS", "1"))))
    record = run_job(job, on_epoch=lambda row: _PROGRESS.put((job.label, row)))
    return {"status": record["status"], "error": record.get("error"), "label": job.label}


def _init_worker(parent: int, progress) -> None:
    """Worker initializer: keep the progress queue (handed over at spawn, so no manager process is needed),
    and on Linux ask the kernel to send this worker SIGTERM when the `ratbench run` process dies, even by
    kill -9, so no orphaned worker keeps training (and holding the CPU) after its grid is gone."""
    import os
    import sys

    global _PROGRESS
    _PROGRESS = progress
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While open, SIGTERM (`kill`, a job scheduler's timeout) unwinds like Ctrl-C, so the workers are stopped.
    Signals can only be set on the main thread; elsewhere this does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
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
        data_root: DataRootOpt = None,
        results: ResultsOpt = None,
    ) -> None:
        """Train every (method, dataset, seed) and write results/runs/<dataset>/<method>/seed<k>-<hash>.json."""
        from rich.console import Console

        from ratbench.config import parse_overrides
        from ratbench.data.specs import expand_datasets
        from ratbench.errors import RatbenchError
        from ratbench.methods import expand_methods
        from ratbench.paths import data_root as _data_root
        from ratbench.paths import results_root
        from ratbench.results.record import is_finished
        from ratbench.runner import plan

        console = Console(stderr=True)
        if jobs < 1 or runs_per_gpu < 1:
            raise RatbenchError("--jobs and --runs-per-gpu must be at least 1.")
        if executor not in ("local", "ray"):
            raise RatbenchError(f"--executor must be local or ray, got {executor!r}.")
        root = _data_root(data_root)
        out = results_root(results)
        grid = plan(expand_methods(methods), expand_datasets(datasets), parse_int_list(seeds), profile,
                    parse_overrides(set_ or []), epochs, device, root, out, resume)
        todo = [j for j in grid if not (resume and is_finished(j.path))]
        skipped = len(grid) - len(todo)
        console.print(f"[bold]ratbench run[/]: {len(grid)} runs ({skipped} already finished, {len(todo)} to train), "
                      f"profile {profile}, results in {out}")
        if not todo:
            console.print("Nothing to do. Use --no-resume to retrain, or `ratbench report` to see the table.")
            return
        outcomes = execute(todo, root, console, jobs, executor, ray_address, runs_per_gpu)
        failures = [(label, err) for label, status, err in outcomes if status == "failed"]
        elsewhere = [label for label, status, _ in outcomes if status == "skipped"]
        done = len(todo) - len(outcomes)
        console.print(f"Finished {done} of {len(todo)} runs; records in {out / 'runs'}.")
        for label, error in failures:
            console.print(f"[red]failed[/] {label}: {error}")
        if failures:
            console.print("Failed runs are recorded with their error; rerunning the same command retries them.")
        if elsewhere:
            console.print(f"Left to another ratbench process training them now: {', '.join(elsewhere)}.")
        console.print(f"Next: ratbench report --results {out}")


def execute(todo: list, root, console, jobs: int = 1, executor: str = "local", ray_address: str | None = None,
            runs_per_gpu: int = 1) -> list[tuple[str, str, str]]:
    """Train `todo` in waves (`runner.waves`) on the chosen executor; (label, status, error) of every run that
    did not finish. Shared by `run` and `diagnose`."""
    from ratbench.data.prepare import load_corpus
    from ratbench.runner import waves

    # Prepare every corpus once in this process, so data errors surface before any training starts
    # and worker processes find the tokenised cache ready.
    for name in dict.fromkeys(j.dataset for j in todo):
        load_corpus(name, root)
    outcomes = []
    for wave in waves(todo):
        if executor == "ray":
            from ratbench.executors import run_ray

            console.print(f"Submitting {len(wave)} runs to Ray ({ray_address or 'a local instance'}).")
            outcomes += run_ray(wave, ray_address, runs_per_gpu,
                                on_done=lambda job, status: console.print(f"{status} {job.label}"))
        elif jobs > 1:
            outcomes += _run_local(*_on_gpus(wave, jobs, runs_per_gpu, console), console)
        else:
            outcomes += _run_serial(wave, console)
    return outcomes


def _on_gpus(wave: list, jobs: int, runs_per_gpu: int, console) -> tuple[list, int]:
    """With GPUs visible: runs spread round-robin over them, at most runs_per_gpu at once per GPU."""
    import torch

    from ratbench.runner import spread_over_gpus

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0 or not any(j.device in ("auto", "cuda") for j in wave):
        return wave, jobs
    workers = min(jobs, n * runs_per_gpu)
    console.print(f"{n} GPU(s): {workers} runs at a time, up to {runs_per_gpu} per GPU.")
    return spread_over_gpus(wave, n), workers


def _progress(console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=console, transient=False,
    )


def _epoch_info(row: dict) -> str:
    return f"dev acc {row['dev_acc']:.1f} S {row['dev_S']:.1f}"


def _run_serial(todo, console) -> list[tuple[str, str, str]]:
    """Runs one after another; returns (label, status, error) of every run that did not finish here."""
    from ratbench.runner import run_job

    outcomes = []
    with _progress(console) as progress:
        overall = progress.add_task("runs", total=len(todo), info="")
        for i, job in enumerate(todo, 1):
            task = progress.add_task(f"[{i}/{len(todo)}] {job.label}", total=job.config.epochs, info="")

            def on_epoch(row, task=task):
                progress.update(task, advance=1, info=_epoch_info(row))

            record = run_job(job, on_epoch=on_epoch)
            progress.update(task, completed=job.config.epochs, visible=record["status"] == "finished")
            if record["status"] != "finished":
                outcomes.append((job.label, record["status"], record.get("error") or "unknown error"))
            progress.update(overall, advance=1)
    return outcomes


def _run_local(todo, jobs: int, console) -> list[tuple[str, str, str]]:
    import multiprocessing as mp
    import os
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor

    os.environ["RATBENCH_JOBS"] = str(jobs)
    ctx = mp.get_context("spawn")
    outcomes = []
    q = ctx.Queue()
    with _progress(console) as progress:
        overall = progress.add_task("runs", total=len(todo), info="")
        tasks = {j.label: progress.add_task(j.label, total=j.config.epochs, info="queued") for j in todo}
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(os.getpid(), q))
        with _sigterm_unwinds():
            try:
                futures = [pool.submit(_worker, j) for j in todo]
                pending = set(futures)
                while pending:
                    try:
                        label, row = q.get(timeout=0.5)
                        progress.update(tasks[label], advance=1, info=_epoch_info(row))
                    except queue_mod.Empty:
                        pass
                    for fut in [f for f in pending if f.done()]:
                        pending.discard(fut)
                        res = fut.result()
                        progress.update(overall, advance=1)
                        if res["status"] != "finished":
                            outcomes.append((res["label"], res["status"], res.get("error") or "unknown error"))
            except BaseException:
                # Ctrl-C or an error here: stop the workers now instead of waiting for their runs to finish;
                # finished records are already on disk and a rerun resumes from them.
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        pool.shutdown()  # workers flush their queued rows as they exit
        while True:
            try:
                label, row = q.get(timeout=0.1)
            except queue_mod.Empty:
                break
            progress.update(tasks[label], advance=1, info=_epoch_info(row))
    return outcomes
