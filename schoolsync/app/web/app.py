"""The FastAPI application: webhooks, health, metrics; OpenAPI at ``/docs``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from schoolsync import __version__
from schoolsync.app.bootstrap import FEEDBACK_API_SOURCE, PAYMENTS_API_SOURCE, Runtime
from schoolsync.app.web.admin import admin_router
from schoolsync.app.web.admin_pages import pages_router
from schoolsync.app.web.health import health_router
from schoolsync.app.web.ingest import InboxWriter
from schoolsync.app.web.metrics import build_registry
from schoolsync.app.web.request_ids import RequestIds
from schoolsync.app.web.webhooks import WebhookEndpoint


def create_app(runtime: Runtime) -> FastAPI:
    writer = InboxWriter(
        runtime.db,
        runtime.queue,
        batched_sources=frozenset(runtime.context.batch_processors),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
            writer.stop()

    app = FastAPI(
        title="schoolsync",
        version=__version__,
        description="Webhook ingest, health and the admin API of schoolsync.",
        lifespan=lifespan,
    )
    registry, webhook_counter = build_registry(
        runtime.db, runtime.broker, jobs_settings=runtime.settings.jobs
    )
    endpoint = WebhookEndpoint(
        sources=runtime.sources,
        writer=writer,
        config=runtime.config,
        max_body_bytes=runtime.settings.max_body_bytes,
        counter=webhook_counter,
    )
    app.router.add_route(
        "/webhooks/{source}", endpoint.handle, methods=["POST", "GET"], include_in_schema=False
    )
    # the hot path skips FastAPI's middleware stack: a plain Starlette router serves webhooks
    app.state.webhooks = Router(
        [Route("/webhooks/{source}", endpoint.handle, methods=["POST", "GET"])]
    )
    app.include_router(health_router(runtime.db, runtime.broker))
    app.include_router(
        admin_router(
            runtime.settings,
            runtime.config,
            writer,
            FEEDBACK_API_SOURCE,
            PAYMENTS_API_SOURCE,
            context=runtime.context,
        )
    )

    app.include_router(pages_router(runtime.settings, runtime.context))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class FastPath:
    """ASGI app: ``/webhooks/*`` straight to its route, everything else to FastAPI; every
    request, on either path, with its request id (``X-Request-ID``, in every log line)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.webhooks: ASGIApp = app.state.webhooks
        self._with_ids = RequestIds(self._route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._with_ids(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            await self.webhooks(scope, receive, send)
        else:
            await self.app(scope, receive, send)
