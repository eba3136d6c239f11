"""How text becomes the frozen prefix of an Edit Flow sequence, shared by training and serving.

Every sequence starts with the anchor token (``config.anchor_token_id``: BOS / CLS), then the
prompt, then the generated text; a finished text ends with the EOS token. Training (SFT) and
serving build prefixes with the same functions here, so a served model sees prompts exactly as
it was trained on them.

Chat: the tokenizer's own chat template when it has one, else ``DEFAULT_CHAT_TEMPLATE``:

    <|system|>
    You are helpful.
    <|user|>
    Hi!
    <|assistant|>
    (the response follows here)
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def chat_template(tokenizer) -> str:
    """The tokenizer's chat template, or ``DEFAULT_CHAT_TEMPLATE`` when it has none."""
    return getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE


def render_chat(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """Render chat ``messages`` ({"role", "content"} dicts, content a string) to prompt text."""
    return tokenizer.apply_chat_template(
        list(messages),
        chat_template=chat_template(tokenizer),
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without any special tokens the tokenizer would add."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prefix_ids(anchor_token_id: int, tokenizer, prompt: str = "") -> list[int]:
    """The frozen prefix: [anchor] + the prompt's tokens."""
    return [anchor_token_id, *encode_text(tokenizer, prompt)] if prompt else [anchor_token_id]


def eos_token_id(tokenizer) -> int | None:
    """The id that ends a text: the tokenizer's EOS, else its SEP (BERT family), else None."""
    eos = getattr(tokenizer, "eos_token_id", None)
    return eos if eos is not None else getattr(tokenizer, "sep_token_id", None)
