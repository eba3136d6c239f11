"""The Responses API (``POST /v1/responses``), text subset: the answer and its stream events.

Design decisions:
- A Responses request becomes a chat (``ResponsesRequest.chat_messages``: ``instructions`` is a
  system message put first, then ``input``; a string is one user message, messages keep their
  roles, text parts joined by newlines). It then runs exactly as a chat completion with
  ``n = 1``; the engine part lives in ``OpenAIServing.responses``.
- Nothing is stored, so ``store: true``, ``previous_response_id`` and ``background: true`` are
  refused, as are tools, ``include``, reasoning settings and non-text formats: a 400 naming the
  field, never a silent success (``ResponsesRequest.check_supported``).
- One builder makes the whole answer and the stream's events, from the same text and usage.
- Streaming follows OpenAI's event sequence, with named ``event:`` lines as OpenAI sends them:
  ``response.created``, ``response.in_progress``, then (after the CTMC finishes, since an Edit
  Flow rewrites text anywhere) ``response.output_item.added``, ``response.content_part.added``,
  one ``response.output_text.delta`` with the whole text, the matching ``.done`` events, and
  ``response.completed`` (or ``response.incomplete`` when ``max_output_tokens`` cut the text).
  ``: keep-alive`` comments keep the connection open meanwhile. A failure after the start is a
  ``response.failed`` event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .protocol import ResponsesRequest, Usage


def response_usage(usage: Usage) -> dict[str, Any]:
    """Chat usage (prompt / completion tokens, ``editflow``) in the Responses shape."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
        "editflow": None if usage.editflow is None else usage.editflow.model_dump(),
    }


class ResponseBuilder:
    """The Response object and stream events of one request (ids and times fixed at creation)."""

    def __init__(self, req: ResponsesRequest, model: str, temperature: float, top_p: float):
        self.req, self.model = req, model
        self.temperature, self.top_p = temperature, top_p
        self.id = "resp_" + uuid.uuid4().hex
        self.message_id = "msg_" + uuid.uuid4().hex
        self.created_at = int(time.time())
        self.sequence = 0

    def response(
        self,
        status: str,
        text: str | None = None,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The Response object; ``text`` is the answer once there is one."""
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if status == "completed" else None,
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": self.req.instructions,
            "max_output_tokens": self.req.max_output_tokens,
            "model": self.model,
            "output": [] if text is None else [self.message(text, status)],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": None,
            "store": False,
            "temperature": self.temperature,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": self.top_p,
            "truncation": "disabled",
            "metadata": self.req.metadata or {},
            **({"usage": usage} if usage is not None else {}),  # the schema has no null here
            **({"user": self.req.user} if self.req.user is not None else {}),
        }

    def message(self, text: str, status: str) -> dict[str, Any]:
        """The output message item holding ``text``."""
        return {
            "id": self.message_id,
            "type": "message",
            "status": "incomplete" if status == "incomplete" else "completed",
            "role": "assistant",
            "content": [self.part(text)],
        }

    @staticmethod
    def part(text: str) -> dict[str, Any]:
        """An ``output_text`` content part."""
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    @staticmethod
    def status(finish_reason: str) -> str:
        """The response status of a finish reason: "incomplete" at the token cap."""
        return "incomplete" if finish_reason == "length" else "completed"

    def event(self, kind: str, **fields: Any) -> str:
        """One SSE event: a named ``event:`` line and its JSON data with a sequence number."""
        data = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def start_events(self) -> Iterator[str]:
        """The stream's first events: ``response.created`` and ``response.in_progress``."""
        yield self.event("response.created", response=self.response("in_progress"))
        yield self.event("response.in_progress", response=self.response("in_progress"))

    def final_events(self, text: str, finish_reason: str, usage: Usage) -> Iterator[str]:
        """The events from the output item's creation to ``response.completed``."""
        status = self.status(finish_reason)
        at = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        item = {**self.message("", "in_progress"), "status": "in_progress", "content": []}
        yield self.event("response.output_item.added", output_index=0, item=item)
        yield self.event("response.content_part.added", **at, part=self.part(""))
        yield self.event("response.output_text.delta", **at, delta=text, logprobs=[])
        yield self.event("response.output_text.done", **at, text=text, logprobs=[])
        yield self.event("response.content_part.done", **at, part=self.part(text))
        done_item = self.message(text, status)
        yield self.event("response.output_item.done", output_index=0, item=done_item)
        final = self.response(status, text, response_usage(usage))
        yield self.event(f"response.{status}", response=final)

    def failed_event(self, code: str, message: str) -> str:
        """``response.failed`` with the error's code and message."""
        error = {"code": code, "message": message}
        return self.event("response.failed", response=self.response("failed", error=error))
