"""Planning a grid: methods x datasets x seeds -> one `RunSpec` per run, in the order runs may train.

A spec is plain data (picklable for process pools and Ray): which run, its full configuration and hash,
where its record goes, and the records it depends on. Planning imports method classes only to read their
default hyperparameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ratbench.config import RunConfig, check_override_keys, config_hash, resolve
from ratbench.methods.catalog import check_backbone, method_class, method_info
from ratbench.results.record import record_path


@dataclass
class RunSpec:
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
    threads: int | None = None  # torch CPU threads for this run (an executor's budget; None: torch's default)
    # records this run reads, method -> record path (post-hoc explainers read RNP's realised sparsity)
    dependencies: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
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
    named: set[str] | None = None,
) -> list[RunSpec]:
    """The grid's specs; a run that reads another method's records (`dependencies`) gets the spec of that
    method's run with the same profile, overrides, dataset and seed, added to the grid if missing.

    `named`: the methods the user asked for by name (default: all of `methods`). A method that came in through
    a group (`all`, `table1`) and does not run on the run's backbone is left out; a named one is an error."""
    wanted = list(dict.fromkeys(methods))
    defaults = {m: dict(method_class(m).defaults) for m in wanted}
    check_override_keys(overrides, defaults)
    specs: dict[tuple[str, str, int], RunSpec] = {}

    def make(method: str, dataset: str) -> list[RunSpec]:
        params = defaults.get(method)
        if params is None:
            params = defaults[method] = dict(method_class(method).defaults)
        cfg = resolve(profile, method, dataset, params, overrides, epochs)
        if named is not None and method not in named and cfg.backbone not in method_info(method).backbones:
            return []
        check_backbone(method, cfg.backbone)  # before anything trains: a method that cannot run there stops here
        h = config_hash(cfg, method, dataset)
        return [RunSpec(dataset, method, seed, profile, cfg, h, device, str(data_root), str(results), list(seeds),
                        resume) for seed in seeds]

    for dataset in datasets:
        for method in wanted:
            for spec in make(method, dataset):
                specs[(spec.dataset, spec.method, spec.seed)] = spec
    for spec in list(specs.values()):
        for dep in method_class(spec.method).dependencies(spec.config):
            if (spec.dataset, dep, spec.seed) not in specs:
                for dep_spec in make(dep, spec.dataset):
                    specs.setdefault((dep_spec.dataset, dep_spec.method, dep_spec.seed), dep_spec)
            spec.dependencies[dep] = str(specs[(spec.dataset, dep, spec.seed)].path)
    return list(specs.values())


def waves(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Specs in the order they may train: a run waits for every run it depends on (a later wave)."""
    remaining = list(specs)
    done: set[str] = set()
    out = []
    while remaining:
        ready = [s for s in remaining if all(p in done or p not in {str(r.path) for r in remaining}
                                             for p in s.dependencies.values())]
        if not ready:
            raise ValueError("circular run dependencies: " + ", ".join(s.label for s in remaining))
        out.append(ready)
        done |= {str(s.path) for s in ready}
        remaining = [s for s in remaining if s not in ready]
    return out


def spread_over_gpus(specs: list[RunSpec], n_gpus: int) -> list[RunSpec]:
    """Specs that may use CUDA (`auto`, `cuda`) get cuda:0..n-1 in turn; explicit devices and CPU are kept."""
    if n_gpus < 1:
        return specs
    out, k = [], 0
    for spec in specs:
        if spec.device in ("auto", "cuda"):
            spec = dataclasses.replace(spec, device=f"cuda:{k % n_gpus}")
            k += 1
        out.append(spec)
    return out
