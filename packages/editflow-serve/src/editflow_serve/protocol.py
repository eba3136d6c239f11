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
  ``mask_length``, ``top_k``, ``idle_stop_steps``, ``guidance_scale``, ``trace``.
- Responses are built as dicts in ``serving.py``; the models at the end document their shape
  in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

MAX_N = 16
MAX_STEPS = 4096
MAX_TOKENS = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


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


class SystemMessage(_Request):
    """A system message (``developer`` is treated as ``system``)."""

    role: Literal["system", "developer"]
    content: Content
    name: str | None = None


class UserMessage(_Request):
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
    trace: bool = Field(False, description="return / stream the per-step edit operations")


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


class ChatCompletionRequest(_Common):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    modalities: list[str] | None = Field(
        None, description=f'Only ["text"] is accepted. {_NOT_HONOURED}'
    )
    audio: dict[str, Any] | None = Field(None, description=f"Only null. {_NOT_HONOURED}")


class CompletionRequest(_Common):
    """POST /v1/completions. ``prompt``: a string, strings, token ids, or lists of token ids
    (null: the empty prompt)."""

    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1)]
        | None
    )
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None


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
        return 1

    @property
    def stop(self) -> None:
        return None


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


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None = None


class ChatChoice(BaseModel):
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


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class OutputText(BaseModel):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any]


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"]
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"]
    content: list[OutputText]


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int
    editflow: EditFlowUsage | None = None


class ResponseError(BaseModel):
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
