"""The layers hold: the core imports no adapter, and no module imports itself round a circle.

Every import counts — at module level, inside a function, or by name through
``importlib.import_module`` (a lazy import hides a cycle from Python, not from a reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tale_shared", "langchain_tale", "llama_index_tale")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports_by_name(node: ast.Call) -> bool:
    """``importlib.import_module("a.b")`` or ``import_module("a.b")`` with a literal name."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0] if node.args else None
    return (
        called in ("import_module", "__import__")
        and isinstance(first, ast.Constant)
        and isinstance(first.value, str)
    )


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _imports_by_name(node):
            targets = [node.args[0].value]  # importlib.import_module("pkg.mod")
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule when there is one
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_core_imports_no_adapter():
    offenders = {
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith("tale_shared")
        for target in targets
        if not target.startswith("tale_shared")
    }
    assert not offenders


def test_no_adapter_imports_the_other():
    for name, targets in GRAPH.items():
        for other in ("langchain_tale", "llama_index_tale"):
            if name.startswith(PACKAGES[1:]) and not name.startswith(other):
                assert not any(t.startswith(other) for t in targets), name


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    assert _cycles() == []


@pytest.mark.parametrize("package", PACKAGES)
def test_the_walk_sees_every_package(package):
    assert any(name.startswith(package) for name in GRAPH)
    assert sum(len(targets) for targets in GRAPH.values()) > 100


def _is_research(name: str) -> bool:
    return ".research" in f".{name}" and name.split(".")[1:2] == ["research"]


def test_the_runtime_imports_no_research_tool():
    """Only research packages (``tale_shared.research``, ``langchain_tale.research``,
    ``llama_index_tale.research``) import research modules; the CLI reaches them through
    the ``tale.commands`` entry point, the agent bench its runners through
    ``tale.agent_runners``."""
    offenders = {
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if not _is_research(name)
        for target in targets
        if _is_research(target)
    }
    assert not offenders


def test_the_examples_import_no_research_tool():
    for path in (ROOT / "examples").glob("*.py"):
        assert "tale_shared.research" not in path.read_text(encoding="utf-8"), path.name
