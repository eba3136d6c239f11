"""The app factory: routes, error envelope, body cap, CORS, metrics, engine lifespan.

Design decisions:
- Every non-2xx answer is the OpenAI envelope ``{"error": {message, type, param, code}}``.
  FastAPI's 422 validation answer is replaced by 400 ``invalid_request_error`` whose ``param``
  is the offending field (``messages[0].role``); unknown routes give 404, bad methods 405.
- Request bodies are capped (``max_body_bytes``) by a small ASGI middleware before any parsing:
  413 with the envelope, whether the size is announced or streamed in chunks.
- Middleware order, outermost first: request id (every answer gets ``x-request-id``), metrics,
  CORS (so error answers carry CORS headers too), the API key (401 before the body is read),
  the body cap.
- The engine starts in the lifespan and loads the model in its own thread, so /health answers
  503 "loading" at once; the lifespan's exit stops it after uvicorn has drained the requests.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import RequireApiKey
from .engine_client import EngineClient
from .errors import APIError, ClientDisconnected
from .metrics import Metrics
from .openapi import exact_openapi
from .protocol import MESSAGE_ROLES
from .request_id import RequestId
from .serving import OpenAIServing
from .settings import ServeSettings

log = logging.getLogger("editflow_serve")


def _respond(err: APIError) -> JSONResponse:
    """The OpenAI error envelope of ``err``, with its status and headers."""
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers or None)


def _param(loc: tuple[Any, ...]) -> str | None:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = str(part)
        elif part in (
            "str",
            "int",
            "list[str]",
            "list[int]",
            "list[list[int]]",
            "list[TextPart]",
            "function-after",
            "constrained-str",
            *MESSAGE_ROLES,  # the tags of the message union
        ) or "[" in str(part):
            continue  # union branch names
        else:
            out += f".{part}"
    return out or None


async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A request that fails validation: 400 in the envelope, naming its most specific field."""
    errors = exc.errors()
    # union branches report one error each: a failed check beats a wrong type, then the
    # deepest location is the most specific one
    first = (
        max(
            errors,
            key=lambda e: (not e.get("type", "").endswith("_type"), len(e.get("loc", ()))),
        )
        if errors
        else {"loc": (), "msg": "invalid request"}
    )
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return _respond(
            APIError(400, f"We could not parse the JSON body of your request: {detail}")
        )
    loc = tuple(first.get("loc", ()))
    param = _param(loc)
    if first.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        param = f"{param}.{(first.get('ctx') or {}).get('discriminator', '').strip(chr(39))}"
    if first.get("type") == "missing" and loc == ("body",):
        msg = (
            "The request body is empty: send a JSON object, e.g. "
            '{"model": "...", "messages": [{"role": "user", "content": "Hi"}]}'
        )
    elif first.get("type") == "missing":
        msg = f"Missing required parameter: {param!r}"
    elif param is None:
        msg = f"The request body is invalid: {first.get('msg')}"
    else:
        msg = f"Invalid value for {param!r}: {first.get('msg')}"
    return _respond(APIError(400, msg, param=param))


async def api_error_handler(request: Request, exc: APIError) -> JSONResponse:
    """An ``APIError`` as its status and the OpenAI error envelope."""
    return _respond(exc)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's HTTP errors (404, 405, ...) in the OpenAI error envelope."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    headers = getattr(exc, "headers", None)
    return _respond(APIError(exc.status_code, str(exc.detail), code=code, headers=headers))


async def disconnected_handler(request: Request, exc: ClientDisconnected) -> Response:
    """499 (client closed the request) for a client gone while its body was read."""
    return Response(status_code=499)


async def unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any other exception: logged with its request id, answered 500 in the envelope."""
    rid = request.scope.get("state", {}).get("request_id", "-")
    log.exception("unexpected error in request %s", rid)
    headers = {"x-request-id": rid} if rid != "-" else None
    return _respond(APIError(500, "internal server error", "server_error", headers=headers))


class BodyLimit:
    """Answer 413 to request bodies over ``limit`` bytes, announced or chunked.

    It also marks every body as JSON (``curl -d`` sends a form content type), so the API reads
    any body as JSON, as OpenAI-compatible servers commonly do.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an HTTP request on with its body counted, or answer 413."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        try:
            announced = int(length)
        except ValueError:
            announced = 0
        if announced > self.limit:
            return await self._reject(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # client gone
            size += len(msg.get("body", b""))
            if size > self.limit:
                return await self._reject(scope, receive, send)
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body, sent = b"".join(chunks), False
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = _respond(
            APIError(
                413,
                f"The request body is larger than {self.limit} bytes",
                code="request_too_large",
                headers={"Connection": "close"},
            )
        )
        await resp(scope, receive, send)


_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/responses")


class RequestMetrics:
    """Count API requests by endpoint and status and time them to their last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on; count and time it when it is an API request."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/"):
            return await self.app(scope, receive, send)
        endpoint = path if path in _ENDPOINTS else "/v1/models"
        start, status = time.perf_counter(), [500]

        async def wrapped(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def create_app(
    engine: EngineClient,
    settings: ServeSettings | None = None,
    *,
    metrics: Metrics | None = None,
) -> FastAPI:
    """Build the FastAPI app around an engine (``Engine``, or any other ``EngineClient``).

    ``settings`` (default: ``ServeSettings()``) gives the model id, default sampling settings,
    API key, body cap, CORS origins and stream timing. ``metrics``: the registry the engine
    updates too (default: a new one).
    """
    settings = settings or ServeSettings()
    metrics = metrics or Metrics()
    api_key = settings.api_key or None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        yield
        engine.stop()

    app = FastAPI(
        title="editflow-serve",
        version="0.1.0",
        lifespan=lifespan,
        description="OpenAI-compatible server for Edit Flow models.",
    )
    app.openapi = lambda: exact_openapi(app)
    app.state.serving = OpenAIServing(engine, settings, metrics)
    app.state.metrics = metrics
    app.state.api_key = api_key
    app.state.playground_html = files("editflow_serve").joinpath("static/index.html").read_text()
    from .router import api, public

    app.include_router(api)
    app.include_router(public)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(ClientDisconnected, disconnected_handler)
    app.add_exception_handler(Exception, unexpected_handler)
    # the last added runs first: request id, metrics, CORS, API key, body cap, routes
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequireApiKey, key=api_key)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],  # mirrors the request: Authorization, X-Stainless-*, ...
        expose_headers=["Retry-After", "X-Request-Id"],
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestId)
    return app
