"""Runs one after another in this process (`--jobs 1`)."""

from __future__ import annotations

from ratbench.executors.base import EpochEvents, Events, Executor, Outcome, Work, outcome_of
from ratbench.plan import RunSpec


class SerialExecutor(Executor):
    name = "serial"

    def run(self, specs: list[RunSpec], work: Work, events: Events) -> list[Outcome]:
        outcomes = []
        for spec in specs:
            events.started(spec)
            record = work(spec, [EpochEvents(lambda row, spec=spec: events.epoch(spec, row))])
            outcome = outcome_of(spec, record)
            events.finished(spec, outcome)
            outcomes.append(outcome)
        return outcomes
