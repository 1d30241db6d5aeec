"""Name -> object registries with typo suggestions, shared by methods, dataset families, probes, executors,
vector resources and explainers.

An entry is either an object or a *lazy* entry: a `"module:attribute"` string that is imported on first
`get`. Lazy entries let `ratbench report` and `ratbench list` name every method without importing torch
(the method catalog knows the names; the modules load only when a run needs them).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ratbench.errors import RatbenchError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """A ' Did you mean ...?' suffix for an unknown name (empty when nothing is close)."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """A named collection; `register` is a decorator, unknown names raise with suggestions.

    `base` (optional) is checked on every registered class, so a plug-in that forgot its base class fails at
    registration with a message instead of deep inside a run.
    """

    def __init__(self, kind: str, base: type | None = None):
        self.kind = kind
        self.base = base
        self._items: dict[str, Any] = {}  # name -> object, or "module:attr" for a lazy entry

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        current = self._items.get(name)
        if current is not None and not (isinstance(current, str) and not isinstance(obj, str)):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if self.base is not None and not isinstance(obj, str):
            if not (isinstance(obj, type) and issubclass(obj, self.base)):
                raise TypeError(f"{self.kind} {name!r} must be a subclass of {self.base.__name__}, got {obj!r}")
        self._items[name] = obj  # a real object replaces its lazy entry when its module registers it

    def add_lazy(self, name: str, target: str) -> None:
        """Register `name` as `"package.module:attribute"`, imported on first `get`."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = target

    def get(self, name: str) -> T:
        try:
            obj = self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise RatbenchError(
                f"Unknown {self.kind} {name!r}.{suggest(name, list(self._items))} Known: {known}."
            ) from None
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            loaded = getattr(importlib.import_module(module), attr)
            self._items[name] = loaded
            if self.base is not None and not (isinstance(loaded, type) and issubclass(loaded, self.base)):
                raise TypeError(f"{self.kind} {name!r} ({obj}) is not a subclass of {self.base.__name__}")
            return loaded
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        """Every entry, loading lazy ones (this imports their modules)."""
        return [(name, self.get(name)) for name in list(self._items)]


def import_submodules(package: str) -> list[str]:
    """Import every module of `package` (plug-ins register themselves on import); returns their names.

    Discovery instead of a hand-kept list: a new plug-in is one new file."""
    pkg = importlib.import_module(package)
    names = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
            names.append(info.name)
    return names


def expand_names(text: str, names: list[str], groups: dict[str, list[str]], kind: str, example: str) -> list[str]:
    """A comma list of names and group names -> names, in order, without repeats (`--methods`, `--datasets`)."""
    out: list[str] = []
    for part in [p.strip().lower() for p in text.split(",") if p.strip()]:
        members = groups.get(part)
        if members is None:
            if part not in names:
                choices = list(names) + list(groups)
                raise RatbenchError(
                    f"Unknown {kind} {part!r}.{suggest(part, choices)} Known: {', '.join(choices)}. "
                    f"See `ratbench list {kind}s`."
                )
            members = [part]
        out.extend(n for n in members if n not in out)
    if not out:
        raise RatbenchError(f"No {kind} given. Pass e.g. {example}.")
    return out
