"""The composition root: the one place that plans a grid, builds a run's parts, trains a run into a record,
restores a finished run, runs a grid on an executor and runs a probe.

The CLI verbs, the executors' workers, the benchmarks and the tests all go through these functions; nothing
else constructs an Engine from a dataset name. Layering (docs/architecture.md): cli -> api -> {executors,
probes, results} -> engine -> {methods, models, data, metrics}.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ratbench import __version__
from ratbench.atomic import write_text
from ratbench.config import RunConfig, config_of, to_dict
from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import Corpus
from ratbench.data.pieces import load_piece_corpus, resolve_encoder
from ratbench.data.prepare import load_corpus
from ratbench.engine import Callback, Engine, limit_split, resolve_device
from ratbench.errors import RatbenchError
from ratbench.executors.base import EXECUTORS, Events, Outcome
from ratbench.methods.base import Method
from ratbench.methods.catalog import method_class
from ratbench.models.backbones import gru_backbone, transformer_backbone
from ratbench.models.state import StateMismatch, load_trainable_state
from ratbench.models.transformer import TransformerEncoder, load_encoder
from ratbench.plan import RunSpec, plan, waves
from ratbench.probes.base import Probe, ProbeContext, ProbeRun
from ratbench.probes.catalog import probe_class
from ratbench.protocol import as_record, protocol
from ratbench.results.lock import run_lock
from ratbench.results.record import RunRecord, is_finished, load_record, versions, write_record
from ratbench.results.store import checkpoint_path, load_checkpoint, save_checkpoint

__all__ = ["Diagnosis", "ProbePlan", "Restored", "build", "corpus", "diagnose", "plan", "plan_probe", "restore",
           "run_grid", "train"]


# -- data ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def corpus(dataset: str, data_root: str, vectors: str = "default", splits: str = "published") -> Corpus:
    """The tokenised corpus (built once per data root and cached on disk; kept in memory per process)."""
    return load_corpus(dataset, Path(data_root), vectors, splits)


@functools.lru_cache(maxsize=4)
def piece_corpus(dataset: str, data_root: str, encoder: str, splits: str, max_len: int, max_query_len: int,
                 mlm_steps: int) -> Corpus:
    """The sub-word corpus of the transformer backbone (data/pieces.py), for one encoder."""
    resolved = resolve_encoder(dataset, Path(data_root), encoder, splits, mlm_steps)
    return load_piece_corpus(dataset, Path(data_root), resolved, splits, max_len, max_query_len)


def encoder_name(config: RunConfig, dataset: str) -> str:
    return DATASETS.get(dataset).encoder if config.encoder == "default" else config.encoder


def corpus_of(config: RunConfig, dataset: str, data_root: str) -> Corpus:
    if config.backbone == "transformer":
        return piece_corpus(dataset, str(data_root), encoder_name(config, dataset), config.splits, config.max_len,
                            config.max_query_len, config.local_mlm_steps)
    return corpus(dataset, str(data_root), config.vectors, config.splits)


@functools.lru_cache(maxsize=2)
def pretrained(encoder: str, gradient_checkpointing: bool) -> TransformerEncoder:
    """A loaded encoder (cached per process; every run deep-copies it for its players)."""
    return load_encoder(encoder, gradient_checkpointing=gradient_checkpointing)


def encoder_loader(config: RunConfig) -> Callable[[str], TransformerEncoder]:
    """`context["load_encoder"](spec)`: a second pretrained encoder for a method that builds one besides the run's
    backbone (REKD's student encoder), a hub name, a directory or `minilm`, loaded as the backbone's is."""
    return functools.partial(pretrained, gradient_checkpointing=config.gradient_checkpointing)


def backbone_of(config: RunConfig, data: Corpus) -> Any:
    if config.backbone == "transformer":
        return transformer_backbone(data, pretrained(data.encoder, config.gradient_checkpointing))
    return gru_backbone(data, config)


def prepare_data(specs: Sequence[RunSpec]) -> None:
    """Build every corpus once in this process, so data errors surface before any training starts and worker
    processes find the tokenised cache ready."""
    for spec in {(s.dataset, s.data_root, s.config.vectors, s.config.splits): s for s in specs}.values():
        corpus_of(spec.config, spec.dataset, spec.data_root)


# -- one run -----------------------------------------------------------------------------------------------
def _dependency_records(spec: RunSpec) -> dict[str, dict[str, Any]]:
    """The finished records this run reads, as plain facts for the method (methods never read files): the record's
    `path` and test `metrics`, and `restore(device="cpu")`, which rebuilds that run's prepared method and trained
    model (a `Restored`, selected epoch, eval mode) for methods that read another run's model (FRESH's explainer,
    a distillation teacher). Nothing is restored unless the method calls it."""
    out = {}
    for method, path in spec.dependencies.items():
        if is_finished(Path(path)):
            out[method] = {"path": path, "metrics": load_record(Path(path)).metrics,
                           "restore": functools.partial(restore, Path(path), Path(spec.data_root))}
    return out


def probe_hooks(config: RunConfig) -> list[Callback]:
    """The training hooks of the probes named in the `probes` setting."""
    names = [n.strip() for n in config.probes.split(",") if n.strip()]
    hooks = []
    for name in names:
        cls: type[Probe] = probe_class(name)
        if cls.hook is None:
            raise RatbenchError(f"The probe {name!r} has no training hook; it reads finished runs (run "
                                f"`ratbench diagnose --probe {name}` instead of --set probes={name}).")
        hooks.append(cls.hook())
    return hooks


def build(spec: RunSpec, callbacks: Sequence[Callback] = ()) -> Engine:
    """A run's parts, wired: corpus, method, model and optimisers inside an Engine ready to `fit`."""
    device = resolve_device(spec.device)
    method = method_class(spec.method)(spec.config)
    data = corpus_of(spec.config, spec.dataset, spec.data_root)
    context = {"dataset": spec.dataset, "profile": spec.profile, "records": _dependency_records(spec),
               "load_encoder": encoder_loader(spec.config)}
    return Engine(method, data, spec.config, spec.seed, device, callbacks=[*probe_hooks(spec.config), *callbacks],
                  context=context, backbone=backbone_of(spec.config, data))


