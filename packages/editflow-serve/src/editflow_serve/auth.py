"""The API key check, done before the request body is read or parsed.

A middleware rather than a route dependency: FastAPI parses the JSON body before it runs
dependencies, so a malformed body without a key would get 400 instead of 401. ``/v1/*`` needs
``Authorization: Bearer KEY`` when a key is configured (constant-time compare); ``/``,
``/health``, ``/metrics`` and CORS preflights do not.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .serving import APIError


def key_matches(authorization: str, key: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <key>`` (constant-time)."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


def unauthorized() -> APIError:
    """The 401 ``invalid_api_key`` error, saying which header to send."""
    return APIError(
        401,
        "Incorrect or missing API key: send the header 'Authorization: Bearer YOUR_KEY'",
        "authentication_error",
        code="invalid_api_key",
    )


class RequireApiKey:
    """401 (OpenAI envelope) for ``/v1/*`` requests without the configured key."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app, self.key = app, key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on, or answer 401 before its body is read."""
        if (
            self.key
            and scope["type"] == "http"
            and scope["path"].startswith("/v1/")
            and scope["method"] != "OPTIONS"
        ):
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not key_matches(header, self.key):
                err = unauthorized()
                answer = JSONResponse(err.body(), status_code=err.status)
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)
