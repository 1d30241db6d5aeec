"""What every method is, apart from its torch code: the method catalog (no torch import).

Each method module declares `INFO = MethodInfo(...)` and registers its class with `@register_method(INFO)`.
The catalog reads those declarations from source (`ratbench.metadata`), so tables, `list methods`, the
published-numbers mapping and the grid planner's ordering never import torch; the class is imported only
when a run is built (`method_class`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ratbench.errors import RatbenchError
from ratbench.metadata import load_catalog
from ratbench.registry import Registry, expand_names

KINDS = ("rationalizer", "post-hoc", "explained-classifier", "diagnostic")
BACKBONES = ("gru", "transformer")


@dataclass(frozen=True)
class MethodInfo:
    """Metadata of one method (see docs/methods.md for what each method implements)."""

    name: str  # lower case, as on the command line
    title: str  # the name published tables use ("Inter_RAT", "3PLAYER"); maps published numbers to the method
    description: str  # one line for `ratbench list methods`
    family: str
    citation: str
    order: int = 1000  # row order in tables (the VER paper's Table 1 order first); ties sort by name
    groups: tuple[str, ...] = ()  # method groups besides `all` (e.g. "table1")
    backbones: tuple[str, ...] = ("gru",)  # which backbones it runs on
    kind: str = "rationalizer"  # rationalizer | post-hoc | explained-classifier | diagnostic (hidden from `all`)
    runs_after: tuple[str, ...] = ()  # methods whose records its runs read (same dataset, seed, configuration)
    # how faithful the implementation is to a public reference: "reference" (the published code's algorithm),
    # "adaptation" (re-hosted on ratbench's shared pipeline, docs/methods.md says how), "reconstructed" (no public
    # code: built from the paper's description, every invented number a setting)
    provenance: str = "reference"
    # "alpha": a regulariser pulls the selection toward alpha, which the engine calibrates on dev; "top-k": the
    # method selects the top-k tokens at the target sparsity (post-hoc explainers, CR): nothing to calibrate
    sparsity: str = "alpha"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.sparsity not in ("alpha", "top-k"):
            raise ValueError(f"method {self.name}: sparsity must be 'alpha' or 'top-k', got {self.sparsity!r}")
        unknown = set(self.backbones) - set(BACKBONES)
        if unknown:
            raise ValueError(f"method {self.name}: unknown backbones {sorted(unknown)}")

    @property
    def post_hoc(self) -> bool:
        return self.kind == "post-hoc"

    @property
    def calibrates_alpha(self) -> bool:
        return self.sparsity == "alpha" and not self.post_hoc


# name -> the class, imported on first use ("module:Class" lazy entries filled in by `catalog`)
METHODS: Registry[type] = Registry("method")


@functools.cache
def catalog() -> dict[str, MethodInfo]:
    """Every registered method's metadata, in table order."""
    infos = load_catalog("ratbench.methods", MethodInfo, METHODS)
    return dict(sorted(infos.items(), key=lambda kv: (kv[1].order, kv[0])))


def method_info(name: str) -> MethodInfo:
    infos = catalog()
    if name not in infos:
        METHODS.get(name)  # raises the did-you-mean error
    return infos[name]


def method_info_or_none(name: str) -> MethodInfo | None:
    """The metadata of a method, or None for a record of a method this ratbench no longer has."""
    return catalog().get(name)


def method_class(name: str) -> type:
    """The method's class (imports its module, and torch)."""
    catalog()
    return METHODS.get(name)


def method_groups() -> dict[str, list[str]]:
    """`all` (every method but diagnostic variants) and each declared group, in table order."""
    infos = catalog()
    groups: dict[str, list[str]] = {"all": [n for n, i in infos.items() if i.kind != "diagnostic"]}
    for name, info in infos.items():
        for g in info.groups:
            groups.setdefault(g, []).append(name)
    return groups


def expand_methods(text: str) -> list[str]:
    return expand_names(text, list(catalog()), method_groups(), "method", "--methods rnp,ver")


def row_order(method: str) -> tuple[int, str]:
    """Sort key of a table row; unknown methods (records of a removed method) sort last."""
    info = catalog().get(method)
    return (info.order if info else 10**6, method)


def by_title() -> dict[str, str]:
    """Published-table name -> ratbench method name ("Inter_RAT" -> "interrat")."""
    return {i.title: n for n, i in catalog().items()}


def check_backbone(method: str, backbone: str) -> None:
    info = method_info(method)
    if backbone not in info.backbones:
        raise RatbenchError(
            f"{method} does not run on the {backbone} backbone (it supports: {', '.join(info.backbones)}); "
            f"docs/methods.md#{method} says why. Drop it from --methods, or run it with --set backbone="
            f"{info.backbones[0]} in a separate command.")
