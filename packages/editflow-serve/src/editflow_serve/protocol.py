"""Pydantic models of the OpenAI API subset that editflow-serve speaks (see the package README).

Design decisions:
- Requests allow extra fields (``extra="allow"``): unknown ones are ignored and logged (a
  bounded number) by the serving layer, never rejected. Every known field is range-checked
  here, so a bad value is a 400 naming the parameter (the app maps validation errors to the
  OpenAI envelope, not 422).
- As in OpenAI's API, ``null`` in an optional field means its default (``_Request`` drops such
  nulls before validation and the schema says the field is nullable). Types are strict: ``0``
  is not a boolean and ``"2"`` not an integer.
- Text that reaches the tokenizer (``Text``) must be valid Unicode: a lone surrogate is a 400.
- Chat messages are a union tagged by ``role``; only assistant messages may omit content.
- Edit Flow settings are plain top-level fields (the SDK's ``extra_body``): ``steps``, ``x0``,
  ``mask_length``, ``top_k``, ``idle_stop_steps``, ``guidance_scale``, ``correction``,
  ``trace``.
- A request maps itself onto the sampler: ``check_supported`` refuses (400 naming the field)
  what the server cannot honour, ``chat_messages`` / ``prompt_list`` give the prompt,
  ``max_new_tokens``, ``x0_request``, ``stop_strings``, ``choice_seeds`` and
  ``sampling_params`` give each sequence's settings. Checks that need the server (model name,
  capacity, the tokenizer, the context) are ``serving.py``'s.
- A seed fixes the answer: choice j uses seed ``(seed + j * 0x9E3779B97F4A7C15) mod 2^63``.
- Answers are the models at the end: chat and text completions are built by one shape per
  endpoint (``ChatCompletionShape``, ``CompletionShape``), the whole answer and the stream's
  chunks from the same choices; they also document the answers in the OpenAPI document. Fields
  left out of a constructor are left out of the JSON (``answer_json``), so an optional field
  (``editflow_trace``, a chunk's ``usage``) appears only when given, ``null`` included.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from editflow_core import GenerationResult, SamplingParams
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from .errors import invalid, not_honoured
from .settings import ServeSettings, sampling_default

MAX_N = 16
MAX_STEPS = 4096
MAX_TOKENS = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
SEED_STRIDE = 0x9E3779B97F4A7C15  # choice j's seed: (seed + j * SEED_STRIDE) mod 2^63


def no_lone_surrogate(text: str) -> str:
    """``text`` unchanged, or ValueError when it holds a lone UTF-16 surrogate (not Unicode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"the text holds a lone surrogate ({text[err.start]!r} at index {err.start}), which "
            "is not valid Unicode; send well-formed UTF-8 (escape pairs \\ud83d\\ude00 only)"
        ) from None
    return text


Text = Annotated[str, AfterValidator(no_lone_surrogate)]
Stop = (
    str | Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=4)]
)
Seed = Annotated[
    int,
    Field(ge=SEED_MIN, le=SEED_MAX),
    WithJsonSchema({"type": "integer", "minimum": SEED_MIN, "maximum": SEED_MAX}),
]


def _schema_extra(schema: dict[str, Any], cls: type[_Request]) -> None:
    """Mark fields whose null means the default as nullable; add the class's ``schema_rules``."""
    props = schema.get("properties", {})
    for name, field in cls.model_fields.items():
        prop = props.get(name)
        if prop is None or field.is_required() or field.default is None or "anyOf" in prop:
            continue
        meta = {k: prop.pop(k) for k in ("title", "description", "default") if k in prop}
        props[name] = {"anyOf": [prop, {"type": "null"}], **meta}
    schema.update(cls.schema_rules)


class _Request(BaseModel):
    model_config = ConfigDict(
        extra="allow", allow_inf_nan=False, strict=True, json_schema_extra=_schema_extra
    )
    #: JSON Schema keywords the serving layer enforces beyond the fields (for the OpenAPI doc)
    schema_rules: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            k: v
            for k, v in data.items()
            if v is not None or k not in fields or fields[k].is_required()
        }


