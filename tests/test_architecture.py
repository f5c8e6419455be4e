"""The import order holds: ``core`` at the bottom, and no two packages need each other.

Read from the code itself with grimp (the graph behind import-linter), imports inside
functions included, so a cycle cannot hide in a late import.
"""

from __future__ import annotations

import grimp
import pytest

TOP = "timebank"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(TOP, cache_dir=None)  # a cache could answer for code that changed


def _unit(module: str) -> str:
    """A top-level package or module of timebank: the unit whose imports must not cycle."""
    return ".".join(module.split(".")[:2])


def package_imports(graph: grimp.ImportGraph) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """Which units import which, and for each such pair one import that does it."""
    edges: dict[str, set[str]] = {}
    example: dict[tuple[str, str], str] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            a, b = _unit(module), _unit(imported)
            if a != b and b != TOP:
                edges.setdefault(a, set()).add(b)
                example.setdefault((a, b), f"{module} imports {imported}")
    return edges, example


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_two_packages_import_each_other(graph) -> None:
    edges, example = package_imports(graph)
    found = cycles(edges)
    detail = [example[a, b] for component in found for a in component for b in edges[a] if b in component]
    assert not found, f"import cycles between packages {found}:\n" + "\n".join(detail)


def test_core_imports_nothing_above_it(graph) -> None:
    above = {
        f"{module} imports {imported}"
        for module in graph.find_descendants(f"{TOP}.core")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith(TOP + ".") and not imported.startswith(f"{TOP}.core")
    }
    assert not above, sorted(above)


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
