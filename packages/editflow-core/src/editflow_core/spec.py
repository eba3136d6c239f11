"""Spec strings: ``name`` or ``name[key:value,key:value]``.

Schedulers and x0 samplers are named by short strings that go into model configs, YAML files
and command lines, e.g. ``"cubic"``, ``"poly[n:2]"``, ``"masks[length:64]"``,
``"masks[length:32-96]"``. This module only splits such a string; each consumer validates
its own names and keys and raises ``ValueError`` naming the problem and what is valid.
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(.*)\])?\s*$")


def parse_spec(spec: str, what: str) -> tuple[str, dict[str, str]]:
    """Split ``"name[k:v,k2:v2]"`` into ``("name", {"k": "v", "k2": "v2"})``.

    Args:
        spec: the spec string.
        what: what the spec describes ("scheduler", "x0 sampler"), for error messages.

    Raises:
        ValueError: the string is not of that form, or a key repeats.
    """
    if not isinstance(spec, str):
        raise ValueError(f"{what} spec must be a string like 'name[key:value]', got {spec!r}")
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"bad {what} spec {spec!r}: expected 'name' or 'name[key:value,...]'")
    name, body = m.group(1).lower(), m.group(2)
    params: dict[str, str] = {}
    if body is not None and body.strip():
        for item in body.split(","):
            key, sep, value = item.partition(":")
            key, value = key.strip().lower(), value.strip()
            if not sep or not key or not value:
                raise ValueError(
                    f"bad {what} spec {spec!r}: item {item.strip()!r} is not 'key:value'"
                )
            if key in params:
                raise ValueError(f"bad {what} spec {spec!r}: key {key!r} given twice")
            params[key] = value
    return name, params


def check_keys(spec: str, what: str, params: dict[str, str], valid: tuple[str, ...]) -> None:
    """Raise ValueError if ``params`` holds a key outside ``valid``."""
    for key in params:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            raise ValueError(
                f"bad {what} spec {spec!r}: unknown key {key!r} (valid keys: {listed})"
            )
