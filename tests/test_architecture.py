"""The package's layers, checked from its source: imports point down, never in a cycle.

Layers, lowest first (README "How the code is laid out"):

    base       errors, faults, answers, env, clock  no livekit, no pytest
    load       the scenario file and its model (plain data)
    observe    timeline, observed events, history, HTML report (no livekit)
    fakes      in-process LLM/TTS/STT/audio doubles
    transport  the fake inference gateway, respx/aiohttp bridges, offline guard
    run        the engine: targets, the harness, the turn player, drivers per mode
    plugin     pytest hooks, settings, collection, fixtures, snapshots, reporting

An import may only point to a lower layer or stay in its own; ``load``/``observe`` and
``fakes``/``transport`` are siblings that never import each other. Every import counts:
module level, function level and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_agentsim"
NAME = PACKAGE.name

RANK = {
    "base": 0,
    "load": 1,
    "observe": 1,
    "fakes": 2,
    "transport": 2,
    "run": 3,
    "plugin": 4,
    "facade": 5,  # pytest_agentsim/__init__.py: the public names, loaded lazily
}
BASE_MODULES = {"errors", "faults", "answers", "env", "clock"}
PYTEST_MODULES = ("pytest", "_pytest", "syrupy", "pytest_asyncio", "xdist", "pluggy")
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (an internal module, or the top external name)
    line: int
    lazy: bool  # inside a function
    type_only: bool  # inside `if TYPE_CHECKING:`


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    if len(parts) == 2 and parts[1] in BASE_MODULES:
        return "base"
    return parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, True, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.body:
                    yield from visit_stmt(stmt, lazy, True)
                for stmt in child.orelse:
                    yield from visit_stmt(stmt, lazy, type_only)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                yield from resolve(child, lazy, type_only)
            else:
                yield from visit(child, lazy, type_only)

    def visit_stmt(stmt: ast.stmt, lazy: bool, type_only: bool) -> Iterator[Import]:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield from resolve(stmt, lazy, type_only)
        else:
            yield from visit(stmt, lazy, type_only)

    def resolve(node: ast.Import | ast.ImportFrom, lazy: bool, type_only: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, _internal(alias.name), node.lineno, lazy, type_only)
            return
        if node.level:
            base = module.split(".")
            if not is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            name = ".".join([*base, *([node.module] if node.module else [])])
        else:
            name = node.module or ""
        for alias in node.names:
            # `from pkg import submodule` depends on the submodule, not on pkg/__init__
            full = f"{name}.{alias.name}"
            target = full if full in MODULES else _internal(name)
            yield Import(module, target, node.lineno, lazy, type_only)

    yield from visit(tree, False, False)


def _internal(name: str) -> str:
    if not name.startswith(NAME):
        return name.split(".")[0]
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]
INTERNAL = [i for i in IMPORTS if i.target in MODULES and i.target != i.source]


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(PACKAGE.parent)}:{imp.line}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for imp in INTERNAL:
        src, dst = _layer(imp.source), _layer(imp.target)
        if src == dst:
            continue
        if RANK[dst] >= RANK[src]:
            wrong.append(f"{_where(imp)}: {src} imports {dst} ({imp.target})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in INTERNAL:
        graph[imp.source].add(imp.target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_pytest_is_imported_only_by_the_plugin_layer() -> None:
    wrong = [
        f"{_where(i)}: imports {i.target}"
        for i in IMPORTS
        if i.target in PYTEST_MODULES and _layer(i.source) != "plugin"
    ]
    assert not wrong, "pytest/syrupy outside pytest_agentsim/plugin:\n" + "\n".join(wrong)


def test_one_lazy_boundary_at_the_plugin_edge() -> None:
    """Below the plugin, modules import each other at module level; only the plugin (and
    the public facade) defer loading the engine, which imports livekit."""
    lazy = [
        f"{_where(i)}: {i.target} imported inside a function"
        for i in INTERNAL
        if i.lazy and not i.type_only and _layer(i.source) not in ("plugin", "facade")
    ]
    assert not lazy, "function-level imports of the package's own modules:\n" + "\n".join(lazy)
    plugin_lazy = {
        i.target for i in INTERNAL if i.lazy and not i.type_only and _layer(i.source) == "plugin"
    }
    assert plugin_lazy <= {f"{NAME}.run.api"}, (
        "the plugin loads the engine through `pytest_agentsim.run.api` only, got: "
        + ", ".join(sorted(plugin_lazy))
    )


def test_the_plugin_does_not_load_livekit_at_import() -> None:
    eager = [
        f"{_where(i)}: {i.target}"
        for i in IMPORTS
        if _layer(i.source) in ("plugin", "facade", "load", "observe", "base")
        and not i.lazy
        and not i.type_only
        and (i.target == "livekit" or _layer(i.target) in ("run", "fakes", "transport"))
        and i.target in (*MODULES, "livekit")
    ]
    assert not eager, "module-level imports that load livekit from a light layer:\n" + "\n".join(
        eager
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_the_size_limit(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines (limit {MAX_LINES}): split it"


def test_no_private_names_across_modules() -> None:
    """A module uses another module's public names only (a ``_name`` is its own)."""
    wrong = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith(NAME)
            ):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        wrong.append(
                            f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {alias.name}"
                        )
    assert not wrong, "private names imported from another module:\n" + "\n".join(wrong)


def test_the_checker_sees_what_it_checks() -> None:
    """The rules above must be able to fail: the graph is not empty and knows the layers."""
    layers = {_layer(m) for m in MODULES}
    assert layers == set(RANK), layers
    assert len(INTERNAL) > 50
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
