"""The architecture families are listed once, in ``ARCHITECTURES``: every table of their names
(``EditFlowConfig.arch``, source ``model_type``, what ``a2d`` accepts) is read from the classes,
and no product module types a second list."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from editflow_models import ARCHITECTURES, SOURCE_MODEL_TYPES, configuration
from editflow_models.architectures import A2D_MODEL_TYPES, ARCH_MODEL_TYPES

REPO = Path(__file__).resolve().parents[2]
FAMILY_NAMES = set(ARCHITECTURES) | set(SOURCE_MODEL_TYPES) | set(ARCH_MODEL_TYPES.values())


def test_the_tables_of_names_are_read_from_the_architecture_classes():
    for name, arch in ARCHITECTURES.items():
        assert arch.name == name
        assert SOURCE_MODEL_TYPES[arch.source_model_type or name] == name
        assert ARCH_MODEL_TYPES[name] == arch.config_class.model_type
        assert ((arch.source_model_type or name) in A2D_MODEL_TYPES) == arch.causal_source
    assert len(SOURCE_MODEL_TYPES) == len(ARCH_MODEL_TYPES) == len(ARCHITECTURES)
    # the config and a2d check against these very tables
    assert configuration.ARCH_MODEL_TYPES is ARCH_MODEL_TYPES
    a2d_module = importlib.import_module("editflow_models.a2d")  # the package exports a2d()
    assert a2d_module.A2D_MODEL_TYPES is A2D_MODEL_TYPES
    # the families whose names differ somewhere
    assert SOURCE_MODEL_TYPES["Dream"] == "dream"
    assert (ARCH_MODEL_TYPES["llada"], ARCH_MODEL_TYPES["dream"]) == ("llama", "qwen2")
    assert set(A2D_MODEL_TYPES) == {"qwen2", "qwen3", "llama"}


def family_names_outside_their_classes(path: Path) -> set[str]:
    """Family names written as string literals in ``path``, outside the classes that define
    the families."""
    classes = {type(arch).__name__ for arch in ARCHITECTURES.values()}
    tree = ast.parse(path.read_text())
    inside = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in classes
        for n in ast.walk(node)
    }
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in FAMILY_NAMES and id(n) not in inside
    }


def test_no_product_module_types_a_list_of_family_names():
    """A default ("modernbert") or a family's own text model_type is one name; a table of
    families written out again would hold several."""
    files = sorted(REPO.glob("packages/*/src/**/*.py")) + sorted(REPO.glob("apps/*/src/**/*.py"))
    assert any(p.name == "architectures.py" for p in files)  # the scan sees the package
    lists = {}
    for path in files:
        names = family_names_outside_their_classes(path)
        if len(names) > 1:
            lists[str(path.relative_to(REPO))] = sorted(names)
    assert not lists, f"a second list of architecture families: {lists}"


def test_the_scan_finds_a_second_list(tmp_path):
    typed = tmp_path / "typed.py"
    typed.write_text('SUPPORTED = {"bert": "bert", "Dream": "dream"}\n')
    assert family_names_outside_their_classes(typed) == {"bert", "Dream", "dream"}
