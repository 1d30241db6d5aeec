"""Runs in parallel on this machine: worker processes this executor starts, owns and stops (`--jobs N`).

Each worker takes specs from a task queue and reports on a result queue (started, one row per epoch,
finished). With GPUs visible, runs that may use CUDA are spread round-robin over them (`runs_per_gpu` at a
time per GPU); on CPU the cores are split between the workers (the thread budget travels in the spec).
Ctrl-C, SIGTERM or an error in the parent terminates the workers at once; on Linux a worker also dies with
its parent even after kill -9 (PR_SET_PDEATHSIG). Finished records are on disk already, so a rerun resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ratbench.executors.base import EpochEvents, Events, Executor, Outcome, Work, outcome_of
from ratbench.plan import RunSpec, spread_over_gpus

POLL_SECONDS = 0.5


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGTERM this worker when its parent dies (Linux), so no orphan keeps training."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _worker_main(parent: int, worker: int, tasks: Any, results: Any, work: Work) -> None:
    _die_with_parent(parent)
    while True:
        spec = tasks.get()
        if spec is None:
            return
        results.put(("started", worker, spec.label, None))
        record = work(spec, [EpochEvents(lambda row, label=spec.label: results.put(("epoch", worker, label, row)))])
        results.put(("finished", worker, spec.label, outcome_of(spec, record)))


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While open, SIGTERM (`kill`, a scheduler's timeout) unwinds like Ctrl-C, so the workers are stopped.
    Signals can only be set on the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _gpu_count() -> int:
    import torch  # only to count GPUs; workers import it anyway

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class LocalExecutor(Executor):
    name = "local"

    def placed(self, specs: list[RunSpec], events: Events) -> tuple[list[RunSpec], int]:
        """(specs with devices and thread budgets set, number of workers)."""
        n_gpus = _gpu_count()
        if n_gpus and any(s.device in ("auto", "cuda") for s in specs):
            workers = min(self.jobs, n_gpus * self.runs_per_gpu)
            events.note(f"{n_gpus} GPU(s): {workers} runs at a time, up to {self.runs_per_gpu} per GPU.")
            return spread_over_gpus(specs, n_gpus), workers
        budget = max(1, (os.cpu_count() or 1) // self.jobs)
        return [s if s.config.num_threads else dataclasses.replace(s, threads=budget) for s in specs], self.jobs

    def run(self, specs: list[RunSpec], work: Work, events: Events) -> list[Outcome]:
        specs, n_workers = self.placed(specs, events)
        n_workers = max(1, min(n_workers, len(specs)))
        ctx = mp.get_context("spawn")
        tasks, results = ctx.Queue(), ctx.Queue()
        for spec in specs:
            tasks.put(spec)
        for _ in range(n_workers):
            tasks.put(None)
        by_label = {s.label: s for s in specs}
        procs = [ctx.Process(target=_worker_main, args=(os.getpid(), i, tasks, results, work), daemon=True)
                 for i in range(n_workers)]
        outcomes: dict[str, Outcome] = {}
        running: dict[int, str] = {}  # worker -> label of the run it is training
        with sigterm_unwinds():
            try:
                for p in procs:
                    p.start()
                idle_dead = 0
                while len(outcomes) < len(specs):
                    try:
                        kind, worker, label, payload = results.get(timeout=POLL_SECONDS)
                    except queue_mod.Empty:
                        # a message put just before its worker exited may still be in flight: give up on the
                        # remaining runs only after two empty polls with every worker gone
                        idle_dead = idle_dead + 1 if not any(p.is_alive() for p in procs) else 0
                        self._reap(procs, running, outcomes, by_label, events, give_up=idle_dead >= 2)
                        continue
                    if kind == "started":
                        running[worker] = label
                        events.started(by_label[label])
                    elif kind == "epoch":
                        events.epoch(by_label[label], payload)
                    else:
                        running.pop(worker, None)
                        outcomes[label] = payload
                        events.finished(by_label[label], payload)
            except BaseException:
                # Ctrl-C or an error here: stop the workers now instead of waiting for their runs to finish
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                raise
        for p in procs:
            p.join()
        return [outcomes[s.label] for s in specs]

    @staticmethod
    def _reap(procs: list[Any], running: dict[int, str], outcomes: dict[str, Outcome],
              by_label: dict[str, RunSpec], events: Events, give_up: bool) -> None:
        """A worker that died (out of memory, killed) fails its run; with no worker left, every run left fails."""
        for i, p in enumerate(procs):
            if p.exitcode not in (None, 0) and i in running:
                label = running.pop(i)
                outcomes[label] = Outcome(label, "failed", f"the worker process died (exit code {p.exitcode})")
                events.finished(by_label[label], outcomes[label])
        if give_up:
            for label, spec in by_label.items():
                if label not in outcomes:
                    outcomes[label] = Outcome(label, "failed", "no worker process left to train it")
                    events.finished(spec, outcomes[label])
