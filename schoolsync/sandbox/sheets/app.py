"""The ASGI application: routes relative to wherever it is mounted (``/sheets`` in the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.sandbox.sheets import api, control
from schoolsync.sandbox.sheets.config import SheetsSandboxConfig
from schoolsync.sandbox.sheets.state import SheetsSandbox

Handler = Callable[[SheetsSandbox, Request], Awaitable[Response]]


def create_app(config: SheetsSandboxConfig | None = None) -> Starlette:
    """A fresh sandbox project as an ASGI app; ``app.state.sandbox`` is its ``SheetsSandbox``."""
    sandbox = SheetsSandbox(config or SheetsSandboxConfig())

    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(sandbox, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    spreadsheet = "/v4/spreadsheets/{id}"
    routes = [
        Route("/token", bind(api.token), methods=["POST"], name="token"),
        Route(f"{spreadsheet}/values:batchUpdate", bind(api.values_batch_update), methods=["POST"]),
        Route(
            f"{spreadsheet}/values/{{range:path}}",
            bind(api.values_range),
            methods=["GET", "PUT", "POST"],
        ),
        Route("/_sandbox/key-file", bind(control.get_key_file), methods=["GET"]),
        Route("/_sandbox/spreadsheets", bind(control.post_spreadsheet), methods=["POST"]),
        Route("/_sandbox/spreadsheets/{id}", bind(control.get_spreadsheet), methods=["GET"]),
        Route("/_sandbox/spreadsheets/{id}/rows", bind(control.post_rows), methods=["POST"]),
        Route("/_sandbox/limits", bind(control.post_limits), methods=["POST"]),
        Route("/_sandbox/tokens/revoke", bind(control.post_revoke_tokens), methods=["POST"]),
        Route("/_sandbox/state", bind(control.get_state), methods=["GET"]),
        Route("/_sandbox/faults", bind(control.post_faults), methods=["POST"]),
        Route("/_sandbox/faults", bind(control.delete_faults), methods=["DELETE"]),
        Route("/_sandbox/reset", bind(control.post_reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
