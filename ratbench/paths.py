"""Where data and results live (docs/datasets.md#cache-and-integrity: --data-root, $RATBENCH_DATA, user cache dir)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        root = Path(explicit)
    elif os.environ.get("RATBENCH_DATA"):
        root = Path(os.environ["RATBENCH_DATA"])
    else:
        root = Path(platformdirs.user_cache_dir("ratbench"))
    return root.expanduser()


def results_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or "results").expanduser()
