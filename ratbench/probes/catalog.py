"""What every probe is, apart from its code: the probe catalog (no torch import; see methods/catalog.py).

Each probe module declares `INFO = ProbeInfo(...)` and registers its class with `@register_probe(INFO)`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ratbench.metadata import load_catalog
from ratbench.registry import Registry


@dataclass(frozen=True)
class ProbeInfo:
    name: str  # `ratbench diagnose --probe NAME`
    title: str  # what it shows (the plot's title)
    reads: str  # what it needs from a run: "run records", "checkpoint", "training hook", ...
    figure: str = ""  # the VER paper figure it reproduces, if any


PROBES: Registry[type] = Registry("probe")


@functools.cache
def catalog() -> dict[str, ProbeInfo]:
    return load_catalog("ratbench.probes", ProbeInfo, PROBES)


def probe_class(name: str) -> type:
    catalog()
    return PROBES.get(name)


def names() -> list[str]:
    return list(catalog())
