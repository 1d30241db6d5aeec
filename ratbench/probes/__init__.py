"""Diagnostic probes of the VER paper (methods.md §12.6). Each module registers its probe on import."""

from __future__ import annotations

import importlib

from ratbench.probes.base import PROBES, TRAINING_HOOKS, Probe, ProbeContext, TrainingHook, register_probe

_MODULES = ["nonoverlap", "gold", "lipschitz", "sweep", "random_dz"]
for _m in _MODULES:
    importlib.import_module(f"ratbench.probes.{_m}")

__all__ = ["PROBES", "TRAINING_HOOKS", "Probe", "ProbeContext", "TrainingHook", "register_probe"]
