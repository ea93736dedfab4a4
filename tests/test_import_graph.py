"""The package's modules import one another without a cycle, counting imports inside functions too."""

from __future__ import annotations

from pathlib import Path

import pytest

from beyond_backprop.module_graph import PACKAGE, imported_modules, package_modules

SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def import_graph() -> dict[str, set[str]]:
    table = package_modules(SOURCE)
    return {name: imported_modules(name, path, set(table)) for name, path in table.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a list of nodes (first repeated last), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path, monkeypatch):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text("def run():\n    from .cli import main\n    return main\n")
    (package / "cli.py").write_text("from . import engine\n")
    (package / "leaf.py").write_text("import os\n")
    monkeypatch.setattr(__import__(__name__), "SOURCE", package)
    graph = import_graph()
    assert graph[f"{PACKAGE}.engine"] == {f"{PACKAGE}.cli"}
    assert set(find_cycle(graph)) == {f"{PACKAGE}.engine", f"{PACKAGE}.cli"}


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert f"{PACKAGE}.pipeline" in graph[f"{PACKAGE}.distributed"], "the graph sees the package's imports"
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("engine", [f"{PACKAGE}.pipeline", f"{PACKAGE}.distributed", f"{PACKAGE}.results"])
def test_the_engine_and_the_rules_never_import_the_cli_or_the_ledger(engine):
    graph = import_graph()
    assert not graph[engine] & {f"{PACKAGE}.cli", f"{PACKAGE}.claims.ledger"}
