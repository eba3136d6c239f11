"""``a2d`` ("autoregressive to diffusion"): a causal decoder checkpoint in bidirectional form.

It saves a Qwen2 / Qwen3 / Llama checkpoint with the same weights and ``is_causal`` off; the
families are in ``decoder.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from editflow_models.architectures import A2D_MODEL_TYPES
from editflow_models.checkpoint import read_source_config, resolve_source, save_tokenizer


def a2d(src: str | Path, output: str | Path) -> Path:
    """Save a causal Qwen2 / Qwen3 / Llama checkpoint in its bidirectional form, same weights.

    The output is the same ``*ForCausalLM`` class with ``is_causal: false`` in its config: loading
    it with ``AutoModelForCausalLM`` gives full attention under a padding-only mask (sdpa, eager).
    The tokenizer is copied when the source has one.

    Args:
        src: a local checkpoint directory or a hub id.
        output: the directory to write.

    Returns:
        The output directory.

    Raises:
        ValueError: the checkpoint is not a Qwen2 / Qwen3 / Llama causal LM.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_source(src)
    model_type = read_source_config(path).get("model_type")
    if model_type not in A2D_MODEL_TYPES:
        raise ValueError(
            f"a2d needs a causal {', '.join(A2D_MODEL_TYPES)} checkpoint; {src} is {model_type!r}"
        )
    lm = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    lm.config.is_causal = False
    output = Path(output)
    lm.save_pretrained(output)
    save_tokenizer(path, output)
    for extra in ("generation_config.json",):
        if (path / extra).exists() and not (output / extra).exists():
            shutil.copy(path / extra, output / extra)
    return output