class TextPart(_Request):
    """A content part; only ``{"type": "text"}`` is supported."""

    type: Literal["text"]
    text: Text


Content = Text | list[TextPart]


def content_text(content: str | list[Any] | None) -> str:
    """A message's content as one string (text parts joined by newlines; null: empty)."""
    if isinstance(content, list):
        return "\n".join(p.text for p in content)
    return content or ""


def chat_role(role: str) -> str:
    """The role a message has in the chat template (``developer`` is ``system``)."""
    return "system" if role == "developer" else role


class SystemMessage(_Request):
    """A system message (``developer`` is treated as ``system``)."""

    role: Literal["system", "developer"]
    content: Content
    name: str | None = None


class UserMessage(_Request):
    """A user's turn."""

    role: Literal["user"]
    content: Content
    name: str | None = None


class AssistantMessage(_Request):
    """An earlier answer; its content may be null (OpenAI allows it with tool calls)."""

    role: Literal["assistant"]
    content: Content | None = None
    name: str | None = None
    refusal: str | None = None


ChatMessage = Annotated[SystemMessage | UserMessage | AssistantMessage, Field(discriminator="role")]
MESSAGE_ROLES = ("system", "developer", "user", "assistant")


class StreamOptions(_Request):
    """Streaming options: ``include_usage`` adds a last chunk with the usage."""

    include_usage: bool = False


class EditFlowKnobs(_Request):
    """Edit Flow sampling settings, accepted as extra body fields on every endpoint."""

    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="tau-leaping steps")
    x0: str | None = Field(
        None,
        max_length=64,
        description="x0 spec, e.g. 'empty' or 'masks[length:32]'; its length (or mean) must "
        "fit in the context after the prompt (else 400). Not together with mask_length.",
    )
    mask_length: int | None = Field(
        None,
        ge=0,
        le=MAX_TOKENS,
        description="shorthand for x0 'masks[length:N]' (0: empty); N must fit in the context "
        "after the prompt (else 400). Not together with x0.",
    )
    top_k: int | None = Field(
        None, ge=0, le=MAX_TOKENS, description="keep the k most likely tokens"
    )
    idle_stop_steps: int | None = Field(
        None, ge=0, le=MAX_STEPS, description="finish after this many edit-free steps (late in t)"
    )
    guidance_scale: float | None = Field(
        None,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="classifier-free guidance g >= 0 for the prompt (0: off); needs a model "
        "trained with cond_drop > 0",
    )
    correction: float | None = Field(
        None,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="predictor-corrector strength c >= 0 (0: off): each step leaps forward to "
        "t + h (1 + a_t), a_t = c t (1 - t), then back with the model's reverse rates (one more "
        "forward per corrected step); needs a model trained with reverse_rates (else 400)",
    )
    trace: bool = Field(False, description="return / stream the per-step edit operations")

    if TYPE_CHECKING:  # declared by every request class that has these knobs
        temperature: float | None
        top_p: float | None
        seed: int | None
        stop: str | list[str] | None

        @property
        def n(self) -> int:
            """Choices per prompt."""
            ...

    def check_supported(self) -> None:
        """400 naming the first field this server cannot honour (checked before any work)."""
        if self.x0 is not None and self.mask_length is not None:
            raise invalid("x0", "give x0 or mask_length, not both")

    def x0_request(self) -> tuple[str, str] | None:
        """(x0 spec, the field that asked for it), or None: the server's default x0."""
        if self.mask_length is not None:
            spec = f"masks[length:{self.mask_length}]" if self.mask_length else "empty"
            return spec, "mask_length"
        if self.x0 is not None:
            return self.x0, "x0"
        return None

    def stop_strings(self) -> list[str]:
        """``stop`` as a list (empty: none); an empty string is a 400."""
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if any(not x for x in stop):
            raise invalid("stop", "stop strings must not be empty")
        return stop

    def choice_seeds(self) -> list[int]:
        """The seed of each of the ``n`` choices (from ``seed``, else drawn at random)."""
        base = self.seed if self.seed is not None else secrets.randbits(63)
        return [(base + j * SEED_STRIDE) % 2**63 for j in range(self.n)]

    def sampling_params(
        self, defaults: ServeSettings, *, max_new_tokens: int, seed: int
    ) -> SamplingParams:
        """One sequence's sampler settings: this request's fields, else the server's defaults.

        ``top_p: 0`` (allowed by OpenAI) keeps only the most likely token: greedy.
        """
        top_p = defaults.top_p if self.top_p is None else self.top_p
        temperature = defaults.temperature if self.temperature is None else self.temperature
        if top_p <= 0:
            top_p, temperature = 1.0, 0.0
        return SamplingParams(
            steps=self.steps or defaults.steps,
            temperature=temperature,
            top_k=defaults.top_k if self.top_k is None else self.top_k,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            trace=self.trace,
            idle_stop_steps=defaults.idle_stop_steps
            if self.idle_stop_steps is None
            else self.idle_stop_steps,
            guidance_scale=self.guidance_scale or sampling_default("guidance_scale"),
            correction=self.correction or sampling_default("correction"),
        )


