"""Seeds, devices and fixed evaluation subsets: what every run sets up the same way."""

from __future__ import annotations

import random

import numpy as np
import torch

from ratbench.data.corpus import BALANCE_SEED, Split
from ratbench.errors import RatbenchError


def seed_everything(seed: int) -> None:
    """One integer seeds python, numpy and torch (and CUDA when present)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> dict[str, object]:
    """Every global generator's state (python, numpy, torch, CUDA), to be put back with `set_rng_state`."""
    state: dict[str, object] = {"python": random.getstate(), "numpy": np.random.get_state(),
                                "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    random.setstate(state["python"])  # type: ignore[arg-type]
    np.random.set_state(state["numpy"])  # type: ignore[arg-type]
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RatbenchError(f"--device {name} was requested but CUDA is not available here; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise RatbenchError(f"Unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None


def limit_split(split: Split, limit: int | None) -> Split:
    """A fixed subset (same for every seed) of at most `limit` examples."""
    if limit is None or limit >= len(split):
        return split
    index = np.sort(np.random.default_rng(BALANCE_SEED).permutation(len(split))[:limit])
    return split.subset(index)
