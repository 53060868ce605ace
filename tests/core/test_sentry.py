"""Sentry events and breadcrumbs leave the process without personal data or secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from schoolsync.core.sentry import init_sentry, scrub_breadcrumb, scrub_event, tag_failure
from schoolsync.core.settings import Settings

DSN = "https://public@example.invalid/1"
EMAIL = "alice.smith@example.com"
PHONE = "+7 923 555-12-34"
CARD = "4111 1111 1111 1111"
TOKEN = "sk_live_abcdefghijklmnop1234"
# what must not appear anywhere in what is sent, in any spelling
FORBIDDEN = [
    EMAIL,
    "lice.smith",
    "555-12-34",
    "9235551234",
    CARD,
    "4111111111111111",
    TOKEN,
]


class Capture(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def text(self) -> str:
        return "\n".join(e.serialize().decode("utf-8", "replace") for e in self.envelopes)

    def events(self) -> list[dict[str, Any]]:
        return [
            item.payload.json
            for e in self.envelopes
            for item in e.items
            if item.type == "event" and item.payload.json is not None
        ]


@pytest.fixture
def capture() -> Iterator[Capture]:
    transport = Capture()
    on = init_sentry(
        Settings(sentry_dsn=SecretStr(DSN), environment="test"), "test", transport=transport
    )
    assert on
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
        for scope in (sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()):
            scope.clear()


def _assert_clean(text: str) -> None:
    leaked = [seed for seed in FORBIDDEN if seed in text]
    assert not leaked, f"leaked into Sentry: {leaked}"


def _charge(customer: str) -> None:
    phone = PHONE
    card = CARD
    auth = f"Bearer {TOKEN}"
    api_token = TOKEN  # noqa: F841 (a local Sentry would capture)
    payload = {"customer": customer, "note": f"call {phone}", "headers": {"Authorization": auth}}
    raise ValueError(f"charge failed for {customer} {phone} card {card} with {auth} {payload}")


def test_exception_message_and_locals_are_scrubbed(capture: Capture) -> None:
    sentry_sdk.set_context("dramatiq", {"data": {"args": [EMAIL, PHONE, CARD]}})
    sentry_sdk.set_extra("customer", {"email": EMAIL, "secret": TOKEN})
    sentry_sdk.set_tag("who", EMAIL)
    sentry_sdk.set_user({"email": EMAIL})
    try:
        _charge(EMAIL)
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush()
    events = capture.events()
    assert len(events) == 1
    event = events[0]
    assert event["release"].startswith("schoolsync@")
    assert event["environment"] == "test"
    assert event["tags"]["role"] == "test"
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["function"] == "_charge"
    assert "vars" in frame  # context kept, values masked
    assert "a***@example.com" in json.dumps(event)
    _assert_clean(capture.text())


def test_breadcrumb_from_a_log_line_is_scrubbed(capture: Capture) -> None:
    logging.getLogger("schoolsync.test").warning("signed up %s with %s", EMAIL, CARD)
    sentry_sdk.capture_message("something happened")
    sentry_sdk.flush()
    (event,) = capture.events()
    crumbs = event["breadcrumbs"]["values"]
    assert any("signed up" in json.dumps(c) for c in crumbs)
    _assert_clean(capture.text())


def test_request_data_headers_and_cookies_are_scrubbed(capture: Capture) -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    client = TestClient(app, raise_server_exceptions=False)
    response = client.get(
        "/boom",
        params={"email": EMAIL, "token": TOKEN, "phone": PHONE},
        headers={"Authorization": f"Bearer {TOKEN}", "X-Card": CARD},
        cookies={"session": TOKEN},
    )
    assert response.status_code == 500
    sentry_sdk.flush()
    events = capture.events()
    assert events, "the 500 reached Sentry"
    assert events[0]["request"]["headers"]["authorization"] == "***"
    _assert_clean(capture.text())


def test_failure_id_is_a_tag(capture: Capture) -> None:
    with sentry_sdk.isolation_scope():
        tag_failure(42)
        sentry_sdk.capture_message("job failed")
    sentry_sdk.flush()
    (event,) = capture.events()
    assert event["tags"]["failure_id"] == "42"


def test_without_a_dsn_nothing_is_initialised() -> None:
    assert not init_sentry(Settings(sentry_dsn=None), "web")
    assert not sentry_sdk.get_client().is_active()


def test_scrub_breadcrumb_masks_data_and_secret_keys() -> None:
    crumb = {"message": f"GET /x?email={EMAIL}", "data": {"url": f"/x?token={TOKEN}", "key": "k"}}
    out = scrub_breadcrumb(crumb, {})
    _assert_clean(json.dumps(out))
    assert out["data"]["key"] == "***"


SEEDS = [
    "alice.smith@example.com",
    "bob+tag@mail.ru",
    "4111111111111111",
    "5500 0055 5555 5559",
    "378282246310005",
    "6011-1111-1111-1117",
]
_filler = st.text(alphabet="abcxyz ", max_size=8)
_seeded = st.builds(lambda a, s, b: f"{a} {s} {b}", _filler, st.sampled_from(SEEDS), _filler)
_leaf = _filler | _seeded | st.integers() | st.none() | st.booleans()
_key = st.text(alphabet="abcxyz_", max_size=8) | _seeded
_tree = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_key, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(extra=_tree, contexts=_tree, message=_seeded)
def test_injected_emails_and_cards_never_survive(extra: Any, contexts: Any, message: str) -> None:
    event = {"message": message, "extra": {"x": extra}, "contexts": {"c": {"v": contexts}}}
    text = json.dumps(scrub_event(event, {}))
    assert not [seed for seed in SEEDS if seed in text]


def test_a_failing_actor_reports_its_message_scrubbed(capture: Capture) -> None:
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()  # built after init: the Dramatiq integration adds its middleware
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, max_retries=0)
    def notify(email: str, card: str) -> None:
        raise RuntimeError(f"could not notify {email}")

    notify.send(EMAIL, CARD)
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join(notify.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    sentry_sdk.flush()
    events = capture.events()
    assert events and "dramatiq" in events[0]["contexts"]
    _assert_clean(capture.text())
