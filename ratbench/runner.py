"""A grid of runs (datasets x methods x seeds): resume, failure isolation, local parallelism.

Each job trains one model and writes one RunRecord atomically. Finished records are skipped on resume;
a job that raises (NaN loss, out of memory, bad data) is written as a failed record and the grid goes on.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ratbench.config import RunConfig, config_hash, to_dict


@dataclass
class Job:
    dataset: str
    method: str
    seed: int
    profile: str
    config: RunConfig
    config_hash: str
    device: str
    data_root: str
    results: str
    seeds_requested: list[int]
    resume: bool = True

    @property
    def path(self) -> Path:
        from ratbench.results.record import record_path

        return record_path(Path(self.results), self.dataset, self.method, self.seed, self.config_hash)

    @property
    def label(self) -> str:
        return f"{self.method} {self.dataset} s{self.seed}"


def plan(
    methods: list[str],
    datasets: list[str],
    seeds: list[int],
    profile: str,
    overrides: dict[str, Any],
    epochs: int | None,
    device: str,
    data_root: Path,
    results: Path,
    resume: bool = True,
) -> list[Job]:
    from ratbench.config import check_override_keys, resolve
    from ratbench.methods import METHODS

    defaults = {m: dict(METHODS.get(m).defaults) for m in methods}
    check_override_keys(overrides, defaults)
    jobs = []
    for dataset in datasets:
        for method in methods:
            cfg = resolve(profile, method, dataset, defaults[method], overrides, epochs)
            h = config_hash(cfg, method, dataset)
            for seed in seeds:
                jobs.append(Job(dataset, method, seed, profile, cfg, h, device, str(data_root), str(results),
                                list(seeds), resume))
    return jobs


def waves(jobs: list[Job]) -> list[list[Job]]:
    """Jobs in the order they may run: a method that reads other methods' records (`runs_after`, e.g. post-hoc
    explainers matching RNP's sparsity) waits until every job of those methods in the grid has finished."""
    from ratbench.methods import METHODS

    present = {j.method for j in jobs}
    first = [j for j in jobs if not set(METHODS.get(j.method).runs_after) & present]
    later = [j for j in jobs if set(METHODS.get(j.method).runs_after) & present]
    return [w for w in (first, later) if w]


def spread_over_gpus(jobs: list[Job], n_gpus: int) -> list[Job]:
    """Jobs that may use CUDA (`auto`, `cuda`) get cuda:0..n-1 in turn; explicit devices and CPU are kept."""
    import dataclasses

    if n_gpus < 1:
        return jobs
    out, k = [], 0
    for job in jobs:
        if job.device in ("auto", "cuda"):
            job = dataclasses.replace(job, device=f"cuda:{k % n_gpus}")
            k += 1
        out.append(job)
    return out


@functools.lru_cache(maxsize=4)
def _corpus(name: str, root: str):
    from ratbench.data.prepare import load_corpus

    return load_corpus(name, Path(root))


def run_job(job: Job, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train one model and write its record; never raises for a failed run (it is recorded instead).

    Returns a record with status `skipped` when another process holds the run's lock, or the existing record
    when another process finished the run while this one waited in the queue.
    """
    from ratbench.results.lock import run_lock
    from ratbench.results.record import is_finished, load_record

    with run_lock(job.path) as acquired:
        if not acquired:
            return {"status": "skipped", "error": "being trained by another ratbench process"}
        if job.resume and is_finished(job.path):
            return load_record(job.path)
        return _train_and_record(job, on_epoch)


def _train_and_record(job: Job, on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    import torch

    from ratbench.engine import Engine, resolve_device
    from ratbench.methods import METHODS
    from ratbench.results.checkpoint import checkpoint_path, save_checkpoint
    from ratbench.results.record import SCHEMA_VERSION, versions, write_record

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": "failed",
        "dataset": job.dataset,
        "method": job.method,
        "seed": job.seed,
        "seeds_requested": job.seeds_requested,
        "profile": job.profile,
        "config": to_dict(job.config),
        "config_hash": job.config_hash,
        "versions": versions(),
        "device": job.device,
        "started": started,
    }
    try:
        device = resolve_device(job.device)
        record["device"] = str(device) if device.type != "cuda" else torch.cuda.get_device_name(device)
        if job.config.num_threads:
            torch.set_num_threads(job.config.num_threads)
        corpus = _corpus(job.dataset, job.data_root)
        record["data"] = corpus.files
        method = METHODS.get(job.method)(job.config)
        context = {"results": job.results, "dataset": job.dataset, "profile": job.profile}
        engine = Engine(method, corpus, job.config, job.seed, device, on_epoch=on_epoch, context=context)
        result = engine.fit()
        save_checkpoint(checkpoint_path(job.path), engine.model_state())
        record.update(
            status="finished",
            selected_epoch=result.selected_epoch,
            selection=result.selection,
            final_alpha=result.final_alpha,
            metrics=result.metrics,
            checkpoint=checkpoint_path(job.path).name,
            curves=result.curves,
            n_examples={"train": len(engine.train), "dev": len(engine.dev), "test": len(engine.test)},
        )
        if method.notes:
            record["method_notes"] = method.notes
    except Exception as err:  # recorded, the grid goes on
        if isinstance(err, KeyboardInterrupt):
            raise
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
    record["wall_seconds"] = time.perf_counter() - t0
    write_record(job.path, record)
    return record
