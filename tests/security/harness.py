"""The web role in process, as ``schoolsync web`` serves it, with every webhook source switched on.

One school configures every platform that verifies inbound webhooks (GetCourse, amoCRM,
Telegram, YooKassa, Robokassa, PayPal; the generic source by ``SCHOOLSYNC_GENERIC_SECRET``),
its secrets in the settings as the environment would give them. The ASGI stack is the one
``uvicorn.run`` builds for ``schoolsync web``: uvicorn's proxy-headers middleware with its
defaults (X-Forwarded-For believed from 127.0.0.1 only) in front of ``FastPath(create_app())``;
the test client sets each request's TCP peer (``x-test-peer``, removed before the app sees it).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.connectors.paypal.certs import CertStore
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import inbox, jobs
from schoolsync.core.settings import Settings
from tests.connectors.paypal.signing import CERT_URL, Signer

SCHOOL = "fitness"
GENERIC_SECRET = "generic-7Qm2xT9vLd4Rk8Wp"
GETCOURSE_SECRET = "gc-callback-5Hs8Nq2Vx7Lc3Tz"
AMOCRM_SECRET = "amo-hook-9Kd3Rw6Yp1Mf8Bq"
TELEGRAM_SECRET = "tg-hook-4Jt7Xc2Lq9Vn5Sd"
ROBOKASSA_PASSWORD2 = "rk-pass2-8Fv3Mz6Qc1Wk"
ROBOKASSA_LOGIN = "fitness-shop"
YOOKASSA_SHOP = "100500"
PAYPAL_WEBHOOK_ID = "4JH86294D6297924G"
PROXY_NETWORK = "10.0.0.0/8"  # our reverse proxies (YooKassa's trusted_proxies)
MAX_BODY_BYTES = 16_384  # the limit under test (the default is 1 MiB; the code path is the same)
PEER_HEADER = "x-test-peer"

SECRETS = {
    "gc_key": "gc-api-key-unused",
    "gc_callback": GETCOURSE_SECRET,
    "amo_token": "amo-long-lived-token-unused",
    "amo_webhook": AMOCRM_SECRET,
    "tg_token": "123456:tg-bot-token-unused",
    "tg_webhook": TELEGRAM_SECRET,
    "yk_key": "test_yookassa-key-unused",
    "rk_password1": "rk-pass1-unused",
    "rk_password2": ROBOKASSA_PASSWORD2,
    "pp_secret": "paypal-client-secret-unused",
}

CONFIG = f"""
schools:
  - id: {SCHOOL}
    accounts:
      getcourse:
        account: fitness
        base_url: https://fitness.getcourse.ru
        key_env: gc_key
        callback_secret_env: gc_callback
      amocrm:
        account: fitness
        base_url: https://fitness.amocrm.ru
        long_lived_token_env: amo_token
        webhook_secret_env: amo_webhook
      telegram:
        bot: fitness
        token_env: tg_token
        webhook_secret_env: tg_webhook
      yookassa:
        shop_id: "{YOOKASSA_SHOP}"
        secret_key_env: yk_key
        trusted_proxies: [{PROXY_NETWORK}]
      robokassa:
        merchant_login: {ROBOKASSA_LOGIN}
        password1_env: rk_password1
        password2_env: rk_password2
      paypal:
        client_id: AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS
        client_secret_env: pp_secret
        webhook_id: {PAYPAL_WEBHOOK_ID}
