"""The executor protocol: train these specs with this work function, report progress as events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ratbench.engine.callbacks import Callback
from ratbench.plan import RunSpec
from ratbench.registry import Registry
from ratbench.results.record import RunRecord

# api.train: trains one spec with extra callbacks; None when another process holds the run's lock
Work = Callable[[RunSpec, Sequence[Callback]], RunRecord | None]


@dataclass
class Outcome:
    label: str
    status: str  # finished | failed | skipped (another process is training it)
    error: str | None = None
    record: RunRecord | None = None


def outcome_of(spec: RunSpec, record: RunRecord | None) -> Outcome:
    if record is None:
        return Outcome(spec.label, "skipped", "being trained by another ratbench process")
    return Outcome(spec.label, record.status, record.error, record)


class Events:
    """What a grid tells its caller (a progress display); every method is optional."""

    def started(self, spec: RunSpec) -> None: ...

    def epoch(self, spec: RunSpec, row: dict[str, Any]) -> None: ...

    def finished(self, spec: RunSpec, outcome: Outcome) -> None: ...

    def note(self, text: str) -> None: ...


class EpochEvents(Callback):
    """Forwards each epoch's curve row to `send(row)` (the executor routes it to `Events.epoch`)."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self.send = send

    def on_epoch_end(self, engine: Any, row: dict[str, Any]) -> None:
        self.send(row)


class Executor:
    name: ClassVar[str] = ""

    def __init__(self, jobs: int = 1, runs_per_gpu: int = 1, address: str | None = None):
        self.jobs = jobs
        self.runs_per_gpu = runs_per_gpu
        self.address = address

    def run(self, specs: list[RunSpec], work: Work, events: Events) -> list[Outcome]:
        """Train every spec; one Outcome per spec, in any order."""
        raise NotImplementedError


EXECUTORS: Registry[type[Executor]] = Registry("executor", base=Executor)
for _name in ("serial", "local", "ray"):
    EXECUTORS.add_lazy(_name, f"ratbench.executors.{_name}:{_name.title()}Executor")
