"""How a grid's progress looks: rich bars in a terminal, one plain line per finished run otherwise (a CI log,
`> run.log`), so a long grid is never silent until its end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ratbench.executors.base import Events, Outcome
from ratbench.plan import RunSpec


def epoch_info(row: dict[str, Any]) -> str:
    return f"dev acc {row['dev_acc']:.1f} S {row['dev_S']:.1f}"


def _finished_line(spec: RunSpec, outcome: Outcome, seconds: float | None) -> str:
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    if outcome.status != "finished":
        return f"{outcome.status} {spec.label}{took}: {outcome.error}"
    m = outcome.record.metrics if outcome.record is not None else {}
    parts = [f"{k} {m[k]:.1f}" for k in ("S", "Acc", "F1") if isinstance(m.get(k), (int, float))]
    return f"finished {spec.label}{took}: " + ", ".join(parts)


class LineEvents(Events):
    """Plain lines for logs: one when a run finishes (with its headline numbers), none per epoch."""

    def __init__(self, console: Console, total: int):
        self.console, self.total, self.done = console, total, 0
        self.t0: dict[str, float] = {}

    def __enter__(self) -> LineEvents:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def started(self, spec: RunSpec) -> None:
        self.t0[spec.label] = time.perf_counter()

    def finished(self, spec: RunSpec, outcome: Outcome) -> None:
        self.done += 1
        t0 = self.t0.get(spec.label)
        seconds = time.perf_counter() - t0 if t0 is not None else None
        self.console.print(f"[{self.done}/{self.total}] {_finished_line(spec, outcome, seconds)}", highlight=False,
                           markup=False, soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)


class BarEvents(Events):
    """Rich progress bars: the grid, and one bar per run with its latest dev accuracy and sparsity."""

    def __init__(self, console: Console, specs: list[RunSpec]):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console, transient=False,
        )
        self.overall = self.progress.add_task("runs", total=len(specs), info="")
        self.tasks: dict[str, TaskID] = {}
        self.specs = specs

    def __enter__(self) -> BarEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def _task(self, spec: RunSpec) -> TaskID:
        if spec.label not in self.tasks:
            self.tasks[spec.label] = self.progress.add_task(spec.label, total=spec.config.epochs, info="queued")
        return self.tasks[spec.label]

    def started(self, spec: RunSpec) -> None:
        self.progress.update(self._task(spec), info="training")

    def epoch(self, spec: RunSpec, row: dict[str, Any]) -> None:
        self.progress.update(self._task(spec), advance=1, info=epoch_info(row))

    def finished(self, spec: RunSpec, outcome: Outcome) -> None:
        task = self._task(spec)
        self.progress.update(task, completed=spec.config.epochs, visible=outcome.status == "finished")
        self.progress.update(self.overall, advance=1)

    def note(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False)


def grid_events(console: Console, specs: list[RunSpec]) -> LineEvents | BarEvents:
    return BarEvents(console, specs) if console.is_terminal else LineEvents(console, len(specs))
