"""What the HTTP side needs from an engine: the ``EngineClient`` protocol and its data types.

``OpenAIServing`` and ``create_app`` are written against ``EngineClient`` only; ``engine.Engine``
(the batching engine thread) implements it, and so does the test suite's scripted fake. Nothing
here imports the model code.

Design decisions:
- The protocol is the whole surface: lifecycle (``start``, ``stop``), readiness (``state``,
  ``error``, ``setup``, ``capacity``) and work (``submit``, ``cancel``). The serving layer reads
  these members directly; it never probes an engine for optional ones.
- It is ``runtime_checkable`` so a test can assert that both implementations satisfy it;
  ``isinstance`` only checks that the members exist, so the suite also compares signatures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from editflow_core import GenerationResult, SamplingParams, TraceStep
from editflow_models import GenerationSetup

#: ``on_trace(index, steps)``: new trace steps of the sequence at ``index`` of a ``submit`` call
TraceCallback = Callable[[int, list[TraceStep]], None]

#: the states an engine goes through; see ``EngineClient.state``
ENGINE_STATES = ("loading", "ready", "draining", "stopped", "fault")


class EngineError(Exception):
    """The engine cannot take or finish a request; ``status`` is the HTTP status to answer."""

    status = 503

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class QueueFull(EngineError):
    """Too many sequences are waiting (answered with 429 and Retry-After)."""

    status = 429


@dataclass
class SeqRequest:
    """One sequence to generate: given prefix, initial x0, sampling settings, given suffix.

    x0 is a draw or a draft to edit; the suffix fills in the middle (EOS after a draft).
    """

    prefix: list[int]
    x0: list[int]
    params: SamplingParams
    suffix: list[int] = field(default_factory=list)


@runtime_checkable
class EngineClient(Protocol):
    """An engine as the HTTP side uses it.

    ``state`` is one of ``ENGINE_STATES``: "loading" -> "ready" -> "draining" (no new
    requests) -> "stopped", or "fault" (``error`` says why). ``setup`` is the loaded model,
    tokenizer and generation rules (``None`` until loaded). ``capacity`` is the most sequences
    one request may have (running + queued slots).
    """

    @property
    def state(self) -> str:
        """One of ``ENGINE_STATES``."""
        ...

    @property
    def error(self) -> str | None:
        """Why the engine is in "fault", else ``None``."""
        ...

    @property
    def setup(self) -> GenerationSetup | None:
        """The loaded model, tokenizer and generation rules (``None`` until loaded)."""
        ...

    @property
    def capacity(self) -> int:
        """The most sequences one request may have (running + queued slots)."""
        ...

    def start(self) -> None:
        """Start the engine (loading the model may go on after this returns); idempotent."""
        ...

    def stop(self) -> None:
        """Stop the engine; requests still in flight fail with ``EngineError``."""
        ...

    def submit(
        self, seqs: Sequence[SeqRequest], on_trace: TraceCallback | None = None
    ) -> list[tuple[int, asyncio.Future[GenerationResult]]]:
        """Queue one request's sequences; (key, future) per sequence, in order.

        Called on the event loop. Futures resolve to ``GenerationResult`` or raise
        ``EngineError``. Raises ``EngineError`` when not ready, ``QueueFull`` when full.
        """
        ...

    def cancel(self, keys: Sequence[int]) -> None:
        """Drop these sequences (their futures may never resolve)."""
        ...
