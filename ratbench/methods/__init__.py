"""Built-in methods. Each module registers its class on import; add new ones to `_MODULES`."""

from __future__ import annotations

import importlib

from ratbench.methods.base import Method
from ratbench.methods.registry import METHODS, register_method
from ratbench.registry import expand_names

_MODULES = ["rnp", "ver", "nir", "dmr", "a2i", "interrat", "three_player", "a2r", "fr", "dr", "mgr", "attention",
            "lime", "random_dz"]
for _m in _MODULES:
    importlib.import_module(f"ratbench.methods.{_m}")

# cli.md: `table1` is the VER paper's Table 1 rows; only registered methods are expanded.
METHOD_GROUPS: dict[str, list[str]] = {
    "all": [n for n, cls in METHODS.items() if not cls.probe_only],
    "table1": [m for m in ["lime", "attention", "rnp", "interrat", "nir", "dmr", "a2i", "ver"] if m in METHODS],
}


def expand_methods(text: str) -> list[str]:
    return expand_names(text, METHODS, METHOD_GROUPS, "--methods rnp,ver")


__all__ = ["METHODS", "METHOD_GROUPS", "Method", "expand_methods", "register_method"]