_X0_XOR_MASK_LENGTH = {
    "not": {
        "required": ["x0", "mask_length"],
        "properties": {"x0": {"type": "string"}, "mask_length": {"type": "integer"}},
    }
}
_STREAM_OPTIONS_NEED_STREAM = {
    "if": {
        "required": ["stream_options"],
        "properties": {"stream_options": {"type": "object"}},
    },
    "then": {"required": ["stream"], "properties": {"stream": {"const": True}}},
}
_NOT_HONOURED = (
    "Refused with 400 unless neutral: the Edit Flow sampler cannot apply it, and the server "
    "never pretends to."
)


class _Common(EditFlowKnobs):
    schema_rules: ClassVar[dict[str, Any]] = {**_X0_XOR_MASK_LENGTH, **_STREAM_OPTIONS_NEED_STREAM}

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: Stop | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: float | None = Field(
        None, ge=-2, le=2, description=f"Only 0 is accepted. {_NOT_HONOURED}"
    )
    frequency_penalty: float | None = Field(
        None, ge=-2, le=2, description=f"Only 0 is accepted. {_NOT_HONOURED}"
    )
    logit_bias: dict[str, float] | None = Field(
        None, description=f"Only {{}} is accepted. {_NOT_HONOURED}"
    )

    def check_supported(self) -> None:
        super().check_supported()
        if self.stream_options is not None and not self.stream:
            raise invalid("stream_options", "stream_options is only allowed when stream is true")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise not_honoured(name, f"the Edit Flow sampler has no penalties; omit {name}")
        if self.logit_bias:
            raise not_honoured("logit_bias", "the Edit Flow sampler has no logit bias")

    @property
    def include_usage(self) -> bool:
        """A stream ends with a usage chunk (``stream_options.include_usage``)."""
        return bool(self.stream_options and self.stream_options.include_usage)


class Prediction(_Request):
    """Predicted output: for an Edit Flow model, the draft the answer is edited from (x0)."""

    type: str
    content: str | list[TextPart]


