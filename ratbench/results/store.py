"""A results directory on disk: record paths, checkpoints beside their records, finding finished runs.

Layout: `<results>/runs/<dataset>/<method>/seed<k>-<confighash>.json`, the checkpoint beside it as `.pt`
(the selected epoch's weights without the frozen word vectors; written atomically, read with
`weights_only=True` so a checkpoint cannot run code when loaded), and a lock file per run (`lock.py`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ratbench.atomic import write_bytes
from ratbench.errors import RatbenchError
from ratbench.results.record import RunRecord, load_record


def checkpoint_path(record_path: Path) -> Path:
    return Path(record_path).with_suffix(".pt")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch  # the store is also used by `report`, which must not import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(record_path: Path, device: str = "cpu") -> dict[str, Any]:
    import torch

    ckpt = checkpoint_path(record_path)
    if not ckpt.exists():
        raise RatbenchError(
            f"The run {record_path} has no checkpoint ({ckpt.name}); it was trained by a ratbench that did not save "
            "them, or the file was removed. Retrain it with the same `ratbench run` command plus --no-resume, "
            "or let `ratbench diagnose` retrain it (--retrain).")
    return torch.load(ckpt, map_location=device, weights_only=True)


def finished_records(results: Path, dataset: str, method: str, seed: int) -> list[tuple[Path, RunRecord]]:
    """Every readable finished record of (dataset, method, seed), newest first."""
    folder = Path(results) / "runs" / dataset / method
    found = []
    for path in sorted(folder.glob(f"seed{seed}-*.json")):
        try:
            rec = load_record(path)
            mtime = path.stat().st_mtime
        except (OSError, ValueError, TypeError):
            continue
        if rec.finished:
            found.append((mtime, path, rec))
    return [(p, r) for _, p, r in sorted(found, key=lambda t: t[0], reverse=True)]


def find_record(results: Path, dataset: str, method: str, seed: int) -> tuple[Path, RunRecord]:
    """The newest finished record of (dataset, method, seed) under a results directory."""
    found = finished_records(results, dataset, method, seed)
    if not found:
        folder = Path(results) / "runs" / dataset / method
        raise RatbenchError(
            f"No finished {method} run on {dataset} with seed {seed} under {folder}. Train it first: "
            f"ratbench run --methods {method} --datasets {dataset} --seeds {seed} --results {results}")
    return found[0]
