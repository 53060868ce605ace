"""``X-Request-ID``: every log line of a request carries its id, and the answer names it.

A pure ASGI middleware (no per-request objects beyond the id), so that it can wrap the whole
web role, the plain Starlette fast path for ``/webhooks`` included. The id is the caller's
``X-Request-ID`` when it is a sane token (at most 64 of ``A-Z a-z 0-9 . _ -``: a proxy's or a
platform's id is kept, anything else is replaced, never echoed), or a new ``uuid4().hex``.
"""

from __future__ import annotations

import re
from uuid import uuid4

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER = HEADER.lower().encode("latin-1")
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def request_id_of(scope: Scope) -> str:
    """The request's own ``X-Request-ID`` if it is a sane token, else a new random id."""
    for name, value in scope.get("headers", ()):
        if name == _HEADER and _SANE.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid4().hex


class RequestIds:
    """Bind ``request_id`` with ``structlog.contextvars`` while the request runs (handlers,
    threads they start with ``asyncio.to_thread``, uvicorn's access line) and send it back in
    the ``X-Request-ID`` response header; the binding is undone when the request ends.

    When the app raises, the id stays bound: the server logs that exception after the app has
    returned (uvicorn's "Exception in ASGI application", in the task that served this request
    alone), and that is the line the id is most wanted on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        await self.app(scope, receive, send_with_id)
        structlog.contextvars.reset_contextvars(**tokens)
