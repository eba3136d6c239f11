"""The server's shape: one engine protocol, one flags dataclass, one source of sampling defaults,
no test fixture in the product and no unused dependency."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import tomllib
from pathlib import Path

import editflow_serve
import pytest
from editflow_core import SamplingParams
from editflow_serve import Engine, EngineClient, ServeSettings
from editflow_serve.cli import build_parser, parse_args

from .conftest import FakeEngine

PACKAGE = Path(editflow_serve.__file__).parent
#: ServeSettings field -> the SamplingParams field whose default it takes
SAMPLING_FIELDS = {
    "steps": "steps",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_tokens": "max_new_tokens",
    "idle_stop_steps": "idle_stop_steps",
}


def _protocol_methods() -> list[str]:
    return [
        name
        for name, member in vars(EngineClient).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


def _protocol_properties() -> list[str]:
    return [name for name, member in vars(EngineClient).items() if isinstance(member, property)]


@pytest.mark.parametrize("kind", ["real", "fake"])
def test_engines_implement_the_engine_client_protocol(kind, tokenizer):
    engine = Engine(lambda: None) if kind == "real" else FakeEngine(tokenizer)
    assert isinstance(engine, EngineClient)
    assert set(_protocol_methods()) == {"start", "stop", "submit", "cancel"}
    assert set(_protocol_properties()) == {"state", "error", "setup", "capacity"}
    for name in _protocol_properties():
        assert hasattr(engine, name), name
    for name in _protocol_methods():
        want = list(inspect.signature(getattr(EngineClient, name)).parameters.values())[1:]
        have = list(inspect.signature(getattr(engine, name)).parameters.values())
        # the protocol's parameters, by name and in order; anything more must be optional
        assert [p.name for p in have[: len(want)]] == [p.name for p in want], (kind, name)
        for p, q in zip(want, have, strict=False):
            assert (p.default is inspect.Parameter.empty) >= (q.default is inspect.Parameter.empty)
        assert all(p.default is not inspect.Parameter.empty for p in have[len(want) :]), name


def test_no_module_probes_the_engine_with_getattr():
    """Typed against EngineClient: no ``getattr(engine, ...)`` / ``getattr(self.engine, ...)``."""
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr":
                target = ast.unparse(node.args[0])
                assert "engine" not in target, f"{path.name}: getattr({target}, ...)"


def test_app_starts_and_stops_the_engine_it_is_given(fake_engine):
    from editflow_serve import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(fake_engine, ServeSettings(served_model_name="m"))) as c:
        assert fake_engine.started and not fake_engine.stopped
        assert c.get("/health").status_code == 200
    assert fake_engine.stopped


def test_the_parser_is_built_from_serve_settings():
    """Every ServeSettings field is a flag with the field's default, and parse_args builds one."""
    parser = build_parser()
    dests = {a.dest: a.default for a in parser._actions if a.dest not in ("help", "config")}
    defaults = ServeSettings()
    assert dests == {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
    settings = parse_args(["--port", "9000", "--cors-origins", "a, b"])
    assert isinstance(settings, ServeSettings)
    assert (settings.port, settings.cors_origins) == (9000, ("a", "b"))


def test_sampling_defaults_have_one_source(monkeypatch):
    """The server's sampling defaults follow SamplingParams: a second copy would not."""
    sampling = {f.name: f.default for f in dataclasses.fields(SamplingParams)}
    for ours, theirs in SAMPLING_FIELDS.items():
        assert getattr(ServeSettings(), ours) == sampling[theirs]
        assert getattr(parse_args([]), ours) == sampling[theirs]
    changed = {"steps": 77, "temperature": 0.7, "top_p": 0.77, "top_k": 7}
    changed |= {"max_new_tokens": 777, "idle_stop_steps": 3}
    for name, value in changed.items():
        monkeypatch.setattr(SamplingParams.__dataclass_fields__[name], "default", value)
    args = parse_args([])
    for ours, theirs in SAMPLING_FIELDS.items():
        assert getattr(ServeSettings(), ours) == changed[theirs], ours
        assert getattr(args, ours) == changed[theirs], ours


REPO = Path(__file__).resolve().parents[2]
PRODUCTS = ["packages/editflow-core", "packages/editflow-models", "packages/editflow-train"]
PRODUCTS += ["packages/editflow-serve", "apps/editflow-cli"]
#: distribution name -> module name where they differ
MODULE_OF = {"pyyaml": "yaml", "prometheus-client": "prometheus_client"}


def _project(folder: str) -> dict:
    return tomllib.loads((REPO / folder / "pyproject.toml").read_text())


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def _imported_modules(src: Path) -> set[str]:
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_the_test_fixture_is_not_in_the_product():
    """The tiny random model lives in the dev-only editflow-testing package, not in a wheel."""
    for folder in PRODUCTS:
        wheel = _project(folder)["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
        for pkg in wheel:  # everything under these folders ships
            shipped = list((REPO / folder / pkg).rglob("*"))
            assert not [p for p in shipped if "tiny" in p.name], folder
            assert "editflow_testing" not in _imported_modules(REPO / folder / pkg), folder
        deps = _requirement_names(_project(folder)["project"].get("dependencies", []))
        assert "editflow-testing" not in deps, folder
    root = _project(".")
    assert "editflow-testing" not in _requirement_names(root["project"]["dependencies"])
    assert "editflow-testing" in _requirement_names(root["dependency-groups"]["dev"])


@pytest.mark.parametrize("folder", ["packages/editflow-serve", "apps/editflow-cli"])
def test_every_declared_dependency_is_imported(folder):
    """No dependency without an import (the CLI once depended on editflow-serve, unused)."""
    project = _project(folder)["project"]
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    modules = {MODULE_OF.get(n, n.replace("-", "_")) for n in _requirement_names(reqs)}
    assert modules <= _imported_modules(REPO / folder / "src"), folder
