"""Pretraining sequences: tokenize, then pack or not, and chunk (BOS / EOS handled explicitly).

Every document is tokenized without special tokens and followed by one EOS. Then:

- ``pack=True`` (default): the token stream of a map batch is cut into chunks of
  ``max_length - 1`` tokens and each chunk gets the anchor (BOS) in front, so every x1 is
  ``[BOS] + chunk`` with at most ``max_length`` tokens. EOS marks document ends inside chunks
  (the sampler stops a completion at its first EOS). The remainder of a map batch shorter than
  half a chunk is dropped; a longer one is kept (Edit Flows handle any length).
- ``pack=False``: one x1 per document, ``[BOS] + document + [EOS]``; a document longer than
  ``max_length`` is cut into ``[BOS] + piece`` chunks, all kept. Edit Flows need no padding to
  a common length, so sentence-level data (and toy languages with known string frequencies)
  train on whole strings, and the model learns where a text ends.

With a ``source_field`` (draft -> final pairs, for editing), each record is one example:
x1 = ``[BOS] + text + [EOS]`` and ``x0_ids`` = ``source + [EOS]`` (the draft the model learns to
edit into the text; the collator aligns the two optimally). Pairs are never packed or cut: a
pair longer than ``max_length`` is dropped.
"""

from __future__ import annotations

from datasets import Dataset, IterableDataset
from transformers import PreTrainedTokenizerBase


def column_names(ds: Dataset | IterableDataset) -> list[str]:
    """The columns of a dataset (streaming ones may only know them after a first record)."""
    names = ds.column_names
    if names is None:
        names = list(next(iter(ds)).keys())
    return names


def chunk_ids(ids: list[int], anchor: int, size: int) -> list[list[int]]:
    """Cut a token stream into ``[anchor] + ids[i:i + size]`` chunks (short tail: see module)."""
    chunks = [[anchor, *ids[i : i + size]] for i in range(0, len(ids), size)]
    if chunks and len(chunks[-1]) - 1 < size // 2:
        chunks.pop()
    return chunks


def pretraining_dataset(
    ds: Dataset | IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    anchor_token_id: int,
    eos_token_id: int,
    text_field: str,
    max_length: int,
    num_proc: int | None = None,
    pack: bool = True,
    source_field: str | None = None,
) -> Dataset | IterableDataset:
    """Map text records to ``{"input_ids": [BOS, ...], "frozen": 1}`` chunks.

    ``pack``: see the module docstring.

    Raises:
        ValueError: the text field is missing (the message lists the columns), or max_length < 2.
    """
    names = column_names(ds)
    if text_field not in names:
        raise ValueError(
            f"text field {text_field!r} not in the dataset; its columns are {names} "
            "(set --text_field)"
        )
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (anchor + one token), got {max_length}")
    if source_field is not None:
        if source_field not in names:
            raise ValueError(
                f"source field {source_field!r} not in the dataset; its columns are {names} "
                "(set --source_field)"
            )
        return _pairs(ds, tokenizer, anchor_token_id, eos_token_id, text_field, source_field,
                      max_length, names, num_proc)  # fmt: skip

    def tokenize_and_chunk(batch: dict[str, list]) -> dict[str, list]:
        texts = [t for t in batch[text_field] if t and t.strip()]
        docs = [
            [*ids, eos_token_id]
            for ids in (tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
        ]
        if pack:
            chunks = chunk_ids([i for doc in docs for i in doc], anchor_token_id, max_length - 1)
        else:
            size = max_length - 1
            chunks = [
                [anchor_token_id, *doc[i : i + size]]
                for doc in docs
                for i in range(0, len(doc), size)
            ]
        return {"input_ids": chunks, "frozen": [1] * len(chunks)}

    kwargs = {"num_proc": num_proc} if isinstance(ds, Dataset) and num_proc else {}
    return ds.map(tokenize_and_chunk, batched=True, batch_size=1000, remove_columns=names, **kwargs)


def _pairs(ds, tokenizer, anchor, eos, text_field, source_field, max_length, names, num_proc):
    """Draft -> final records as ``{"input_ids", "frozen", "x0_ids"}`` (see the module doc)."""

    def tokenize_pairs(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "frozen": [], "x0_ids": []}
        for text, source in zip(batch[text_field], batch[source_field]):
            if text is None or source is None:
                continue
            x1 = [anchor, *tokenizer(text, add_special_tokens=False)["input_ids"], eos]
            x0 = [*tokenizer(source, add_special_tokens=False)["input_ids"], eos]
            if max(len(x1), len(x0) + 1) <= max_length:
                out["input_ids"].append(x1)
                out["frozen"].append(1)
                out["x0_ids"].append(x0)
        return out

    kwargs = {"num_proc": num_proc} if isinstance(ds, Dataset) and num_proc else {}
    return ds.map(tokenize_pairs, batched=True, batch_size=1000, remove_columns=names, **kwargs)
