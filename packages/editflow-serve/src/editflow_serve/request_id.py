"""Request ids: every answer carries ``x-request-id``, and log lines of a request carry it too.

A client's own ``x-request-id`` (1-128 visible ASCII characters) is kept, so it can match our
logs to its requests; otherwise one is made (``req_<32 hex>``). The openai SDK shows the header
as ``response.request_id``. The id lives in a context variable while the request runs;
``RequestIdFilter`` copies it onto log records as ``record.request_id`` ("-" outside requests).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_VALID = re.compile(rb"[\x21-\x7e]{1,128}")
current: ContextVar[str] = ContextVar("editflow_request_id", default="-")


def new_request_id() -> str:
    """A fresh id: ``req_`` and 32 hex digits."""
    return "req_" + uuid.uuid4().hex


def accept_request_id(value: bytes | None) -> str:
    """The client's id when usable, else a new one."""
    if value is not None and _VALID.fullmatch(value):
        return value.decode("ascii")
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``: the id of the request being served, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` unless the record has one; keep every record."""
        if not hasattr(record, "request_id"):
            record.request_id = current.get()
        return True


class RequestId:
    """Outermost middleware: pick the id, expose it to logs and handlers, put it on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request under its id (the client's or a new one), echoed in the answer."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = accept_request_id(dict(scope["headers"]).get(HEADER))
        scope.setdefault("state", {})["request_id"] = rid  # for the 500 handler, outside us
        token = current.set(rid)

        async def send_with_id(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = [(k, v) for k, v in msg.get("headers", []) if k.lower() != HEADER]
                msg = {**msg, "headers": [*headers, (HEADER, rid.encode())]}
            await send(msg)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)


logging.getLogger("editflow_serve").addFilter(RequestIdFilter())
