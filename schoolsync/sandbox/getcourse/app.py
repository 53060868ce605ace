"""The ASGI application: routes relative to wherever it is mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.getcourse import api, control
from schoolsync.sandbox.getcourse.config import GetCourseSandboxConfig
from schoolsync.sandbox.getcourse.sandbox import GetCourseSandbox

Handler = Callable[[GetCourseSandbox, Request], Awaitable[Response]]


def create_app(config: GetCourseSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox account as an ASGI app; `app.state.sandbox` is its `GetCourseSandbox`.

    The callback sender is a daemon thread started on the first callback; the app's lifespan
    shutdown (or `app.state.sandbox.close()`) stops it.
    """
    sandbox = GetCourseSandbox(config or GetCourseSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/pl/api/users", bind(api.import_users), methods=["POST"]),
        Route("/pl/api/deals", bind(api.import_deals), methods=["POST"]),
        Route(
            "/pl/api/account/exports/{export_id:int}",
            bind(api.poll_export),
            methods=["GET", "POST"],
        ),
        Route("/pl/api/account/{kind:str}", bind(api.start_export), methods=["GET", "POST"]),
        Route("/_sandbox/orders", bind(control.post_orders), methods=["POST"]),
        Route("/_sandbox/orders", bind(control.get_orders), methods=["GET"]),
        Route("/_sandbox/orders/{number:str}", bind(control.get_order), methods=["GET"]),
        Route(
            "/_sandbox/orders/{number:str}/status",
            bind(control.post_order_status),
            methods=["POST"],
        ),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/faults", bind(control.post_faults), methods=["POST"]),
        Route("/_sandbox/faults", bind(control.delete_faults), methods=["DELETE"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
        Route("/_sandbox/callback", bind(control.post_callback), methods=["POST"]),
        Route("/_sandbox/callbacks", bind(control.get_callbacks), methods=["GET"]),
        Route("/_sandbox/callbacks/wait", bind(control.wait_callbacks), methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
