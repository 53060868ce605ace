"""No personal data and no secret in the logs or in Sentry, with the whole service running.

``schoolsync run`` with the sandboxes (the ``w1`` harness of tests/e2e), JSON logs, and Sentry
pointed at a local capture endpoint. Personal data goes in every way it comes in production:
GetCourse orders (chosen emails and phones), a generic webhook holding an email, a phone and a
card number, a callback with a status nobody mapped, a job that fails with an email in its
exception message, tokens in query strings, and the admin API used with its token. Then every
line of ``service.log`` (web, workers, scheduler, sandboxes) and every envelope Sentry sent is
searched for each of them, in every spelling they were given or could be written in.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from schoolsync.app.platforms import SANDBOX_SECRETS
from schoolsync.connectors.generic.webhooks import sign
from tests.e2e.conftest import Service
from tests.e2e.test_w1_intake import Sandboxes

pytestmark = pytest.mark.e2e

GENERIC_SECRET = "pii-scan-generic-Xq7Lm2Vt9Rw4"
ADMIN_TOKEN = "pii-scan-admin-Kd8Nf3Hs6Zp1Jc"
SECRETS = {
    "SCHOOLSYNC_GENERIC_SECRET": GENERIC_SECRET,
    "SCHOOLSYNC_ADMIN_TOKEN": ADMIN_TOKEN,
    "amoCRM long-lived token": SANDBOX_SECRETS["sandbox_amocrm_token"],
    "GetCourse callback secret": SANDBOX_SECRETS["sandbox_getcourse_callback"],
    "amoCRM webhook secret": SANDBOX_SECRETS["sandbox_amocrm_webhook"],
    "GetCourse API key": SANDBOX_SECRETS["sandbox_getcourse_key"],
    "Telegram bot token": SANDBOX_SECRETS["sandbox_telegram_token"],
}
ORDERS = [  # GetCourse buyers: (email, phone as typed)
    ("irina.sokolova.pii@example.org", "+7 (923) 555-01-23"),
    ("pavel.lebedev.pii@example.net", "89165550177"),
]
WEBHOOK_EMAIL = "olga.zaytseva.pii@example.com"
WEBHOOK_PHONE = "+7 916 555-02-48"
CARD = "4276 3800 4217 5930"  # passes the Luhn check
CALLBACK_EMAIL = "parent.morozova.pii@example.org"
CALLBACK_PHONE = "+79035550311"
FAILING_EMAIL = "roman.orlov.pii@example.net"


def email_forms(email: str) -> list[str]:
    local = email.split("@")[0]
    return [email, email.lower(), quote(email, safe=""), local[1:]]  # masking keeps local[0]


def phone_forms(phone: str) -> list[str]:
    digits = "".join(c for c in phone if c.isdigit())
    national = digits[-10:]
    return [
        phone,
        quote(phone, safe=""),
        f"+7{national}",
        f"7{national}",
        f"8{national}",
        national,
        f"{national[3:6]}-{national[6:8]}-{national[8:]}",
    ]


def card_forms(card: str) -> list[str]:
    digits = card.replace(" ", "")
    return [card, digits, quote(card, safe=""), digits[4:12]]


def forbidden() -> dict[str, str]:
    """Each text that must not appear, with what it is (never printed as itself)."""
    found: dict[str, str] = {}
    for email in [*(e for e, _ in ORDERS), WEBHOOK_EMAIL, CALLBACK_EMAIL, FAILING_EMAIL]:
        found.update({form: f"email {email[:1]}…" for form in email_forms(email)})
    for phone in [*(p for _, p in ORDERS), WEBHOOK_PHONE, CALLBACK_PHONE]:
        found.update({form: f"phone …{phone[-2:]}" for form in phone_forms(phone)})
    found.update({form: "card number" for form in card_forms(CARD)})
    found.update({value: name for name, value in SECRETS.items()})
    return found


# --- Sentry, captured ----------------------------------------------------------------------------


@dataclass
class Captured:
    bodies: list[tuple[str, bytes]] = field(default_factory=list)  # (path, raw body)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def items(self) -> list[tuple[str, Any]]:
        """(where, JSON value) of every line of every envelope that is JSON: the envelope's
        header, each item's header, each item's payload."""
        found: list[tuple[str, Any]] = []
        with self.lock:
            bodies = list(self.bodies)
        for index, (path, body) in enumerate(bodies):
            for number, line in enumerate(body.decode("utf-8", "replace").splitlines()):
                try:
                    found.append((f"envelope {index} ({path}) line {number}", json.loads(line)))
                except ValueError:
                    continue
        return found

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) of every envelope as sent, and of each JSON line decoded."""
        with self.lock:
            raw = [
                (f"envelope {i} ({path})", body.decode("utf-8", "replace"))
                for i, (path, body) in enumerate(self.bodies)
            ]
        decoded = [(where, json.dumps(item, ensure_ascii=False)) for where, item in self.items()]
        return raw + decoded

    def events(self) -> list[dict[str, Any]]:
        return [item for _, item in self.items() if isinstance(item, dict) and "exception" in item]


