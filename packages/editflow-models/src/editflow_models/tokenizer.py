"""A byte-level BPE tokenizer trained locally (no hub), for models built from scratch.

Every string round-trips (newlines and spaces included). Special tokens come first, in a fixed
order: ``<pad>`` = 0, ``<bos>`` = 1 (the anchor), ``<eos>`` = 2, ``<mask>`` = 3 (for
``masks[...]`` x0), ``<unk>`` = 4. The training quickstart and the serving tests' tiny model
both build theirs here.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "mask_token": "<mask>",
    "unk_token": "<unk>",
}


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer of ``vocab_size`` entries on ``texts``.

    Raises:
        ValueError: ``vocab_size`` leaves no room beyond the 256 bytes and the specials.
    """
    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise ValueError(
            f"tokenizer_vocab_size must exceed 261 (bytes + specials), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
