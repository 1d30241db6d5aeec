"""RunRecord: one JSON per (dataset, method, seed, config); the only thing downstream tools read.

Schema version 1 (cli.md "RunRecord"). Files are written atomically; a finished record is never
overwritten by a resumed grid, a failed one is retried.
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from ratbench import __version__
from ratbench.atomic import write_json

SCHEMA_VERSION = 1


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


def versions() -> dict[str, Any]:
    import torch

    return {
        "ratbench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "git": _git_sha(),
    }


def load_record(path: Path) -> dict[str, Any]:
    """Read a record, upgrading older schema versions in place (none exist yet)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.setdefault("schema_version", 1)
    return data


def is_finished(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        return load_record(path).get("status") == "finished"
    except (OSError, json.JSONDecodeError):
        return False


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_json(path, record)
