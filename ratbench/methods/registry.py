"""Method registry; importing `ratbench.methods` registers every built-in method."""

from __future__ import annotations

from collections.abc import Callable

from ratbench.registry import Registry

METHODS: Registry[type] = Registry("method")


def register_method(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        METHODS.add(name, cls)
        return cls

    return deco
