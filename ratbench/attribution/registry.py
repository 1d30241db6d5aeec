"""Explainers by name (`attribution=input_x_gradient|integrated_gradients|...` in settings)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ratbench.errors import RatbenchError
from ratbench.registry import Registry, suggest

# name -> Explainer subclass (explainers.py registers them; this module stays below it, so no import cycle)
EXPLAINERS: Registry[type] = Registry("attribution method")


def register_explainer(cls: type) -> type:
    """Class decorator: register under the class's `name`."""
    EXPLAINERS.add(cls.name, cls)
    return cls


def explainer_options(name: str) -> dict[str, Any]:
    """The options of an explainer and their defaults (what `make_explainer` accepts)."""
    cls = EXPLAINERS.get(name)
    return {f.name: f.default for f in dataclasses.fields(cls)}


def make_explainer(name: str, **options: Any) -> Any:
    """The explainer registered as `name`, configured by `options`; unknown names or options raise a
    RatbenchError with the closest known spelling."""
    cls = EXPLAINERS.get(name)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in known:
            listed = ", ".join(known) if known else "none"
            raise RatbenchError(f"Unknown option {key!r} for attribution method {name!r}.{suggest(key, known)} "
                                f"Its options: {listed}.")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise RatbenchError(f"Attribution method {name!r}: {exc}") from None
