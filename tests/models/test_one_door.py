"""Code outside editflow-models imports it through its one door, ``editflow_models``: every
name it uses is exported there, and no other package reaches into its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import editflow_models

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = ["packages/editflow-train", "packages/editflow-serve", "apps", "benchmarks"]


def reaching_in() -> list[str]:
    found = []
    for root in OUTSIDE:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                module = getattr(node, "module", None) if isinstance(node, ast.ImportFrom) else None
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in [module, *names]:
                    if name and name.startswith("editflow_models."):
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    return found


def test_other_packages_import_only_the_package_root():
    assert reaching_in() == []


def test_every_exported_name_exists():
    missing = [n for n in editflow_models.__all__ if not hasattr(editflow_models, n)]
    assert missing == []
    assert "load_generation_setup" in editflow_models.__all__


def test_the_scan_finds_a_reach_in(tmp_path, monkeypatch):
    pkg = tmp_path / "apps" / "x.py"
    pkg.parent.mkdir(parents=True)
    pkg.write_text("from editflow_models.generation import load_generation_setup\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert reaching_in() == ["apps/x.py:1 editflow_models.generation"]
