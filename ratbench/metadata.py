"""Plug-in metadata read from source, without importing the plug-in.

A method or probe module declares what it is as one literal at module level, e.g.

    INFO = MethodInfo(name="rnp", title="RNP", description="...", ...)

and registers its class with that object. `ratbench report` and `ratbench list` need the names, titles and
table order of every method, but importing a method module imports torch (seconds, and a multi-GB
dependency that a reporting machine may not have). So this module finds `INFO = <Info>(...)` in each
module's syntax tree and evaluates the keyword literals only; the class itself is imported lazily when a
run needs it. A module whose INFO is not made of literals is an error at discovery, not a silent skip.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Declared:
    module: str  # "ratbench.methods.rnp"
    cls: str  # the class decorated with the INFO object
    fields: dict[str, Any]


def _class_using(tree: ast.Module, var: str) -> str | None:
    """The class decorated with `register_xxx(var)` (the registration names its INFO object)."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and any(isinstance(a, ast.Name) and a.id == var for a in deco.args):
                    return node.name
    return None


def declared(package: str, info_class: str, var: str = "INFO") -> list[Declared]:
    """Every module of `package` that declares `var = info_class(...)`, in file-name order."""
    out = []
    files = sorted((f for f in resources.files(package).iterdir() if f.name.endswith(".py")), key=lambda f: f.name)
    for file in files:
        if file.name.startswith("_"):
            continue
        source = file.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=file.name)
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == var and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == info_class):
                continue
            module = f"{package}.{file.name[:-3]}"
            if node.value.args:
                raise ValueError(f"{module}: {info_class}(...) takes keyword arguments only")
            try:
                fields = {kw.arg: ast.literal_eval(kw.value) for kw in node.value.keywords}
            except ValueError:
                raise ValueError(f"{module}: every field of {var} = {info_class}(...) must be a literal "
                                 "(it is read without importing the module)") from None
            cls = _class_using(tree, var)
            if cls is None:
                raise ValueError(f"{module}: {var} is declared but no class is registered with it")
            out.append(Declared(module, cls, fields))
    return out


def load_catalog(package: str, info_class: type, registry: Any) -> dict[str, Any]:
    """`{name: info}` of every module of `package` declaring `INFO = <info_class>(...)`, each also added to
    `registry` as a lazy entry, so the class is imported only when asked for."""
    infos = {}
    for decl in declared(package, info_class.__name__):
        info = info_class(**decl.fields)
        if info.name in infos:
            raise ValueError(f"{package}: {info.name!r} is declared twice")
        infos[info.name] = info
        if info.name not in registry:
            registry.add_lazy(info.name, f"{decl.module}:{decl.cls}")
    return infos
