"""The ASGI application: routes relative to wherever it is mounted (`/telegram` in the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.telegram import api, control
from schoolsync.sandbox.telegram.bot import TelegramSandbox
from schoolsync.sandbox.telegram.config import TelegramSandboxConfig

Handler = Callable[[TelegramSandbox, Request], Awaitable[Response]]


def create_app(config: TelegramSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox bot as an ASGI app; `app.state.sandbox` is its `TelegramSandbox`.

    Webhook deliveries run on a daemon thread that starts with the first one and ends after a
    quiet spell, so the app needs no lifespan.
    """
    sandbox = TelegramSandbox(config or TelegramSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/bot{token}/{method}", bind(api.bot_api), methods=["GET", "POST"]),
        Route("/_sandbox/messages", bind(control.get_messages), methods=["GET"]),
        Route("/_sandbox/edits", bind(control.get_edits), methods=["GET"]),
        Route("/_sandbox/updates", bind(control.post_update), methods=["POST"]),
        Route("/_sandbox/kick", bind(control.post_kick), methods=["POST"]),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/faults", bind(control.post_faults), methods=["POST"]),
        Route("/_sandbox/faults", bind(control.delete_faults), methods=["DELETE"]),
        Route("/_sandbox/limits", bind(control.get_limits), methods=["GET"]),
        Route("/_sandbox/limits", bind(control.post_limits), methods=["POST"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
