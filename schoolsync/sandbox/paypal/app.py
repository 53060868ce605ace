"""The ASGI application: routes relative to wherever it is mounted (``/paypal`` in the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.paypal import api, control
from schoolsync.sandbox.paypal.config import PayPalSandboxConfig
from schoolsync.sandbox.paypal.state import PayPalSandbox

Handler = Callable[[PayPalSandbox, Request], Awaitable[Response]]


def create_app(config: PayPalSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox app as an ASGI app; ``app.state.sandbox`` is its ``PayPalSandbox``."""
    sandbox = PayPalSandbox(config or PayPalSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/v1/oauth2/token", bind(api.token), methods=["POST"]),
        Route("/v2/payments/captures/{id}", bind(api.get_capture), methods=["GET"]),
        Route("/v2/payments/refunds/{id}", bind(api.get_refund), methods=["GET"]),
        Route("/v2/checkout/orders/{id}", bind(api.get_order), methods=["GET"]),
        Route("/v1/payments/sale/{id}", bind(api.get_sale), methods=["GET"]),
        Route(
            "/v1/notifications/verify-webhook-signature",
            bind(api.verify_webhook_signature),
            methods=["POST"],
        ),
        Route("/v1/notifications/certs/{name}", bind(api.get_cert), methods=["GET"]),
        Route("/_sandbox/cert.pem", bind(control.get_cert_pem), methods=["GET"]),
        Route("/_sandbox/captures", bind(control.post_capture), methods=["POST"]),
        Route("/_sandbox/captures/{id}/refund", bind(control.post_refund), methods=["POST"]),
        Route("/_sandbox/sales", bind(control.post_sale), methods=["POST"]),
        Route("/_sandbox/events", bind(control.get_events), methods=["GET"]),
        Route("/_sandbox/events/{id}/resend", bind(control.post_resend), methods=["POST"]),
        Route("/_sandbox/tokens/revoke", bind(control.post_revoke_tokens), methods=["POST"]),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