"""


@dataclass(frozen=True)
class Delivery:
    """One inbound request as a sender makes it."""

    source: str
    body: bytes = b""
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    peer: str = "203.0.113.7"  # TEST-NET-3: nobody's platform; "" for no peer at all
    method: str = "POST"
    chunked: bool = False  # sent without Content-Length, in chunks
    content_length: str | None = None  # a Content-Length header that may lie

    def __repr__(self) -> str:  # what hypothesis prints for a failing example: keep it readable
        body = (
            self.body
            if len(self.body) <= 300
            else self.body[:300] + b"...(%d bytes)" % len(self.body)
        )
        extra = f", chunked={self.chunked}" if self.chunked else ""
        if self.content_length is not None:
            extra += f", content_length={self.content_length!r}"
        return (
            f"Delivery({self.method} /webhooks/{self.source}?{self.query} peer={self.peer!r}, "
            f"headers={dict(self.headers)!r}, body={body!r}{extra})"
        )

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Rows:
    """What one request left in the store and the queue."""

    inbox: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    queued: int = 0


class PeerFromHeader:
    """ASGI: the request's TCP peer from ``x-test-peer`` (TestClient has one fixed peer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = PEER_HEADER.encode()
            peer = next((v.decode() for k, v in scope["headers"] if k == name), None)
            if peer is not None:
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != name]
                scope["client"] = (peer, 40_000) if peer else None
        await self.app(scope, receive, send)


class WebhookApp:
    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.runtime = runtime
        self.client = client

    def send(self, delivery: Delivery) -> httpx.Response:
        headers = dict(delivery.headers)
        headers[PEER_HEADER] = delivery.peer
        content: bytes | Iterator[bytes] = delivery.body
        if delivery.chunked:
            content = _chunks(delivery.body)
        if delivery.content_length is not None:
            headers["content-length"] = delivery.content_length
        url = f"/webhooks/{delivery.source}" + (f"?{delivery.query}" if delivery.query else "")
        response: httpx.Response = self.client.request(
            delivery.method, url, content=content, headers=headers
        )
        return response

    def marks(self) -> tuple[int, int, int]:
        """The newest inbox row and job, and the queue's length: what came before a request."""
        with self.runtime.db.read() as conn:
            last_inbox = conn.execute(sa.select(sa.func.max(inbox.c.id))).scalar() or 0
            last_job = conn.execute(sa.select(sa.func.max(jobs.c.id))).scalar() or 0
        return int(last_inbox), int(last_job), self.queue_length()

    def since(self, marks: tuple[int, int, int]) -> Rows:
        last_inbox, last_job, queued = marks
        with self.runtime.db.read() as conn:
            new_inbox = [
                dict(r)
                for r in conn.execute(
                    sa.select(inbox).where(inbox.c.id > last_inbox).order_by(inbox.c.id)
                ).mappings()
            ]
            new_jobs = [
                dict(r)
                for r in conn.execute(
                    sa.select(jobs).where(jobs.c.id > last_job).order_by(jobs.c.id)
                ).mappings()
            ]
        return Rows(new_inbox, new_jobs, self.queue_length() - queued)

    def queue_length(self) -> int:
        broker = self.runtime.broker
        return int(broker.client.llen(f"{broker.namespace}:default"))

    def webhook_count(self, source: str, outcome: str) -> float:
        """``schoolsync_webhooks_total`` for one source and outcome, from ``/metrics``."""
        text = self.client.get("/metrics").text
        sample = f'schoolsync_webhooks_total{{outcome="{outcome}",source="{source}"}} '
        found = re.search(rf"^{re.escape(sample)}(\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0


def _chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def settings_for(tmp_path: Path, redis_url: str) -> Settings:
    config = tmp_path / "schoolsync.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        config=config,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        generic_secret=GENERIC_SECRET,
        secrets=SECRETS,
        sandbox=False,
        max_body_bytes=MAX_BODY_BYTES,
    )


@contextlib.contextmanager
def webhook_app(tmp_path: Path, redis_url: str, signer: Signer) -> Iterator[WebhookApp]:
    settings = settings_for(tmp_path, redis_url)
    # PayPal's signing certificate, as the first genuine delivery's prepare() would cache it
    CertStore(tmp_path / "paypal-certs").seed(CERT_URL, signer.pem)
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    # uvicorn's middleware is typed with its own ASGI types, ours with Starlette's
    proxied: Any = ProxyHeadersMiddleware(cast(Any, FastPath(create_app(runtime))))
    asgi = PeerFromHeader(proxied)
    try:
        with TestClient(asgi, raise_server_exceptions=True) as client:
            yield WebhookApp(runtime, client)
    finally:
        runtime.db.dispose()


def sources_on(app: WebhookApp) -> Iterable[str]:
    return sorted(app.runtime.sources)
