"""RunRecord: one JSON per (dataset, method, seed, configuration); the only thing downstream tools read.

A typed, schema-versioned record (field meanings: docs/records.md; metric names: `ratbench.metrics.names`).
Older schema versions are upgraded on load by explicit functions, so every record ever written still
loads and reports as it did. Files are written atomically; a finished record is never overwritten by a
resumed grid, a failed one is retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ratbench import __version__
from ratbench.atomic import write_json

SCHEMA_VERSION = 2


@dataclass
class RunRecord:
    """What one run was (dataset, method, seed, every setting, versions, data digests) and what it measured."""

    dataset: str
    method: str
    seed: int
    profile: str
    config: dict[str, Any]  # every setting (RunConfig fields plus method_params)
    config_hash: str  # digest of the settings that can change a number (the file name's suffix)
    status: str = "failed"  # finished | failed
    schema_version: int = SCHEMA_VERSION
    seeds_requested: list[int] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)  # ratbench, torch, python, cuda, git
    device: str = ""
    started: str = ""
    data: dict[str, str] = field(default_factory=dict)  # source file -> sha256 (vector file included)
    vectors: str | None = None  # the word-vector resource used (docs/datasets.md#word-vectors)
    backbone: dict[str, Any] = field(default_factory=dict)  # what the players' encoders were (models/backbones.py)
    selected_epoch: int | None = None
    selection: str | None = None  # the model-selection rule that chose the epoch
    final_alpha: float | None = None  # the regulariser's sparsity target after calibration
    metrics: dict[str, Any] = field(default_factory=dict)  # test metrics of the selected epoch (+ dev_acc, dev_S)
    # every model-selection rule's epoch and metrics: {rule: {"epoch", "how", "metrics"}} (engine/selection.py)
    selections: dict[str, Any] = field(default_factory=dict)
    # the selected model under a method's alternative evaluation rules: {name: metrics} (e.g. DMR's select_by)
    variants: dict[str, Any] = field(default_factory=dict)
    # how the numbers were made, item by item against the published code (ratbench/protocol.py)
    protocol: list[dict[str, Any]] = field(default_factory=list)
    label_leak: str | None = None  # why the test numbers use test labels (the table flags such rows)
    leakage: dict[str, Any] = field(default_factory=dict)  # overlap of the splits the run used (docs/leakage.md)
    checkpoint: str | None = None  # file name of the saved weights beside the record
    curves: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (ratbench.metrics.names)
    n_examples: dict[str, int] = field(default_factory=dict)
    method_notes: dict[str, Any] = field(default_factory=dict)  # method-specific facts (matched sparsity, priors)
    wall_seconds: float | None = None
    error: str | None = None
    traceback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields this ratbench does not know, kept as read

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def label(self) -> str:
        return f"{self.method} {self.dataset} s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if value is None or (value in ({}, []) and f.name in OPTIONAL):
                continue  # optional fields that do not apply are left out, as in every schema so far
            out[f.name] = value
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Build from a JSON object of any known schema version (upgraded first)."""
        data = upgrade(dict(data))
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


OPTIONAL = ("method_notes", "n_examples", "selections", "variants", "protocol", "leakage", "backbone")


class SchemaError(ValueError):
    pass


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2: curve keys follow the metric vocabulary (`test_S_ref` -> `test_s_ref`, `test_P_ref` ->
    `test_p_ref`); the record names its word vectors (v1 runs used the dataset's default); `selections` holds
    each selection rule's result (v1 recorded only ratbench's matched-sparsity rule, under `metrics`)."""
    renames = {"test_S_ref": "test_s_ref", "test_P_ref": "test_p_ref"}
    data["curves"] = [{renames.get(k, k): v for k, v in row.items()} for row in data.get("curves") or []]
    data.setdefault("vectors", "default")
    if data.get("status") == "finished" and "selections" not in data:
        data["selections"] = {"dev_acc_matched_s": {"epoch": data.get("selected_epoch"),
                                                    "how": data.get("selection"), "metrics": data.get("metrics")}}
    data["schema_version"] = 2
    return data


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SchemaError(f"schema version {version!r} is newer than this ratbench understands ({SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version = data["schema_version"]
    return data


def record_path(results: Path, dataset: str, method: str, seed: int, config_hash: str) -> Path:
    return Path(results) / "runs" / dataset / method / f"seed{seed}-{config_hash}.json"


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
            timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, Any]:
    """Software and the hardware facts that decide whether two runs can be bitwise equal (`ratbench check`
    compares per seed exactly when they match): CPU model and vector instructions, torch's thread count."""
    import torch  # only a training process asks (report never does)

    return {
        "ratbench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "git": _git_sha(),
        "cpu": f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})",
        "threads": torch.get_num_threads(),
    }


def environment(record: RunRecord) -> str:
    """A short fingerprint of what makes runs bitwise reproducible: device, CPU, torch, CUDA, threads ("" when
    the record predates these facts)."""
    v = record.versions or {}
    if "cpu" not in v:
        return ""
    text = f"{record.device}|{v.get('cpu')}|torch {v.get('torch')}|cuda {v.get('cuda')}|threads {v.get('threads')}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def load_record(path: Path) -> RunRecord:
    """Read and upgrade a record; raises OSError, json.JSONDecodeError, SchemaError or TypeError."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SchemaError("not a RunRecord object")
    return RunRecord.from_dict(data)


def is_finished(path: Path) -> bool:
    if not Path(path).exists():
        return False
    try:
        return load_record(path).finished
    except (OSError, ValueError, TypeError):
        return False


def write_record(path: Path, record: RunRecord) -> None:
    write_json(path, record.to_dict())


ENCODER_LABELS = {"local": "local transformer", "minilm": "MiniLM-L6"}


def backbone_label(backbone: dict[str, Any] | None) -> str:
    """How tables name a record's backbone: BiGRU, or the encoder as the user chose it (MiniLM is never BERT)."""
    if not backbone or backbone.get("backbone", "gru") == "gru":
        return "BiGRU"
    encoder = str(backbone.get("encoder") or Path(str(backbone.get("source", "transformer"))).name)
    return ENCODER_LABELS.get(encoder, encoder)


def encoder_key(backbone: dict[str, Any] | None) -> str:
    """What a published number must have been measured with to stand beside this record's: `gru`, or the encoder
    name as given (`bert-base-uncased`); MiniLM and the local encoder match no published BERT row."""
    if not backbone or backbone.get("backbone", "gru") == "gru":
        return "gru"
    return str(backbone.get("encoder") or Path(str(backbone.get("source", "transformer"))).name)


def backbone_description(backbone: dict[str, Any] | None) -> str:
    """One caption phrase per backbone: its label and size."""
    label = backbone_label(backbone)
    if label == "BiGRU":
        return "BiGRU over frozen word vectors"
    b = backbone or {}
    return (f"{label} ({b.get('model_type', '?')}, {b.get('num_layers', '?')} layers, hidden "
            f"{b.get('hidden_size', '?')}, frozen word embeddings)")

