"""Thin HTTP routes: parse, call ``OpenAIServing``, wrap the answer (``auth`` checks the key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer

from .protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    ResponseObject,
    ResponsesRequest,
)
from .serving import OpenAIServing

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}
_ERRORS["default"] = {"model": ErrorResponse, "description": "Error (OpenAI envelope)"}
#: documents the Bearer scheme; the key itself is checked by ``auth.RequireApiKey``
_bearer = HTTPBearer(auto_error=False, description="the server's --api-key, when it has one")


def _sse_doc(what: str) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of a streaming endpoint: JSON, or an SSE stream with ``stream: true``."""
    stream = {"type": "string", "description": what}
    return {200: {"content": {"text/event-stream": {"schema": stream}}}}


_CHUNKS = (
    "with stream: true, Server-Sent Events: 'data: <chunk JSON>' lines (same id throughout; the "
    "final text of each choice in one append-only delta), ': keep-alive' comments while the "
    "model runs, a usage chunk with choices [] when stream_options.include_usage, then "
    "'data: [DONE]'; an error after the start is 'data: {\"error\": ...}' then 'data: [DONE]'"
)
_EVENTS = (
    "with stream: true, Server-Sent Events as OpenAI sends them ('event: <type>' and "
    "'data: <JSON>'): response.created, response.in_progress, response.output_item.added, "
    "response.content_part.added, response.output_text.delta (the whole text at once), "
    "response.output_text.done, response.content_part.done, response.output_item.done, then "
    "response.completed or response.incomplete (or response.failed); ': keep-alive' comments "
    "while the model runs"
)


def serving(request: Request) -> OpenAIServing:
    """The app's ``OpenAIServing``."""
    return request.app.state.serving


def _answer(result: Any) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)


api = APIRouter(prefix="/v1", dependencies=[Depends(_bearer)], responses=_ERRORS)
public = APIRouter()


@api.post("/chat/completions", response_model=ChatCompletion, responses=_sse_doc(_CHUNKS))
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI chat completions (streaming with ``stream: true``)."""
    return _answer(await serving(request).chat(body, request.is_disconnected))


@api.post("/completions", response_model=Completion, responses=_sse_doc(_CHUNKS))
async def completions(body: CompletionRequest, request: Request) -> Response:
    """OpenAI text completions (streaming with ``stream: true``)."""
    return _answer(await serving(request).completions(body, request.is_disconnected))


@api.post("/responses", response_model=ResponseObject, responses=_sse_doc(_EVENTS))
async def responses(body: ResponsesRequest, request: Request) -> Response:
    """OpenAI Responses, text in and out (streaming with ``stream: true``); nothing is stored."""
    return _answer(await serving(request).responses(body, request.is_disconnected))


@api.get("/models", response_model=ModelList)
async def list_models(request: Request) -> dict[str, Any]:
    """The one model this server serves."""
    return serving(request).list_models()


@api.get("/models/{model_id:path}", response_model=ModelCard)
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """The served model's card; 404 for any other id."""
    return serving(request).get_model(model_id)


@public.get("/health")
async def health(request: Request) -> Response:
    """200 when ready; 503 while loading, draining or after an engine fault. No API key."""
    status, body = serving(request).health()
    return JSONResponse(body, status_code=status)


@public.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics. No API key."""
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@public.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground(request: Request) -> HTMLResponse:
    """The playground page: chat with the model and watch its edits."""
    return HTMLResponse(request.app.state.playground_html)
