"""Thin HTTP routes: parse, authenticate, call ``OpenAIServing``, wrap the answer."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse
from .serving import APIError, OpenAIServing

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}


def serving(request: Request) -> OpenAIServing:
    return request.app.state.serving


def check_api_key(request: Request) -> None:
    """401 unless the Bearer token equals the configured key (constant-time compare)."""
    key: str | None = request.app.state.api_key
    if not key:
        return
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise APIError(
            401, "Incorrect or missing API key", "authentication_error", code="invalid_api_key"
        )


def _answer(result: Any) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)


api = APIRouter(prefix="/v1", dependencies=[Depends(check_api_key)], responses=_ERRORS)
public = APIRouter()


@api.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI chat completions (streaming with ``stream: true``)."""
    return _answer(await serving(request).chat(body, request.is_disconnected))


@api.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    """OpenAI text completions (streaming with ``stream: true``)."""
    return _answer(await serving(request).completions(body, request.is_disconnected))


@api.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return serving(request).list_models()


@api.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return serving(request).get_model(model_id)


@public.get("/health")
async def health(request: Request) -> Response:
    """200 when ready; 503 while loading, draining or after an engine fault. No API key."""
    status, body = serving(request).health()
    return JSONResponse(body, status_code=status)


@public.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics. No API key."""
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@public.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground(request: Request) -> HTMLResponse:
    """The playground page: chat with the model and watch its edits."""
    return HTMLResponse(request.app.state.playground_html)
