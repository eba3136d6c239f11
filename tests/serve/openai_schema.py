"""Validate server answers against OpenAI's published response schemas (``data/``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

DATA = Path(__file__).parent / "data" / "openai-response-schemas.json"


@cache
def _document() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def schema_errors(name: str, instance: Any) -> list[str]:
    """Every violation of OpenAI's ``components.schemas[name]`` by ``instance`` (empty: valid)."""
    doc = _document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    validator = Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