class ChatCompletionRequest(_Common):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    prediction: Prediction | None = Field(
        None,
        description="A draft of the answer ({type: content}): the model starts from it (x0) and "
        "edits it; usage.completion_tokens_details counts its accepted and rejected tokens.",
    )
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    modalities: list[str] | None = Field(
        None, description=f'Only ["text"] is accepted. {_NOT_HONOURED}'
    )
    audio: dict[str, Any] | None = Field(None, description=f"Only null. {_NOT_HONOURED}")

    def check_supported(self) -> None:
        """400 for non-text output and logprobs, on top of the common checks."""
        super().check_supported()
        if self.modalities is not None and set(self.modalities) != {"text"}:
            raise not_honoured("modalities", 'Edit Flow models only write text; use ["text"]')
        if self.audio is not None:
            raise not_honoured("audio", "Edit Flow models only write text; omit audio")
        if self.logprobs or self.top_logprobs is not None:
            raise invalid("logprobs", "logprobs are not supported by Edit Flow models")
        if self.response_format is not None and self.response_format.get("type", "text") != "text":
            raise invalid("response_format", "only response_format type 'text' is supported")
        if self.tools:
            raise invalid("tools", "tools are not supported")
        if self.prediction is not None and self.prediction.type != "content":
            raise invalid(
                "prediction",
                f"prediction type {self.prediction.type!r} is not supported; use 'content'",
            )

    def draft(self) -> str | None:
        """The prediction's text (the draft to edit; text parts are concatenated), or None."""
        if self.prediction is None:
            return None
        content = self.prediction.content
        return content if isinstance(content, str) else "".join(p.text for p in content)

    def chat_messages(self) -> list[dict[str, str]]:
        """The messages as the chat template takes them ({"role", "content"}, content text)."""
        return [
            {"role": chat_role(m.role), "content": content_text(m.content)} for m in self.messages
        ]

    def max_new_tokens(self) -> int | None:
        """The cap on generated tokens asked for (None: the server's default)."""
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Common):
    """POST /v1/completions.

    ``prompt``: a string, strings, token ids, or lists of token ids (null: the empty prompt).
    """

    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1)]
        | None
    )
    echo: bool = False
    logprobs: int | None = None
    suffix: Text | None = Field(
        None,
        description="Fill in the middle: the text written goes between the prompt and this "
        "suffix (given, never edited); best with a model trained with fim > 0.",
    )
    best_of: int | None = None

    def check_supported(self) -> None:
        """400 for logprobs and a ``best_of`` other than ``n``, on top of the common checks."""
        super().check_supported()
        if self.logprobs is not None:
            raise invalid("logprobs", "logprobs are not supported by Edit Flow models")
        if self.best_of is not None and self.best_of != self.n:
            raise invalid("best_of", "best_of other than n is not supported")

    def prompt_list(self) -> list[str | list[int]]:
        """The prompts, each a string or token ids (null: one empty prompt)."""
        prompts = "" if self.prompt is None else self.prompt
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            return [prompts]
        return list(prompts)

    def max_new_tokens(self) -> int | None:
        """The cap on generated tokens asked for (None: the server's default)."""
        return self.max_tokens


class InputText(_Request):
    """A text part of a Responses input message (``output_text``: an earlier answer)."""

    type: Literal["input_text", "output_text"]
    text: Text


class InputMessage(_Request):
    """A Responses input message (``type`` may be left out, as the SDK's easy form does)."""

    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[InputText]


class ResponsesRequest(EditFlowKnobs):
    """POST /v1/responses, the text subset: no tools, no stored state, no reasoning."""

    schema_rules: ClassVar[dict[str, Any]] = _X0_XOR_MASK_LENGTH

    model: str | None = None
    input: Text | Annotated[list[InputMessage], Field(min_length=1)]
    instructions: Text | None = Field(None, description="a system message put first")
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool = False
    seed: Seed | None = Field(None, description="Edit Flow extension: fixes the answer")
    user: str | None = None
    metadata: dict[Text, Text] | None = Field(None, max_length=16)
    store: bool | None = Field(None, description="only false: responses are not stored")
    previous_response_id: str | None = Field(None, description="refused: nothing is stored")
    background: bool | None = Field(None, description="only false")
    tools: list[Any] | None = Field(None, description="only []")
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = Field(None, description='only {"format": {"type": "text"}}')
    reasoning: dict[str, Any] | None = Field(None, description="refused: not a reasoning model")
    include: list[str] | None = Field(None, description="only []")
    truncation: Literal["disabled"] | None = Field(
        None, description="only 'disabled': a prompt over the context is a 400"
    )

    @property
    def n(self) -> int:
        """One answer per request."""
        return 1

    @property
    def stop(self) -> None:
        """No stop strings in the Responses API."""
        return None

    def check_supported(self) -> None:
        """400 for what needs stored state, tools, reasoning or non-text output."""
        super().check_supported()
        if self.store:
            raise not_honoured("store", "responses are not stored here; omit store or send false")
        if self.previous_response_id is not None:
            raise not_honoured(
                "previous_response_id",
                "responses are not stored here; send the whole conversation in input instead",
            )
        if self.background:
            raise not_honoured("background", "background responses are not supported")
        if self.tools:
            raise not_honoured("tools", "tools are not supported by Edit Flow models")
        if self.include:
            raise not_honoured("include", "include is not supported (text output only)")
        if self.reasoning is not None:
            raise not_honoured("reasoning", "Edit Flow models are not reasoning models")
        fmt = (self.text or {}).get("format") or {"type": "text"}
        if not isinstance(fmt, dict) or fmt.get("type") != "text":
            raise not_honoured("text.format", "only the 'text' format is supported")

    def chat_messages(self) -> list[dict[str, str]]:
        """``instructions`` (a system message, first) + ``input`` as chat messages."""
        messages = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            return [*messages, {"role": "user", "content": self.input}]
        for m in self.input:
            messages.append({"role": chat_role(m.role), "content": content_text(m.content)})
        return messages

    def max_new_tokens(self) -> int | None:
        """The cap on generated tokens asked for (None: the server's default)."""
        return self.max_output_tokens


