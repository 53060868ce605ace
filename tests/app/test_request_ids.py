"""Request ids: taken from ``X-Request-ID`` or made, sent back, and in every log line of the
request, on FastAPI's side and on the webhook fast path, uvicorn's own lines included."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schoolsync.app.bootstrap import build_runtime
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.app.web.request_ids import RequestIds
from schoolsync.connectors.generic.webhooks import sign
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.settings import Settings
from tests.conftest import RedisServer, free_port
from tests.core.test_logging import capture_json_logs

SECRET = b"test-secret"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def asgi(tmp_path: Path, redis_server: RedisServer) -> FastPath:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        generic_secret=SECRET.decode(),
        config=tmp_path / "missing.yaml",
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    return FastPath(create_app(runtime))


@pytest.fixture
def lines() -> Lines:
    structlog.contextvars.clear_contextvars()
    return capture_json_logs()


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` under uvicorn as ``schoolsync web`` runs it (our logging, not uvicorn's), with the
    access log on: its lines are the ones a request always has."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, log_level="info", access_log=True
        )
    )
    # as in `schoolsync web`: uvicorn's loggers go to ours (a server run earlier in this process
    # with uvicorn's own logging config gave them handlers of their own and cut them off)
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "uvicorn.error")]
    saved = [(x.handlers[:], x.propagate) for x in loggers]
    for x in loggers:
        x.handlers[:], x.propagate = [], True
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        for x, (handlers, propagate) in zip(loggers, saved, strict=True):
            x.handlers[:], x.propagate = handlers, propagate


def signed_post(client: httpx.Client | TestClient, body: bytes, **headers: str) -> httpx.Response:
    return client.post(
        "/webhooks/generic", content=body, headers={"X-Signature": sign(SECRET, body), **headers}
    )


def access_line(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["logger"] == "uvicorn.access" and f" {path} " in x["event"]]


def test_a_sane_id_is_kept_and_anything_else_replaced(asgi: FastPath) -> None:
    with TestClient(asgi) as client:
        given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2_Z"})
        made = client.get("/healthz")
        for bad in ("a" * 65, "a b", "<script>", "ид".encode(), ""):
            replaced = client.get("/healthz", headers={"X-Request-ID": bad})
            assert replaced.headers["X-Request-ID"] not in (bad, "<script>", "a b")
            assert len(replaced.headers["X-Request-ID"]) == 32
        webhook = signed_post(
            client, b'{"id": "e-1", "type": "order.created"}', **{"X-Request-ID": "wh-1"}
        )
    assert given.headers["X-Request-ID"] == "lb-7f3a.2_Z"
    assert len(made.headers["X-Request-ID"]) == 32 and int(made.headers["X-Request-ID"], 16) >= 0
    assert webhook.status_code == 200 and webhook.headers["X-Request-ID"] == "wh-1"
    assert webhook.headers.get_list("X-Request-ID") == ["wh-1"]


def test_healthz_and_webhook_lines_carry_the_request_id(asgi: FastPath, lines: Lines) -> None:
    with served(asgi) as url, httpx.Client(base_url=url) as client:
        health = client.get("/healthz", headers={"X-Request-ID": "health-1"})
        again = client.get("/healthz", headers={"X-Request-ID": "health-2"})  # same connection
        stored = signed_post(client, b'{"id": "evt-1", "type": "order.created"}')
        forged = client.post(
            "/webhooks/generic", content=b'{"id": "evt-2"}', headers={"X-Signature": "00"}
        )
    assert (health.status_code, stored.status_code, forged.status_code) == (200, 200, 401)
    logged = lines()

    health_lines = access_line(logged, "/healthz")
    assert [x["request_id"] for x in health_lines] == ["health-1", "health-2"]
    assert again.headers["X-Request-ID"] == "health-2"

    webhook_lines = access_line(logged, "/webhooks/generic")
    returned = [stored.headers["X-Request-ID"], forged.headers["X-Request-ID"]]
    assert [x["request_id"] for x in webhook_lines] == returned
    [rejected] = [x for x in logged if x["event"] == "webhook rejected"]
    assert rejected["request_id"] == forged.headers["X-Request-ID"]

    # lines outside any request (start-up, shut-down) name none
    outside = [x for x in logged if x["logger"] == "uvicorn.error"]
    assert outside and all("request_id" not in x for x in outside)


def test_the_servers_line_for_an_exception_names_the_request(lines: Lines) -> None:
    def boom(request: Request) -> Response:
        structlog.get_logger("test").info("about to fail")
        raise RuntimeError("boom")

    app = RequestIds(Starlette(routes=[Route("/boom", boom)]))
    with served(app) as url:  # a new connection each: uvicorn closes one after a 500
        answer = httpx.get(f"{url}/boom", headers={"X-Request-ID": "fails-1"})
        later = httpx.get(f"{url}/boom", headers={"X-Request-ID": "fails-2"})
    assert answer.status_code == later.status_code == 500
    logged = lines()
    [first, second] = [x for x in logged if x["event"].startswith("Exception in ASGI application")]
    assert "RuntimeError: boom" in first["exception"]
    assert (first["request_id"], second["request_id"]) == ("fails-1", "fails-2")
    assert [x["request_id"] for x in logged if x["event"] == "about to fail"] == [
        "fails-1",
        "fails-2",
    ]


def test_the_id_is_unbound_when_the_request_ends() -> None:
    import asyncio

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(structlog.contextvars.get_contextvars().get("request_id"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def sent(message: Any) -> None:
        return None

    async def twice() -> dict[str, Any]:
        structlog.contextvars.clear_contextvars()
        wrapped = RequestIds(app)
        for given in (b"one", b"two"):
            scope = {"type": "http", "headers": [(b"x-request-id", given)]}
            await wrapped(scope, None, sent)  # type: ignore[arg-type]
        return structlog.contextvars.get_contextvars()

    assert asyncio.run(twice()) == {}
    assert seen == ["one", "two"]
