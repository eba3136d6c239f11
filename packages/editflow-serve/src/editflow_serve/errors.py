"""Errors answered with the OpenAI envelope ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

from .engine_client import EngineError


class ClientDisconnected(Exception):
    """The client went away before its answer was ready (its sequences were cancelled)."""


class APIError(Exception):
    """An error answered with the OpenAI envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error envelope: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def engine_api_error(err: EngineError) -> APIError:
    """Map an engine error to its HTTP answer (429 / 503 with Retry-After, 500 on a fault)."""
    if err.status == 500:
        return APIError(500, str(err), "server_error", code="engine_fault")
    kind = "rate_limit_error" if err.status == 429 else "service_unavailable"
    return APIError(err.status, str(err), kind, headers={"Retry-After": "1"})


def not_honoured(param: str, why: str) -> APIError:
    """400 for a field the server cannot honour (never accepted silently)."""
    return APIError(
        400, f"{param} is not supported: {why}", param=param, code="unsupported_parameter"
    )


def invalid(param: str, message: str, code: str | None = None) -> APIError:
    """400 ``invalid_request_error`` naming ``param``."""
    return APIError(400, message, param=param, code=code)
