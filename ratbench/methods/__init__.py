"""Built-in methods. Each module registers its class on import; add new ones to `_MODULES`."""

from __future__ import annotations

import importlib

from ratbench.errors import RatbenchError
from ratbench.methods.base import Method
from ratbench.methods.registry import METHODS, register_method
from ratbench.registry import suggest

_MODULES = ["rnp", "ver"]
for _m in _MODULES:
    importlib.import_module(f"ratbench.methods.{_m}")

# cli.md: `table1` is the VER paper's Table 1 rows; only registered methods are expanded.
METHOD_GROUPS: dict[str, list[str]] = {
    "all": METHODS.names(),
    "table1": [m for m in ["lime", "attention", "rnp", "interrat", "nir", "dmr", "a2i", "ver"] if m in METHODS],
}


def expand_methods(text: str) -> list[str]:
    out: list[str] = []
    for part in [p.strip().lower() for p in text.split(",") if p.strip()]:
        names = METHOD_GROUPS.get(part)
        if names is None:
            if part not in METHODS:
                choices = METHODS.names() + list(METHOD_GROUPS)
                raise RatbenchError(
                    f"Unknown method {part!r}.{suggest(part, choices)} Registered: {', '.join(METHODS.names())}."
                )
            names = [part]
        out.extend(n for n in names if n not in out)
    if not out:
        raise RatbenchError("No method given. Pass e.g. --methods rnp,ver.")
    return out


__all__ = ["METHODS", "METHOD_GROUPS", "Method", "expand_methods", "register_method"]
