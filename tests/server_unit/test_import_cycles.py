"""No import circles inside deploykit: every import counts, including the ones under
``if TYPE_CHECKING:`` and the ones inside functions (a lazy import is still a dependency,
and a type-only circle is still a coupling reviewers have to untangle).

Edges come from parsing the source, not from importing it, so a circle is found even
where Python would tolerate it at run time."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import deploykit

PACKAGE_ROOT = Path(deploykit.__file__).resolve().parent
PROTOCOLS = "deploykit.server.protocols"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The deploykit modules NAME imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` names a module; `from module import name` does not
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_circle_through_type_checking_and_lazy_imports(tmp_path: Path) -> None:
    """The detector itself: a circle made only of a TYPE_CHECKING import and a function-level import."""
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from pkg.a import thing\n")
    known = {"pkg.a", "pkg.b"}
    edges = {
        "pkg.a": _imports("pkg.a", tmp_path / "a.py", known),
        "pkg.b": _imports("pkg.b", tmp_path / "b.py", known),
    }
    assert edges == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert cycles(edges) == [["pkg.a", "pkg.b"]]


def test_the_graph_reads_the_real_package() -> None:
    edges = graph()
    assert f"{PROTOCOLS}.cycle" in edges[f"{PROTOCOLS}.connection"]
    assert f"{PROTOCOLS}.wire" in edges[f"{PROTOCOLS}.cycle"]


def test_the_cycle_module_imports_nothing_from_the_connection() -> None:
    """RequestCycle knows its connection through the CycleOwner protocol only."""
    assert f"{PROTOCOLS}.connection" not in graph()[f"{PROTOCOLS}.cycle"]


@pytest.mark.parametrize("scope", [PROTOCOLS, "deploykit.server", "deploykit"])
def test_no_import_circles(scope: str) -> None:
    edges = {name: targets for name, targets in graph().items() if name == scope or name.startswith(scope + ".")}
    found = [component for component in cycles(edges) if any(m.startswith(scope) for m in component)]
    assert found == [], f"import circles under {scope}: {found}"
