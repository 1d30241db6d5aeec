"""Name -> object registries with typo suggestions, shared by methods, datasets, probes and metrics."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ratbench.errors import RatbenchError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """A ' Did you mean ...?' suffix for an unknown name (empty when nothing is close)."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """A named collection; `register` is a decorator, unknown names raise with suggestions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise RatbenchError(
                f"Unknown {self.kind} {name!r}.{suggest(name, list(self._items))} Known: {known}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())


def expand_names(text: str, registry: Registry, groups: dict[str, list[str]], example: str) -> list[str]:
    """A comma list of names and group names -> names, in order, without repeats (`--methods`, `--datasets`)."""
    out: list[str] = []
    for part in [p.strip().lower() for p in text.split(",") if p.strip()]:
        names = groups.get(part)
        if names is None:
            if part not in registry:
                choices = registry.names() + list(groups)
                raise RatbenchError(
                    f"Unknown {registry.kind} {part!r}.{suggest(part, choices)} Known: {', '.join(choices)}. "
                    f"See `ratbench list {registry.kind}s`."
                )
            names = [part]
        out.extend(n for n in names if n not in out)
    if not out:
        raise RatbenchError(f"No {registry.kind} given. Pass e.g. {example}.")
    return out
