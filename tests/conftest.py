"""Session settings. The suite runs on two pytest-xdist workers (README: `python -m pytest -n 2`); torch keeps to
one thread (in a single process too, so a test sees the same numerics either way): on a 2-core machine the
workers do not spin against each other (tiny models are bound by per-op overhead, and two threads per worker
made single tests up to 40x slower under load)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    import torch

    torch.set_num_threads(1)