class EditFlowUsage(BaseModel):
    """Edit Flow statistics, summed over the choices of a request."""

    steps: int
    forward_passes: int
    insertions: int
    deletions: int
    substitutions: int


class CompletionTokensDetails(BaseModel):
    """Of a draft (``prediction``): its tokens kept unchanged in the answers and the others."""

    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class Usage(BaseModel):
    """Token counts of an answer, and the Edit Flow statistics under ``editflow``."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails | None = None
    editflow: EditFlowUsage | None = None

    @classmethod
    def of(
        cls, prompt_tokens: int, results: list[GenerationResult], draft_tokens: int | None = None
    ) -> Usage:
        """Prompt tokens (anchor included) + generated tokens, and edit statistics, summed.

        With a draft of ``draft_tokens`` tokens, also its accepted (kept unchanged) and rejected
        tokens, summed over the choices.
        """
        completion = sum(len(r.completion) for r in results)
        details = None
        if draft_tokens is not None:
            kept = sum(r.x0_kept for r in results)
            details = CompletionTokensDetails(
                accepted_prediction_tokens=kept,
                rejected_prediction_tokens=draft_tokens * len(results) - kept,
            )
        extra = {} if details is None else {"completion_tokens_details": details}
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            total_tokens=prompt_tokens + completion,
            **extra,
            editflow=EditFlowUsage(
                steps=sum(r.steps for r in results),
                forward_passes=sum(r.forward_passes for r in results),
                insertions=sum(r.n_ins for r in results),
                deletions=sum(r.n_del for r in results),
                substitutions=sum(r.n_sub for r in results),
            ),
        )


class ErrorBody(BaseModel):
    """The inside of the OpenAI error envelope."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The envelope of every non-2xx answer."""

    error: ErrorBody


class ChatCompletionMessage(BaseModel):
    """The assistant's message in a chat answer."""

    role: Literal["assistant"]
    content: str
    refusal: None = None


class ChatChoice(BaseModel):
    """One choice of a chat answer."""

    index: int
    message: ChatCompletionMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length"]
    editflow_trace: list[dict[str, Any]] | None = Field(None, description="with trace: true")


class ChatCompletion(BaseModel):
    """A chat completion (``stream: false``)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    """One choice of a text completion."""

    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"]
    editflow_trace: list[dict[str, Any]] | None = Field(None, description="with trace: true")


class Completion(BaseModel):
    """A text completion (``stream: false``)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


FinishReason = Literal["stop", "length"]
_TRACE_DOC = "with trace: true"


class ChatDelta(BaseModel):
    """What a chunk adds to a choice's message (empty on trace and finish chunks)."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    """One choice's part of a chat stream chunk."""

    index: int
    delta: ChatDelta
    logprobs: None = None
    finish_reason: FinishReason | None = None
    editflow_trace: list[dict[str, Any]] | None = Field(None, description=_TRACE_DOC)


