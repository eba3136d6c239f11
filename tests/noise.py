"""What a user must not see in a command's output: warnings from libraries they did not ask for."""

from __future__ import annotations

import re

#: bitsandbytes' optional CPU kernel, deepspeed's accelerator detection, Python warnings and
#: logging WARNING lines of any library, transformers' special-token alignment notice
NOISE = re.compile(
    r"Failed to load CPU gemm_4bit_forward|Setting accelerator to|\[WARNING\]|"
    r"\w+Warning:|^WARNING|tokenizer has new PAD/BOS/EOS",
    re.MULTILINE,
)


def library_noise(output: str) -> list[str]:
    """The lines of ``output`` (progress bars' carriage returns split too) that are noise."""
    lines = re.split(r"[\r\n]+", output)
    return [line for line in lines if NOISE.search(line)]
