"""uvicorn's h11 protocol, answering unparseable requests with the OpenAI error envelope.

A request whose head never reaches the app (headers over h11's 16 KiB limit, a malformed
request line) is answered by uvicorn itself, in plain text. This subclass answers it with
``{"error": {...}}`` JSON instead: 431 for headers that are too large, 400 otherwise, with an
``x-request-id`` like every other answer. ``uvicorn_config`` builds a ``uvicorn.Config`` that
uses it (the CLI and the tests both serve through it).
"""

from __future__ import annotations

import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, H11Protocol

from .request_id import new_request_id


class _Connection(h11.Connection):
    """An h11 connection that remembers its last protocol error (for the status hint)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as err:
            self.last_error = err
            raise


class EnvelopeH11Protocol(H11Protocol):
    """``H11Protocol`` whose 400 for an unparseable request is the OpenAI error envelope."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_head = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _Connection(h11.SERVER, self.max_head)

    def send_400_response(self, msg: str) -> None:
        """Answer an unparseable request in the envelope: 431 for oversized headers, else 400."""
        err = self.conn.last_error
        status = 431 if err is not None and err.error_status_hint == 431 else 400
        if status == 431:
            message = (
                f"The request headers are larger than {self.max_head} bytes; send smaller "
                "headers (or raise the server's limit)"
            )
        else:
            message = f"The HTTP request could not be parsed: {err or msg}"
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": "request_header_too_large" if status == 431 else "invalid_http_request",
            }
        }
        data = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"x-request-id", new_request_id().encode()),
            (b"connection", b"close"),
        ]
        reason = b"Request Header Fields Too Large" if status == 431 else b"Bad Request"
        for event in (
            h11.Response(status_code=status, headers=headers, reason=reason),
            h11.Data(data=data),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_config(app: Any, **kwargs: Any) -> uvicorn.Config:
    """``uvicorn.Config(app, **kwargs)`` serving through ``EnvelopeH11Protocol``."""
    return uvicorn.Config(app, http=EnvelopeH11Protocol, **kwargs)