class ChatCompletionChunk(BaseModel):
    """One SSE chunk of a streamed chat completion (``usage`` only with include_usage)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    usage: Usage | None = Field(None, description="with include_usage: null until the last chunk")
    choices: list[ChatChunkChoice]


class CompletionChunkChoice(BaseModel):
    """One choice's part of a text completion stream chunk."""

    index: int
    text: str
    logprobs: None = None
    finish_reason: FinishReason | None = None
    editflow_trace: list[dict[str, Any]] | None = Field(None, description=_TRACE_DOC)


class CompletionChunk(BaseModel):
    """One SSE chunk of a streamed text completion (``usage`` only with include_usage)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    usage: Usage | None = Field(None, description="with include_usage: null until the last chunk")
    choices: list[CompletionChunkChoice]


@dataclass
class FinalChoice:
    """A finished choice as the client gets it.

    Its text (stop strings cut, echo applied), finish reason and, with ``trace: true`` in a
    whole answer, its ``editflow_trace``.
    """

    text: str
    finish_reason: str
    trace: list[dict[str, Any]] | None = None


def answer_json(answer: BaseModel) -> dict[str, Any]:
    """An answer model as JSON data: the fields its constructor was given, in declared order."""
    return answer.model_dump(exclude_unset=True)


def sse(data: dict[str, Any]) -> str:
    """One Server-Sent Events ``data:`` block (compact JSON)."""
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


SSE_DONE = "data: [DONE]\n\n"
SSE_KEEPALIVE = ": keep-alive\n\n"


def _trace_field(trace: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {} if trace is None else {"editflow_trace": trace}


class _CompletionShape:
    """The answer of one chat or text completion request, whole or as stream chunks.

    One id for the whole answer; a stream's chunks share the time it started. Every chunk
    carries one choice: the opening chunks (chat: the role), trace chunks (an empty delta and
    ``editflow_trace``), one chunk with the final text, one with the finish reason; then the
    usage chunk (``choices: []``) when ``include_usage``.
    """

    id_prefix: ClassVar[str]
    chunk_object: ClassVar[str]

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = self.id_prefix + uuid.uuid4().hex
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())

    def _head(self) -> dict[str, Any]:
        head = {
            "id": self.id,
            "object": self.chunk_object,
            "created": self.created,
            "model": self.model,
        }
        if self.include_usage:
            head["usage"] = None
        return head

    def opening_chunks(self, index: int) -> list[BaseModel]:
        return []


class ChatCompletionShape(_CompletionShape):
    """``POST /v1/chat/completions``: a ``ChatCompletion`` or ``ChatCompletionChunk``s."""

    id_prefix = "chatcmpl-"
    chunk_object = "chat.completion.chunk"

    def response(self, choices: list[FinalChoice], usage: Usage) -> ChatCompletion:
        """The whole answer."""
        return ChatCompletion(
            id=self.id,
            object="chat.completion",
            created=int(time.time()),
            model=self.model,
            choices=[
                ChatChoice(
                    index=i,
                    message=ChatCompletionMessage(role="assistant", content=c.text, refusal=None),
                    logprobs=None,
                    finish_reason=c.finish_reason,
                    **_trace_field(c.trace),
                )
                for i, c in enumerate(choices)
            ],
            usage=usage,
        )

    def _chunk(
        self,
        index: int,
        delta: ChatDelta,
        finish: str | None = None,
        trace: list[dict[str, Any]] | None = None,
    ) -> ChatCompletionChunk:
        choice = ChatChunkChoice(
            index=index, delta=delta, logprobs=None, finish_reason=finish, **_trace_field(trace)
        )
        return ChatCompletionChunk(**self._head(), choices=[choice])

    def opening_chunks(self, index: int) -> list[BaseModel]:
        """The chunk that opens a choice: the assistant role, empty content."""
        return [self._chunk(index, ChatDelta(role="assistant", content=""))]

    def trace_chunk(self, index: int, trace: list[dict[str, Any]]) -> ChatCompletionChunk:
        """A chunk carrying new trace steps of a choice."""
        return self._chunk(index, ChatDelta(), trace=trace)

    def text_chunk(self, index: int, text: str) -> ChatCompletionChunk:
        """A chunk carrying a choice's final text."""
        return self._chunk(index, ChatDelta(content=text))

    def finish_chunk(self, index: int, finish_reason: str) -> ChatCompletionChunk:
        """The chunk that closes a choice with its finish reason."""
        return self._chunk(index, ChatDelta(), finish=finish_reason)

    def usage_chunk(self, usage: Usage) -> ChatCompletionChunk:
        """The last chunk, with the usage and no choices."""
        return ChatCompletionChunk(**{**self._head(), "usage": usage}, choices=[])