class _Handler(BaseHTTPRequestHandler):
    captured: Captured

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        encoding = (self.headers.get("content-encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding:
            body = f"undecodable content-encoding {encoding}".encode()
        with self.captured.lock:
            self.captured.bodies.append((self.path, body))
        answer = b'{"id": "00000000000000000000000000000000"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@pytest.fixture
def sentry() -> Iterator[tuple[str, Captured]]:
    """A Sentry DSN pointing at a local server that keeps every envelope it is sent."""
    captured = Captured()
    handler = type("Handler", (_Handler,), {"captured": captured})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", captured
    finally:
        server.shutdown()
        server.server_close()


# --- the run -----------------------------------------------------------------------------------


def post_generic(service: Service, event: dict[str, Any], **params: str) -> httpx.Response:
    body = json.dumps(event, ensure_ascii=False).encode()
    return service.http.post(
        "/webhooks/generic",
        params=params,
        content=body,
        headers={"X-Signature": sign(GENERIC_SECRET.encode(), body)},
    )


def seed(service: Service, sandboxes: Sandboxes) -> None:
    for email, phone in ORDERS:
        made = sandboxes.post(
            "/getcourse/_sandbox/orders", {"count": 1, "email": email, "phone": phone}
        )
        assert [order["email"] for order in made["orders"]] == [email]
    note = {
        "id": "pii-note-1",
        "type": "customer.note",
        "data": {
            "email": WEBHOOK_EMAIL,
            "phone": WEBHOOK_PHONE,
            "card": CARD,
            "comment": f"paid by card {CARD}, call {WEBHOOK_PHONE} or write to {WEBHOOK_EMAIL}",
        },
    }
    assert post_generic(service, note).status_code == 200
    failing = {  # fails for good, with the email in its exception message
        "id": "pii-fail-1",
        "type": "test.fail",
        "data": {
            "until_file": f"/nonexistent/{FAILING_EMAIL}",
            "email": WEBHOOK_EMAIL,
            "phone": WEBHOOK_PHONE,
            "card": CARD,
        },
    }
    assert post_generic(service, failing).status_code == 200
    unknown_status = service.http.post(
        "/webhooks/getcourse",
        params={
            "secret": SANDBOX_SECRETS["sandbox_getcourse_callback"],
            "id": "777",
            "number": "90001",
            "status": "archived_by_robot",
            "email": CALLBACK_EMAIL,
            "phone": CALLBACK_PHONE,
        },
    )
    assert unknown_status.status_code == 200, unknown_status.text
    # tokens where they do not belong: in query strings, on a forged delivery
    forged = service.http.post(
        "/webhooks/generic",
        params={"token": ADMIN_TOKEN, "secret": GENERIC_SECRET, "email": WEBHOOK_EMAIL},
        content=json.dumps(note).encode(),
        headers={"X-Signature": "0" * 64},
    )
    assert forged.status_code == 401
    assert service.http.get("/admin/api/overview", params={"token": ADMIN_TOKEN}).status_code == 401
    assert service.http.get("/admin/", params={"token": ADMIN_TOKEN}).status_code in (200, 303)
    # and where it does: the admin API, reading what holds personal data
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert service.http.get("/admin/api/failures", headers=bearer).status_code == 200
    assert service.http.get("/admin/api/inbox/1", headers=bearer).status_code == 200


def _count(service: Service, sql: str) -> Callable[[], bool]:
    def check() -> bool:
        return bool(service.query(sql))

    return check


def test_no_personal_data_or_secret_reaches_the_logs_or_sentry(
    w1: Callable[..., tuple[Service, Sandboxes]], sentry: tuple[str, Captured]
) -> None:
    dsn, captured = sentry
    service, sandboxes = w1(
        SCHOOLSYNC_SENTRY_DSN=dsn,
        SCHOOLSYNC_LOG_FORMAT="json",
        SCHOOLSYNC_GENERIC_SECRET=GENERIC_SECRET,
        SCHOOLSYNC_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    seed(service, sandboxes)
    service.wait_for(
        _count(service, "SELECT 1 FROM orders WHERE crm_state = 'synced' LIMIT 1 OFFSET 1"),
        timeout=40,
        what="both GetCourse orders in the CRM",
    )
    service.wait_for(
        _count(service, "SELECT 1 FROM failures LIMIT 1 OFFSET 1"),
        timeout=40,
        what="two failures (the unknown status, the failing job)",
    )
    failures = service.query("SELECT error_message FROM failures")
    assert any(FAILING_EMAIL in row["error_message"] for row in failures), (
        "the failing job's message does not hold the email: the scan would prove less"
    )
    service.wait_for(lambda: bool(captured.events()), timeout=30, what="a Sentry event")
    service.stop()  # every process flushes its logs and its Sentry queue

    lines = service.log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert len(lines) > 20, "the service logged next to nothing: the scan would prove nothing"
    assert captured.events(), "no Sentry event was captured: the scan would prove nothing"
    leaks: list[str] = []
    for text, what in forbidden().items():
        for number, line in enumerate(lines, 1):
            if text in line:
                shown = line.replace(text, f"<{what}>")[:240]
                leaks.append(f"{what} in service.log line {number}: {shown}")
        for where, sent in captured.texts():
            if text in sent:
                leaks.append(f"{what} in Sentry {where}")
    assert leaks == [], "\n".join(leaks[:40])
