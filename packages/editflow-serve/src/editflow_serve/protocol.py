"""Pydantic models of the OpenAI API subset that editflow-serve speaks (SERVING.md).

Design decisions:
- Requests allow extra fields (``extra="allow"``): unknown ones are ignored and logged once by
  the serving layer, never rejected. Every known field is range-checked here, so a bad value is
  a 400 naming the parameter (the app maps validation errors to the OpenAI envelope, not 422).
- Edit Flow settings are plain top-level fields (the SDK's ``extra_body``): ``steps``, ``x0``,
  ``mask_length``, ``top_k``, ``idle_stop_steps``, ``trace``.
- Responses are built as dicts in ``serving.py``; the models below document their shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_N = 16
MAX_STEPS = 4096
MAX_TOKENS = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1

Stop = (
    str | Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=4)]
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class TextPart(_Request):
    """A content part; only ``{"type": "text"}`` is supported."""

    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    """One chat message. ``developer`` is treated as ``system``."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(_Request):
    include_usage: bool = False


class EditFlowKnobs(_Request):
    """Edit Flow sampling settings, accepted as extra body fields on both endpoints."""

    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="tau-leaping steps")
    x0: str | None = Field(
        None, max_length=64, description="x0 spec, e.g. 'empty' or 'masks[length:32]'"
    )
    mask_length: int | None = Field(
        None, ge=0, le=MAX_TOKENS, description="shorthand for x0 'masks[length:N]' (0: empty)"
    )
    top_k: int | None = Field(
        None, ge=0, le=MAX_TOKENS, description="keep the k most likely tokens"
    )
    idle_stop_steps: int | None = Field(
        None, ge=0, le=MAX_STEPS, description="finish after this many edit-free steps (late in t)"
    )
    trace: bool = Field(False, description="return / stream the per-step edit operations")


class _Common(EditFlowKnobs):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: Stop | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)


class ChatCompletionRequest(_Common):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None


class CompletionRequest(_Common):
    """POST /v1/completions. ``prompt``: a string, strings, token ids, or lists of token ids."""

    prompt: (
        str
        | Annotated[list[str], Field(min_length=1)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1)]
    )
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None


class EditFlowUsage(BaseModel):
    """Edit Flow statistics, summed over the choices of a request."""

    steps: int
    forward_passes: int
    insertions: int
    deletions: int
    substitutions: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    editflow: EditFlowUsage | None = None


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The envelope of every non-2xx answer."""

    error: ErrorBody