class CompletionShape(_CompletionShape):
    """``POST /v1/completions``: a ``Completion`` or ``CompletionChunk``s."""

    id_prefix = "cmpl-"
    chunk_object = "text_completion"

    def response(self, choices: list[FinalChoice], usage: Usage) -> Completion:
        """The whole answer."""
        return Completion(
            id=self.id,
            object="text_completion",
            created=int(time.time()),
            model=self.model,
            choices=[
                CompletionChoice(
                    index=i,
                    text=c.text,
                    logprobs=None,
                    finish_reason=c.finish_reason,
                    **_trace_field(c.trace),
                )
                for i, c in enumerate(choices)
            ],
            usage=usage,
        )

    def _chunk(
        self,
        index: int,
        text: str = "",
        finish: str | None = None,
        trace: list[dict[str, Any]] | None = None,
    ) -> CompletionChunk:
        choice = CompletionChunkChoice(
            index=index, text=text, logprobs=None, finish_reason=finish, **_trace_field(trace)
        )
        return CompletionChunk(**self._head(), choices=[choice])

    def trace_chunk(self, index: int, trace: list[dict[str, Any]]) -> CompletionChunk:
        """A chunk carrying new trace steps of a choice."""
        return self._chunk(index, trace=trace)

    def text_chunk(self, index: int, text: str) -> CompletionChunk:
        """A chunk carrying a choice's final text."""
        return self._chunk(index, text)

    def finish_chunk(self, index: int, finish_reason: str) -> CompletionChunk:
        """The chunk that closes a choice with its finish reason."""
        return self._chunk(index, finish=finish_reason)

    def usage_chunk(self, usage: Usage) -> CompletionChunk:
        """The last chunk, with the usage and no choices."""
        return CompletionChunk(**{**self._head(), "usage": usage}, choices=[])


class ModelFeatures(BaseModel):
    """Edit Flow extension of a model card: what the served model's sampler offers."""

    reverse_rates: bool = Field(
        description="the model predicts reverse rates, so requests may ask for correction > 0"
    )


class ModelCard(BaseModel):
    """A model as ``GET /v1/models`` lists it."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    editflow: ModelFeatures | None = Field(
        None, description="Edit Flow extension, once the model is loaded (null before)"
    )


class ModelList(BaseModel):
    """The answer of ``GET /v1/models``."""

    object: Literal["list"]
    data: list[ModelCard]


class OutputText(BaseModel):
    """A text part of a Responses API output message."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any]


class OutputMessage(BaseModel):
    """The assistant's message in a Responses API answer."""

    id: str
    type: Literal["message"]
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"]
    content: list[OutputText]


class ResponseUsage(BaseModel):
    """Token counts of a Responses API answer, and the Edit Flow statistics."""

    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int
    editflow: EditFlowUsage | None = None


class ResponseError(BaseModel):
    """Why a Responses API answer failed."""

    code: str
    message: str


class ResponseObject(BaseModel):
    """A Responses API answer (``POST /v1/responses``); nothing is stored."""

    id: str
    object: Literal["response"]
    created_at: int
    completed_at: int | None
    status: Literal["completed", "incomplete", "in_progress", "failed"]
    error: ResponseError | None
    incomplete_details: dict[str, str] | None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    output: list[OutputMessage]
    parallel_tool_calls: bool
    previous_response_id: None
    reasoning: None
    store: Literal[False]
    temperature: float
    text: dict[str, Any]
    tool_choice: Literal["auto"]
    tools: list[Any]
    top_p: float
    truncation: Literal["disabled"]
    metadata: dict[str, str]
    usage: ResponseUsage | None = Field(None, description="absent until the response is done")
    user: str | None = Field(None, description="present when the request had one")
