"""The ASGI application: routes relative to wherever it is mounted (``/yookassa`` in the server),
so the API's base URL is ``<mount>/v3``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.yookassa import api, control
from schoolsync.sandbox.yookassa.config import YooKassaSandboxConfig
from schoolsync.sandbox.yookassa.shop import YooKassaSandbox

Handler = Callable[[YooKassaSandbox, Request], Awaitable[Response]]


def create_app(config: YooKassaSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox shop as an ASGI app; ``app.state.sandbox`` is its ``YooKassaSandbox``.

    Notifications go out from a daemon thread that starts with the first one and ends after a
    quiet spell, so the app needs no lifespan.
    """
    sandbox = YooKassaSandbox(config or YooKassaSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/v3/payments", bind(api.payments_collection), methods=["GET", "POST"]),
        Route("/v3/payments/{id}", bind(api.payment_item), methods=["GET"]),
        Route("/v3/refunds", bind(api.refunds_collection), methods=["POST"]),
        Route("/v3/refunds/{id}", bind(api.refund_item), methods=["GET"]),
        Route("/v3/me", bind(api.me), methods=["GET"]),
        Route("/_sandbox/payments", bind(control.post_payment), methods=["POST"]),
        Route("/_sandbox/payments", bind(control.get_payments), methods=["GET"]),
        Route("/_sandbox/payments/{id}/notify", bind(control.post_notify), methods=["POST"]),
        Route("/_sandbox/payments/{id}/{action}", bind(control.post_move), methods=["POST"]),
        Route("/_sandbox/refunds", bind(control.get_refunds), methods=["GET"]),
        Route("/_sandbox/notifications", bind(control.get_notifications), methods=["GET"]),
        Route("/_sandbox/webhook", bind(control.post_webhook), methods=["POST"]),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/faults", bind(control.post_faults), methods=["POST"]),
        Route("/_sandbox/faults", bind(control.delete_faults), methods=["DELETE"]),
        Route("/_sandbox/limits", bind(control.post_limits), methods=["POST"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
