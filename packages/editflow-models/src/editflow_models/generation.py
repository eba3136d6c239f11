"""From a checkpoint to text: everything sampling needs to know about a model and tokenizer.

``GenerationSetup`` gathers, once, what the core sampler needs from an Edit Flow checkpoint
(scheduler, x0 sampler, anchor / EOS / pad / mask ids, tokens never to draw, context length) so
the CLI, the server and the trainer's end-of-run samples build prompts and samplers the same way:

    setup = load_generation_setup("runs/quickstart/checkpoint-final")
    sampler = setup.sampler()
    start = setup.start(setup.text_prefix("ROMEO:"), seed=0)  # x0 from the seed
    start.add_to(sampler, SamplingParams(seed=0))
    (result,) = sampler.step() ...   # or sampler.generate(...)
    print(setup.decode(result.completion))

``start`` owns what a sequence starts from, so the CLI and the server give the same text for
the same seed: the prefix, x0 (a draw of the model's x0 sampler seeded from the sequence's
seed, or a draft to edit) and a suffix to fill up to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from editflow_core import (
    BatchSampler,
    NLLBound,
    SamplingParams,
    Scheduler,
    X0Sampler,
    make_scheduler,
    make_x0_sampler,
    nll_bound,
)

from editflow_models.dtypes import resolve_dtype
from editflow_models.prompting import encode_text, eos_token_id, prefix_ids, render_chat
from editflow_models.special_tokens import anchor_token_id, banned_token_ids

#: a sequence's x0 generator is seeded with ``seed ^ X0_SEED_MIX`` (its sampling generator
#: takes ``seed`` itself, so the two streams differ)
X0_SEED_MIX = 0x5DEECE66D


@dataclass
class Start:
    """What a sequence starts from: ``BatchSampler.add``'s prefix, x0 and suffix.

    Attributes:
        prefix: [anchor] + prompt tokens (given).
        x0: the tokens between, at t = 0: a draw of the model's x0, or a draft.
        suffix: given tokens after: a fill-in-the-middle suffix and EOS, or EOS alone after a
            draft (an edited text ends there, as in training); empty when neither.
        draft: whether x0 is a draft (for counting accepted prediction tokens).
    """

    prefix: list[int]
    x0: list[int]
    suffix: list[int] = field(default_factory=list)
    draft: bool = False

    def add_to(self, sampler: BatchSampler, params: SamplingParams, key: Any = None) -> None:
        """Queue this sequence on ``sampler``."""
        sampler.add(self.prefix, self.x0, params, key, suffix=self.suffix)


@dataclass
class GenerationSetup:
    """A model, its tokenizer and the sampling facts read from its config.

    Attributes:
        model: an ``EditFlowModel`` (or any ``editflow_core.RateModel`` with a ``config``).
        tokenizer: its tokenizer.
        scheduler: the kappa scheduler it was trained with.
        x0: its source distribution.
        anchor_token_id, eos_token_id, mask_token_id, pad_token_id: special ids.
        vocab_size: V. max_length: the longest sequence the backbone accepts.
        banned_token_ids: special tokens Q never draws (everything special but EOS).
    """

    model: Any
    tokenizer: Any
    scheduler: Scheduler
    x0: X0Sampler
    anchor_token_id: int
    eos_token_id: int | None
    mask_token_id: int | None
    pad_token_id: int
    vocab_size: int
    max_length: int
    banned_token_ids: list[int]

    @property
    def has_reverse_rates(self) -> bool:
        """Whether the model predicts reverse rates, which the corrector needs.

        ``SamplingParams.correction`` > 0 needs them (a model trained with ``reverse_rates``).
        """
        return bool(getattr(self.model, "has_reverse_rates", False))

    def sampler(
        self, device: str | torch.device | None = None, max_tokens_per_forward: int = 0
    ) -> BatchSampler:
        """A fresh ``BatchSampler`` for this model, on ``device`` (default: the model's).

        ``max_tokens_per_forward`` > 0 groups rows of similar length into several forwards.
        """
        return BatchSampler(
            self.model,
            self.scheduler,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id,
            max_length=self.max_length,
            banned_token_ids=self.banned_token_ids,
            device=device if device is not None else getattr(self.model, "device", "cpu"),
            max_tokens_per_forward=max_tokens_per_forward,
            x0_kind=self.x0.kind,
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
        )

    def draw_x0(
        self, generator: torch.Generator | None = None, x0_sampler: X0Sampler | None = None
    ) -> list[int]:
        """The initial tokens after the prefix, from the model's x0 sampler (or another)."""
        return (
            (x0_sampler or self.x0)
            .sample(
                generator,
                mask_token_id=self.mask_token_id,
                vocab_size=self.vocab_size,
                exclude_ids=self.banned_token_ids,
            )
            .tolist()
        )

    def start(
        self,
        prefix: Sequence[int],
        seed: int,
        *,
        draft: str | Sequence[int] | None = None,
        suffix: str | Sequence[int] | None = None,
        x0_sampler: X0Sampler | None = None,
    ) -> Start:
        """A sequence's start (see ``Start``), the same for the CLI and the server.

        Args:
            prefix: [anchor] + prompt tokens (``text_prefix`` / ``chat_prefix``).
            seed: the sequence's seed; x0 is drawn with ``seed ^ X0_SEED_MIX``.
            draft: text (or tokens) to edit instead of a drawn x0; a given EOS follows it (in
                training an edited text ends with EOS), so ``x0_kept`` counts draft tokens only.
            suffix: text (or tokens) that must follow the generated middle; EOS is appended.
            x0_sampler: a different noise x0 than the model's (the server's ``x0`` field).
        """
        end = [self.eos_token_id] if self.eos_token_id is not None else []
        tail = [] if suffix is None else [*self._tokens(suffix), *end]
        if draft is not None:
            return Start(list(prefix), self._tokens(draft), tail or end, draft=True)
        gen = torch.Generator().manual_seed(seed ^ X0_SEED_MIX)
        x0 = self.draw_x0(gen, x0_sampler)
        return Start(list(prefix), x0, tail)

    def _tokens(self, text: str | Sequence[int]) -> list[int]:
        return encode_text(self.tokenizer, text) if isinstance(text, str) else list(text)

    def text_prefix(self, prompt: str = "") -> list[int]:
        """[anchor] + the prompt's tokens (a raw continuation)."""
        return prefix_ids(self.anchor_token_id, self.tokenizer, prompt)

    def chat_prefix(self, messages: Sequence[dict]) -> list[int]:
        """[anchor] + the chat template rendered with the assistant's turn opened."""
        return prefix_ids(
            self.anchor_token_id, self.tokenizer, render_chat(self.tokenizer, messages)
        )

    def nll_bound(
        self,
        x1s: Sequence[Sequence[int]],
        frozen: Sequence[int] | None = None,
        *,
        samples: int = 8,
        seed: int = 0,
        batch_size: int = 64,
        progress=None,
    ) -> NLLBound:
        """An upper bound on -log p of each token sequence (``editflow_core.nll_bound``).

        With this model's scheduler, x0 source and banned tokens.

        Args:
            x1s: sequences that start with their frozen prefix ([anchor] + prompt).
            frozen: prefix lengths (default 1: the anchor).
            samples: Monte Carlo samples per sequence (>= 2 for a standard error).
            seed: seeds the coupling and time draws, so a number is reproducible.
            batch_size: rows per forward pass.
            progress: optional callable(done_rows, total_rows).
        """
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            return nll_bound(
                self.model,
                self.scheduler,
                x1s,
                self.x0,
                frozen=frozen,
                samples=samples,
                mask_token_id=self.mask_token_id,
                vocab_size=self.vocab_size,
                exclude_ids=self.banned_token_ids,
                banned_token_ids=self.banned_token_ids,
                pad_token_id=self.pad_token_id,
                batch_size=batch_size,
                generator=torch.Generator().manual_seed(seed),
                device=getattr(self.model, "device", None),
                progress=progress,
            )
        finally:
            if was_training:
                self.model.train()

    def text_chars(self, x1: Sequence[int], frozen: int = 1) -> int:
        """Characters of the text an x1 holds after its prefix (special tokens dropped)."""
        return len(self.decode(x1[frozen:]))

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of generated tokens, special tokens dropped."""
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)


def generation_setup(model: Any, tokenizer: Any) -> GenerationSetup:
    """Read the sampling facts from ``model.config`` and ``tokenizer``.

    Raises:
        ValueError: the config has no anchor token and the tokenizer no BOS / CLS to use.
    """
    cfg = model.config
    anchor = cfg.anchor_token_id if cfg.anchor_token_id is not None else anchor_token_id(tokenizer)
    if anchor is None:
        raise ValueError(
            "the model config has no anchor_token_id and the tokenizer no BOS / CLS token"
        )
    eos = eos_token_id(tokenizer)
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else (tokenizer.pad_token_id or 0)
    text = cfg.get_text_config()
    return GenerationSetup(
        model=model,
        tokenizer=tokenizer,
        scheduler=make_scheduler(cfg.scheduler),
        x0=make_x0_sampler(cfg.x0),
        anchor_token_id=anchor,
        eos_token_id=eos,
        mask_token_id=cfg.mask_token_id,
        pad_token_id=pad,
        vocab_size=text.vocab_size,
        max_length=getattr(text, "max_position_embeddings", None) or 4096,
        banned_token_ids=banned_token_ids(tokenizer, eos),
    )


def load_generation_setup(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
) -> GenerationSetup:
    """Load an Edit Flow checkpoint folder (model + tokenizer) for sampling, in eval mode.

    Args:
        path: the checkpoint folder (``config.json``, weights, tokenizer).
        device: where the model goes.
        dtype: the weights' dtype: None / "auto" (as saved), "fp32", "bf16", "fp16" or a
            torch dtype (``editflow_models.dtypes``).

    Raises:
        FileNotFoundError: ``path`` is not a folder holding a ``config.json``.
        ValueError: an unknown dtype name.
    """
    from transformers import AutoModel, AutoTokenizer

    import editflow_models  # noqa: F401  (registers the Auto classes)

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no Edit Flow checkpoint at {folder} (no config.json there)")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=resolve_dtype(dtype))
    return generation_setup(model.eval().to(device), tokenizer)
