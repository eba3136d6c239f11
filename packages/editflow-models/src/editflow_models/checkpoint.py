"""Reading source checkpoints without their modelling code: config.json and safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file


def read_json(path: Path) -> dict:
    """A JSON file as a dict; ValueError naming the file if it is missing."""
    if not path.is_file():
        raise ValueError(f"{path} not found")
    return json.loads(path.read_text())


def read_safetensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of the ``*.safetensors`` files in ``directory`` (sharded or not)."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ValueError(
            f"no .safetensors weights in {directory} (only safetensors sources are read)"
        )
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    return state
