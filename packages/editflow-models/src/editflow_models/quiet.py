"""A quiet start-up: no library messages about features the user did not ask for.

Two libraries speak up on import, and neither import can be avoided from here:

- transformers imports peft whenever peft is installed (``transformers.trainer_utils``), and
  peft imports bitsandbytes, which on CPUs with AVX512-BF16 logs "Failed to load CPU
  gemm_4bit_forward from kernels-community ..." (an optional faster 4-bit kernel);
- accelerate imports deepspeed whenever it is installed (``unwrap_model``), and deepspeed's
  accelerator detection logs "Setting accelerator to CPU ..." on every machine without a GPU.

``install()`` adds a logging filter to each of those two loggers that holds back exactly that
message and nothing else. The bitsandbytes message matters only to someone who quantises: the
4-bit path shows it again (``held_back()``). The deepspeed message is dropped only when torch
sees no CUDA device either, i.e. when CPU is the right answer.
"""

from __future__ import annotations

import logging

BNB_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_MESSAGE = "Failed to load CPU gemm_4bit_forward"
DEEPSPEED_LOGGER = "DeepSpeed"
DEEPSPEED_MESSAGE = "Setting accelerator to CPU"

_held: list[str] = []


class _HoldBack(logging.Filter):
    """Drops records whose message starts with ``prefix`` (when ``when()`` holds); keeps them."""

    def __init__(self, prefix: str, when=lambda: True) -> None:
        super().__init__()
        self.prefix, self.when = prefix, when

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self.prefix) and self.when():
            _held.append(message)
            return False
        return True


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def install() -> None:
    """Add the two filters (idempotent); call before transformers is imported."""
    for name, prefix, when in (
        (BNB_LOGGER, BNB_MESSAGE, lambda: True),
        (DEEPSPEED_LOGGER, DEEPSPEED_MESSAGE, _no_cuda),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HoldBack) for f in logger.filters):
            logger.addFilter(_HoldBack(prefix, when))


def held_back(prefix: str = "") -> list[str]:
    """The messages held back so far whose text starts with ``prefix``."""
    return [m for m in _held if m.startswith(prefix)]
