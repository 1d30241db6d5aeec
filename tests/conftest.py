"""Session settings. The suite runs on two pytest-xdist workers (README: `python -m pytest -n 2`); each worker
keeps torch to one thread, so on a 2-core machine the workers do not spin against each other (tiny GRUs are
bound by per-op overhead, and two threads per worker made single tests up to 40x slower under load)."""

from __future__ import annotations

import os


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