def train(spec: RunSpec, callbacks: Sequence[Callback] = ()) -> RunRecord | None:
    """Train one run and write its record and checkpoint; never raises for a failed run (it is recorded).

    Returns None when another process holds the run's lock, and the existing record when another process
    finished the run while this one waited in the queue."""
    with run_lock(spec.path) as acquired:
        if not acquired:
            return None
        if spec.resume and is_finished(spec.path):
            return load_record(spec.path)
        return _train_and_record(spec, callbacks)


def _train_and_record(spec: RunSpec, callbacks: Sequence[Callback]) -> RunRecord:
    t0 = time.perf_counter()
    threads = spec.config.num_threads or spec.threads
    if threads:
        torch.set_num_threads(threads)
    record = RunRecord(dataset=spec.dataset, method=spec.method, seed=spec.seed, profile=spec.profile,
                       config=to_dict(spec.config), config_hash=spec.config_hash, status="failed",
                       seeds_requested=list(spec.seeds_requested), versions=versions(), device=spec.device,
                       started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    try:
        engine = build(spec, callbacks)
        device = engine.device
        record.device = str(device) if device.type != "cuda" else torch.cuda.get_device_name(device)
        data = corpus_of(spec.config, spec.dataset, spec.data_root)
        record.data, record.vectors, record.leakage = data.files, data.vectors_name or None, data.leakage
        record.backbone = {**engine.backbone.describe(), **({"pieces": data.pieces} if data.pieces else {})}
        if data.encoder:  # the encoder as the user named it (`local`, `minilm`, a hub name), for table labels
            record.backbone["encoder"] = encoder_name(spec.config, spec.dataset)
        record.protocol = as_record(protocol(spec.config, engine.method.info.calibrates_alpha))
        record.label_leak = engine.method.label_leak()
        result = engine.fit()
        save_checkpoint(checkpoint_path(spec.path), engine.model_state())
        record.status = "finished"
        record.selected_epoch, record.selection = result.selected_epoch, result.selection
        record.final_alpha, record.metrics, record.curves = result.final_alpha, result.metrics, result.curves
        record.selections, record.variants = result.selections, result.variants
        record.checkpoint = checkpoint_path(spec.path).name
        record.n_examples = {"train": len(engine.train), "dev": len(engine.dev), "test": len(engine.test)}
        record.method_notes = dict(engine.method.notes)
    except Exception as err:  # recorded, the grid goes on
        record.error = f"{type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()
    record.wall_seconds = time.perf_counter() - t0
    write_record(spec.path, record)
    return record


# -- a finished run ------------------------------------------------------------------------------------------
@dataclass
class Restored:
    path: Path
    record: RunRecord
    method: Method
    model: torch.nn.Module  # in eval mode, with the selected epoch's weights
    corpus: Corpus


def restore(record_file: Path, data_root: Path, device: str = "cpu") -> Restored:
    """A finished run's method, model (selected epoch, eval mode) and corpus, from its record and checkpoint."""
    record = load_record(record_file)
    config = config_of(record.config)
    method = method_class(record.method)(config)
    data = corpus_of(config, record.dataset, str(data_root))
    context = {"seed": record.seed, "dataset": record.dataset, "profile": record.profile,
               "own_notes": record.method_notes, "load_encoder": encoder_loader(config)}
    method.prepare(data, limit_split(data.train, config.train_limit), context)
    model = method.build_model(backbone_of(config, data))
    try:
        load_trainable_state(model, load_checkpoint(record_file, device))
    except StateMismatch as err:
        raise RatbenchError(f"The checkpoint {checkpoint_path(record_file)} does not match the {record.method} model "
                            f"of this ratbench version ({err}); retrain the run with --no-resume.") from None
    if record.final_alpha is not None:
        method.alpha = float(record.final_alpha)
    return Restored(Path(record_file), record, method, model.to(device).eval(), data)


# -- a grid ------------------------------------------------------------------------------------------------
def executor_name(executor: str, jobs: int) -> str:
    """`--executor local` with one job is the serial executor (no worker processes)."""
    return "serial" if executor == "local" and jobs == 1 else executor


def run_grid(specs: Sequence[RunSpec], executor: str = "local", jobs: int = 1, runs_per_gpu: int = 1,
             address: str | None = None, events: Events | None = None) -> list[Outcome]:
    """Train `specs` wave by wave (a run after the runs it reads) on the chosen executor."""
    events = events or Events()
    prepare_data(specs)
    runner = EXECUTORS.get(executor_name(executor, jobs))(jobs=jobs, runs_per_gpu=runs_per_gpu, address=address)
    outcomes: list[Outcome] = []
    for wave in waves(list(specs)):
        outcomes += runner.run(wave, train, events)
    return outcomes


# -- a probe -------------------------------------------------------------------------------------------------
@dataclass
class Diagnosis:
    probe: Probe
    frame: pd.DataFrame
    summary: pd.DataFrame
    folder: Path
    png: Path
    trained: list[Outcome]


def probe_specs(probe: Probe, ctx: ProbeContext) -> list[RunSpec]:
    specs: list[RunSpec] = []
    for req in probe.requests(ctx):
        specs += plan(req.methods, req.datasets, req.seeds, ctx.profile, req.overrides, ctx.epochs, ctx.device,
                      ctx.data_root, ctx.results)
    return specs


def runs_to_train(probe: Probe, specs: list[RunSpec], retrain: bool) -> list[RunSpec]:
    """Specs whose finished record lacks what the probe needs (retrained with its hook on, replacing it)."""
    todo = []
    for spec in specs:
        if not retrain and is_finished(spec.path) and probe.usable(load_record(spec.path),
                                                                   checkpoint_path(spec.path).exists()):
            continue
        todo.append(dataclasses.replace(spec, resume=False))
    return todo


@dataclass
class ProbePlan:
    probe: Probe
    specs: list[RunSpec]  # every run the probe reads
    todo: list[RunSpec]  # those to (re)train first


def plan_probe(probe_name: str, ctx: ProbeContext, retrain: bool = False) -> ProbePlan:
    probe: Probe = probe_class(probe_name)()
    specs = probe_specs(probe, ctx)
    return ProbePlan(probe, specs, runs_to_train(probe, specs, retrain))


def diagnose(probe_plan: ProbePlan, ctx: ProbeContext, caption: str, executor: str = "local", jobs: int = 1,
             events: Events | None = None) -> Diagnosis:
    """Run a planned probe: train what it lacks (with its hook on), compute its frame and summary, and write
    `<out>/<probe>/<probe>.csv`, `_summary.csv` and `.png`."""
    probe = probe_plan.probe
    trained = run_grid(probe_plan.todo, executor, jobs, events=events) if probe_plan.todo else []
    runs = []
    for spec in probe_plan.specs:
        rec = load_record(spec.path) if spec.path.exists() else None
        if rec is None or not rec.finished:
            why = rec.error if rec is not None else "no record"
            raise RatbenchError(f"The run {spec.label} did not finish ({why}); see {spec.path} and rerun the same "
                                "command to retry it.")
        runs.append(ProbeRun(spec.path, rec, functools.partial(_restored_parts, spec.path, ctx.data_root)))
    frame = probe.compute(ctx, runs)
    summary = probe.summary(frame)
    folder = ctx.out / probe.name
    write_text(folder / f"{probe.name}.csv", frame.to_csv(index=False))
    write_text(folder / f"{probe.name}_summary.csv", summary.to_csv(index=False))
    png = folder / f"{probe.name}.png"
    probe.plot(frame, png, f"ratbench {__version__} · probe {probe.name} · {caption}")
    return Diagnosis(probe, frame, summary, folder, png, trained)


def _restored_parts(path: Path, data_root: Path) -> tuple[Method, torch.nn.Module, Corpus]:
    r = restore(path, data_root)
    return r.method, r.model, r.corpus
