"""Weight dtypes by name: the ``--dtype`` option of training, conversion, generation and serving.

``auto`` keeps the dtype the checkpoint was saved in (``from_pretrained(dtype="auto")``);
``fp32`` / ``bf16`` / ``fp16`` (or the torch names) load or cast the weights to that dtype. This
is the dtype of the weights themselves, unlike the trainer's ``bf16`` / ``fp16`` flags, which
keep fp32 weights and run the forward under autocast.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
CHOICES = ("auto", "fp32", "bf16", "fp16")


def resolve_dtype(name: str | torch.dtype | None) -> torch.dtype | str:
    """``name`` -> a torch dtype, or ``"auto"`` for None / "auto" (the checkpoint's own).

    Raises:
        ValueError: an unknown name, with the accepted ones.
    """
    if isinstance(name, torch.dtype):
        return name
    if name is None or name == "auto":
        return "auto"
    key = str(name).lower().removeprefix("torch.")
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(CHOICES)}")
    return DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 -> "bf16" (for messages and reports)."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
        dtype, str(dtype).removeprefix("torch.")
    )
