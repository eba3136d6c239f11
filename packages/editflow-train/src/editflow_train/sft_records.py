"""SFT sequences from alpaca and chat records; the prompt is frozen and never supervised.

A record becomes ``x1 = [anchor] + prompt + response + [EOS]`` with ``frozen = 1 + len(prompt)``:

- chat records (a ``messages`` list of {"role", "content"}): the prompt is every message before
  the last one, rendered with ``add_generation_prompt=True``; the last message (an assistant
  turn) is the response.
- alpaca records (``instruction``, optional ``input``, ``output``): one user message
  ``instruction`` (+ blank line + ``input`` when non-empty), response ``output``.

The prompt text comes from ``editflow_models.prompting`` (the tokenizer's chat template, or
its documented default), the same functions serving uses, so a served model sees prompts as
it was trained on them. Prompt and response are tokenized separately, as serving does.

Truncation never cuts a prompt: a record whose prompt (+ anchor + one response token) exceeds
``max_length`` is dropped; a longer response is dropped (``drop``) or cut at its end without
EOS (``truncate_response``). Drops are counted and reported.
"""

from __future__ import annotations

import logging

from datasets import Dataset, IterableDataset
from editflow_models import encode_text, render_chat
from transformers import PreTrainedTokenizerBase

from editflow_train.chunking import column_names

logger = logging.getLogger(__name__)


def record_messages(record: dict) -> tuple[list[dict], str]:
    """(prompt messages, response text) of an alpaca or chat record.

    Raises:
        ValueError: the record has neither ``messages`` nor ``instruction`` / ``output``, or its
            last message is not from the assistant.
    """
    if record.get("messages"):
        messages = list(record["messages"])
        if messages[-1]["role"] != "assistant":
            raise ValueError(
                "a chat record must end with an assistant message, "
                f"got role {messages[-1]['role']!r}"
            )
        return messages[:-1], messages[-1]["content"]
    if record.get("instruction") is not None and record.get("output") is not None:
        user = record["instruction"]
        if record.get("input"):
            user = f"{user}\n\n{record['input']}"
        return [{"role": "user", "content": user}], record["output"]
    raise ValueError(
        "an sft record needs 'messages' (chat) or 'instruction' + 'output' (alpaca); "
        f"got keys {sorted(record)}"
    )


def sft_example(
    record: dict,
    tokenizer: PreTrainedTokenizerBase,
    *,
    anchor_token_id: int,
    eos_token_id: int,
    max_length: int,
    truncation: str,
) -> dict | None:
    """``{"input_ids", "frozen"}`` for one record, or ``None`` when the policy drops it."""
    messages, response = record_messages(record)
    prompt = encode_text(tokenizer, render_chat(tokenizer, messages, add_generation_prompt=True))
    answer = encode_text(tokenizer, response) + [eos_token_id]
    frozen = 1 + len(prompt)
    if frozen + 1 > max_length:
        return None  # the prompt itself does not fit: never cut it
    if frozen + len(answer) > max_length:
        if truncation != "truncate_response":
            return None
        answer = answer[: max_length - frozen]
    return {"input_ids": [anchor_token_id, *prompt, *answer], "frozen": frozen}


def sft_dataset(
    ds: Dataset | IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    anchor_token_id: int,
    eos_token_id: int,
    max_length: int,
    truncation: str = "drop",
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Map alpaca / chat records to SFT examples, dropping (and reporting) what does not fit.

    Raises:
        ValueError: records of neither format; every record dropped (the message says why).
    """
    names = column_names(ds)

    def convert(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "frozen": []}
        for i in range(len(batch[names[0]])):
            ex = sft_example(
                {k: batch[k][i] for k in names},
                tokenizer,
                anchor_token_id=anchor_token_id,
                eos_token_id=eos_token_id,
                max_length=max_length,
                truncation=truncation,
            )
            if ex is not None:
                out["input_ids"].append(ex["input_ids"])
                out["frozen"].append(ex["frozen"])
        return out

    kwargs = {"num_proc": num_proc} if isinstance(ds, Dataset) and num_proc else {}
    mapped = ds.map(convert, batched=True, remove_columns=names, **kwargs)
    if isinstance(ds, Dataset):
        dropped = len(ds) - len(mapped)
        if len(mapped) == 0:
            raise ValueError(
                f"every one of the {len(ds)} sft records exceeds max_length={max_length} "
                f"(policy {truncation!r}; prompts are never cut): raise --max_length"
            )
        if dropped:
            logger.warning(
                "sft: dropped %d of %d records longer than max_length=%d (policy %r)",
                dropped,
                len(ds),
                max_length,
                truncation,
            )
    return mapped
