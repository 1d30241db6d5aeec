"""Running a grid on Ray: each run is one Ray task, on this machine or across a cluster.

Workers write records into the results directory when they can see it (a shared file system) and always ship
the record and checkpoint back, so the driver writes whatever is missing on its side; resume then works
exactly as with the local executor. Corpora must be present under the data root on every node (the synthetic
corpus is generated there on first use).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from ratbench.errors import RatbenchError


def _task(job: Any) -> dict[str, Any]:
    """Runs inside a Ray worker."""
    import torch

    from ratbench.results.checkpoint import checkpoint_path
    from ratbench.runner import run_job

    torch.set_num_threads(job.config.num_threads or 1)  # one CPU per task unless the profile says otherwise
    local = job
    if not Path(job.results).exists():  # results directory not shared with this node
        local = dataclasses.replace(job, results=tempfile.mkdtemp(prefix="ratbench-"))
    record = run_job(local)
    ckpt = checkpoint_path(local.path)
    return {"label": job.label, "status": record["status"], "error": record.get("error"), "record": record,
            "checkpoint": ckpt.read_bytes() if ckpt.exists() else None}


def run_ray(todo: list, address: str | None, runs_per_gpu: int, on_done: Any = None) -> list[tuple[str, str, str]]:
    """Submit every job as a Ray task (fractional GPUs: 1/runs_per_gpu when the cluster has GPUs and the run
    may use one); returns (label, status, error) of the runs that did not finish."""
    try:
        import ray
    except ImportError:
        raise RatbenchError("--executor ray needs Ray, which is an optional extra: pip install 'ratbench[ray]'. "
                            "Or use the default local executor (--jobs N).") from None
    from ratbench.atomic import write_bytes
    from ratbench.results.checkpoint import checkpoint_path
    from ratbench.results.record import is_finished, write_record

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    pending = {}
    for job in todo:
        gpus = 1.0 / max(runs_per_gpu, 1) if has_gpu and job.device != "cpu" else 0
        ref = ray.remote(_task).options(num_cpus=1, num_gpus=gpus, max_retries=0).remote(job)
        pending[ref] = job
    outcomes = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job = pending.pop(ref)
            try:
                res = ray.get(ref)
            except Exception as err:  # the worker died (node lost, out of memory): the run is retried next time
                outcomes.append((job.label, "failed", f"Ray task failed: {err}"))
                continue
            if res["status"] == "finished" and not is_finished(job.path):  # not shared: the driver writes it
                if res["checkpoint"] is not None:
                    write_bytes(checkpoint_path(job.path), res["checkpoint"])
                write_record(job.path, res["record"])
            if res["status"] != "finished":
                outcomes.append((job.label, res["status"], res.get("error") or "unknown error"))
            if on_done:
                on_done(job, res["status"])
    return outcomes
