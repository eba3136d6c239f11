"""The OpenAPI document: FastAPI's, with integer bounds written as integers.

FastAPI passes JSON Schema bounds through float fields, so ``maximum: 2**64 - 1`` on an integer
came out as ``1.8446744073709552e+19`` (a different, float bound). ``exact_openapi`` restores
integer bounds: the protocol's large constants exactly, small integral floats as ints.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .protocol import MAX_TOKENS, SEED_MAX, SEED_MIN

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_EXACT = {float(v): v for v in (SEED_MIN, SEED_MAX, MAX_TOKENS)}


def _integer_bounds(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _integer_bounds(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        for key in _BOUNDS:
            value = node.get(key)
            if isinstance(value, float):
                node[key] = _EXACT.get(value, int(value) if value.is_integer() else value)
    for value in node.values():
        _integer_bounds(value)


def exact_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once), with exact integer bounds."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _integer_bounds(doc)
        app.openapi_schema = doc
    return app.openapi_schema
