"""editflow-models has no import cycle: every import of a sibling module, at module level or
inside a function, points one way (a cycle makes import order matter and hides layering)."""

from __future__ import annotations

import ast
from pathlib import Path

import editflow_models

PACKAGE = Path(editflow_models.__file__).parent


def imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports anywhere (the package __init__ excluded)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("editflow_models."):
                found.add(node.module.split(".")[1])
            elif node.module == "editflow_models":
                found |= {a.name for a in node.names if (PACKAGE / f"{a.name}.py").is_file()}
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("editflow_models."):
                    found.add(a.name.split(".")[1])
    return found - {"__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*stack, nxt])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_editflow_models_has_no_import_cycle():
    graph = {p.stem: imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert graph["convert"] and graph["modeling"]  # the scan sees imports at all
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
