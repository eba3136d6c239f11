"""Reading source checkpoints without their modelling code.

Where a source lives (local folder or hub snapshot), its config.json, safetensors and tokenizer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from editflow_models.special_tokens import anchor_token_id


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


_DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]


def resolve_source(src: str | Path) -> Path:
    """A local directory for ``src``: itself if it is a directory, else a hub snapshot.

    Raises:
        ValueError: ``src`` is neither a directory nor a downloadable hub id.
    """
    path = Path(src)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(src), allow_patterns=_DOWNLOAD_PATTERNS))
    except Exception as err:  # offline, unknown repo, gated, bad id: one clear message
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise ValueError(
            f"{src} is not a local directory and could not be fetched from the hub{offline}: "
            f"{type(err).__name__}"
        ) from err


def read_source_config(path: Path) -> dict:
    """The source's config.json as a dict."""
    return read_json(path / "config.json")


_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
)


def load_tokenizer(src: Path):
    """The tokenizer stored in ``src``, or None when it has none.

    Checked first because transformers would otherwise build an empty one from the config alone.
    """
    if not any((src / name).is_file() for name in _TOKENIZER_FILES):
        return None
    try:
        return AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save_tokenizer(src: Path, output: Path) -> str | None:
    """Save the source's tokenizer into ``output``; returns its class name, or None if absent."""
    tokenizer = load_tokenizer(src)
    if tokenizer is None:
        return None
    tokenizer.save_pretrained(output)
    return type(tokenizer).__name__


def tokenizer_ids(src: Path) -> dict[str, int | None]:
    """Anchor (BOS, else CLS), mask and pad ids of the tokenizer stored in ``src`` ({} if none)."""
    tok = load_tokenizer(src)
    if tok is None:
        return {}
    return {
        "anchor_token_id": anchor_token_id(tok),
        "mask_token_id": tok.mask_token_id,
        "pad_token_id": tok.pad_token_id,
    }
