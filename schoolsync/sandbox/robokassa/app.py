"""The ASGI application: routes relative to where it is mounted (``/robokassa`` in the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.robokassa import control, page
from schoolsync.sandbox.robokassa.config import RobokassaSandboxConfig
from schoolsync.sandbox.robokassa.shop import RobokassaSandbox

Handler = Callable[[RobokassaSandbox, Request], Awaitable[Response]]


def create_app(config: RobokassaSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox shop as an ASGI app; ``app.state.sandbox`` is its ``RobokassaSandbox``."""
    sandbox = RobokassaSandbox(config or RobokassaSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/Merchant/Index.aspx", bind(page.payment_page), methods=["GET", "POST"]),
        Route("/_sandbox/pay", bind(control.post_pay), methods=["POST"]),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
