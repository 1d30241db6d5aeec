"""Runs as Ray tasks, on this machine or across a cluster (`--executor ray`).

Workers write records into the results directory when they can see it (a shared file system) and always
ship the record and checkpoint back, so the driver writes whatever is missing on its side; resume then works
exactly as with the local executor. Corpora must be present under the data root on every node (the built-in
corpora are generated there on first use).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from ratbench.atomic import write_bytes
from ratbench.errors import RatbenchError
from ratbench.executors.base import Events, Executor, Outcome, Work, outcome_of
from ratbench.plan import RunSpec
from ratbench.results.record import is_finished, write_record
from ratbench.results.store import checkpoint_path


def _task(spec: RunSpec, work: Work) -> dict[str, Any]:
    """Runs inside a Ray worker: one CPU thread unless the profile says otherwise."""
    local = dataclasses.replace(spec, threads=spec.config.num_threads or 1)
    if not Path(spec.results).exists():  # results directory not shared with this node
        local = dataclasses.replace(local, results=tempfile.mkdtemp(prefix="ratbench-"))
    record = work(local, [])
    ckpt = checkpoint_path(local.path)
    return {"outcome": outcome_of(spec, record), "checkpoint": ckpt.read_bytes() if ckpt.exists() else None}


class RayExecutor(Executor):
    name = "ray"

    def run(self, specs: list[RunSpec], work: Work, events: Events) -> list[Outcome]:
        try:
            import ray
        except ImportError:
            raise RatbenchError("--executor ray needs Ray, which is an optional extra: pip install 'ratbench[ray]'. "
                                "Or use the default local executor (--jobs N).") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        events.note(f"Submitting {len(specs)} runs to Ray ({self.address or 'a local instance'}).")
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        pending = {}
        for spec in specs:
            gpus = 1.0 / max(self.runs_per_gpu, 1) if has_gpu and spec.device != "cpu" else 0
            ref = ray.remote(_task).options(num_cpus=1, num_gpus=gpus, max_retries=0).remote(spec, work)
            pending[ref] = spec
            events.started(spec)
        outcomes = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as err:  # the worker died (node lost, out of memory): retried on the next run
                    outcome = Outcome(spec.label, "failed", f"Ray task failed: {err}")
                else:
                    outcome = res["outcome"]
                    if outcome.status == "finished" and not is_finished(spec.path):  # not shared: write it here
                        if res["checkpoint"] is not None:
                            write_bytes(checkpoint_path(spec.path), res["checkpoint"])
                        write_record(spec.path, outcome.record)
                outcomes.append(outcome)
                events.finished(spec, outcome)
        return outcomes
