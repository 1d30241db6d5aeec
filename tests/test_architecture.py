"""The package's shape: no import cycle, no import of ratbench's own modules inside functions, layers that
only import downward (docs/architecture.md), and `report` / `list` without torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ratbench"
REPO = PACKAGE.parent

# a module in the first group may not import anything in the second (checked on every import, top level or not)
FORBIDDEN = {
    ("engine", "models", "methods", "data", "metrics", "attribution"):
        ("api", "plan", "cli", "executors", "probes", "results"),
    ("probes",): ("api", "cli", "executors", "plan"),
    ("results",): ("api", "cli", "executors", "probes", "engine", "plan"),
    ("executors",): ("api", "cli", "probes"),
    ("plan",): ("api", "cli", "executors", "probes", "engine"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> own modules it imports, 'file:line' of imports not at module level)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    inner = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            targets = {_owner(n, modules) for n in names if n.split(".")[0] == "ratbench"} - {None, mod}
            if targets:
                graph[mod] |= targets
                if id(node) not in top:
                    inner.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return graph, inner


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_cycles_no_function_level_own_imports_and_layers_point_down():
    modules = _modules()
    graph, inner = _imports(modules)
    assert _cycles(graph) == []
    assert inner == [], "imports of ratbench modules inside functions or conditionals"
    upward = []
    for mod, targets in graph.items():
        for lower, higher in FORBIDDEN.items():
            if _layer(mod) in lower:
                upward += [f"{mod} -> {t}" for t in targets if _layer(t) in higher]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The rules above on a made-up graph: they must be able to fail."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _layer("ratbench.engine.loop") == "engine" and _layer("ratbench.api") == "api"


def _run(code: str, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["report", "--results", "{results}", "--out", "{out}"], ["list", "methods"],
                                  ["list", "probes"], ["--help"]])
def test_report_and_list_never_import_torch(tmp_path, argv):
    results = REPO / "results" / "synth-quick"
    args = [a.format(results=results, out=tmp_path) for a in argv]
    code = ("import json, sys\n"
            "from ratbench.cli.app import app\n"
            f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps({'torch': 'torch' in sys.modules}))\n")
    assert _run(code, REPO) == {"torch": False}
