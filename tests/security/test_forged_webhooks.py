"""Forged and mutated webhook deliveries, against the web role in process (SQLite, real Redis).

For every source that verifies what it receives (all of ``Runtime.sources``), hypothesis sends
``SCHOOLSYNC_SECURITY_EXAMPLES`` (default 1,000) forgeries (see ``forgeries``): each must get
its own 4xx, leave no job and nothing in the queue, and be kept in the inbox as ``rejected``
with a reason naming the problem, or, for a body over the limit (413, never read whole), leave
no row and count in ``schoolsync_webhooks_total{outcome="too_large"}``. A genuine delivery is
accepted before and after the run, and turned into a job: the service keeps serving.

Each example looks only at the rows it made (ids above the newest before it), so that examples
do not depend on one another and a failure replays alone.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa
from dramatiq import Worker
from hypothesis import HealthCheck, given, settings

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.paypal import PayPalClient, PayPalTokens
from schoolsync.core.db.tables import payments
from schoolsync.core.stores import failures, jobs
from schoolsync.core.stores import inbox as inbox_store
from schoolsync.sandbox.paypal import PayPalSandboxConfig, create_app
from schoolsync.sync_jobs.actors import register_actors
from schoolsync.sync_jobs.platforms import SchoolPlatforms
from tests.conftest import RedisServer, serving
from tests.connectors.paypal.signing import Signer, make_signer
from tests.security.forgeries import (
    FORGERIES,
    GENUINE,
    Forgery,
    dumps,
    paypal_event,
)
from tests.security.forgeries.paypal import paypal_delivery
from tests.security.harness import (
    AMOCRM_SECRET,
    GETCOURSE_SECRET,
    PAYPAL_WEBHOOK_ID,
    SCHOOL,
    TELEGRAM_SECRET,
    Delivery,
    WebhookApp,
    webhook_app,
)

EXAMPLES = int(os.environ.get("SCHOOLSYNC_SECURITY_EXAMPLES", "1000"))
CATEGORY = {401: ("signature:",), 403: ("source:",), 400: ("malformed:", "signature:")}


@pytest.fixture(scope="module")
def signer() -> Signer:
    """PayPal's signing key and certificate (the certificate is in the app's cache)."""
    return make_signer()


@pytest.fixture(scope="module")
def attacker() -> Signer:
    return make_signer()


@pytest.fixture
def app(tmp_path: Path, redis_server: RedisServer, signer: Signer) -> Iterator[WebhookApp]:
    with webhook_app(tmp_path, redis_server.url, signer) as served:
        yield served


def accepted(app: WebhookApp, delivery: Delivery) -> dict[str, Any]:
    """Send a genuine delivery; it must be stored as received with its job, and enqueued."""
    marks = app.marks()
    response = app.send(delivery)
    assert response.status_code == 200, (delivery, response.text)
    rows = app.since(marks)
    (row,) = rows.inbox
    assert row["status"] == "received" and row["source"] == delivery.source
    (job,) = rows.jobs
    assert job["actor"] in ("process_inbox_event", "process_inbox_batch")
    assert row["id"] in (job["args"].get("inbox_ids") or [job["args"].get("inbox_id")])
    assert rows.queued == 1
    return row


def check_refused(app: WebhookApp, forgery: Forgery) -> None:
    delivery, expect = forgery.delivery, forgery.expect
    too_large = app.webhook_count(delivery.source, "too_large") if expect.status == 413 else 0
    marks = app.marks()
    response = app.send(delivery)
    rows = app.since(marks)
    assert response.status_code == expect.status, (forgery.attack, response.text)
    assert rows.jobs == [], forgery.attack
    assert rows.queued == 0, forgery.attack
    if expect.status == 413:  # refused before the body is read: nothing to keep but the count
        assert rows.inbox == [], forgery.attack
        assert app.webhook_count(delivery.source, "too_large") == too_large + 1
        return
    (row,) = rows.inbox
    reason = row["reject_reason"] or ""
    assert row["status"] == "rejected", forgery.attack
    assert row["source"] == delivery.source
    assert reason.startswith(CATEGORY[expect.status]), (forgery.attack, reason)
    assert any(part in reason for part in expect.reasons), (forgery.attack, reason)
    assert response.json()["error"] in reason
    assert bytes(row["body"]) == delivery.body  # kept whole, for an operator to look at
    for name, value in parse_qsl(row["query"] or "", keep_blank_values=True):
        assert name != "secret" or value in ("", "***"), "a URL secret was kept"


def test_every_source_that_verifies_has_forgeries(app: WebhookApp) -> None:
    assert set(app.runtime.sources) == set(FORGERIES) == set(GENUINE)


@pytest.mark.parametrize("source", sorted(FORGERIES))
def test_forged_deliveries_are_refused_kept_as_rejected_and_never_processed(
    app: WebhookApp, source: str, signer: Signer, attacker: Signer
) -> None:
    accepted(app, GENUINE[source](signer, 1))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(forgery=FORGERIES[source](signer, attacker))
    def refused(forgery: Forgery) -> None:
        check_refused(app, forgery)

    refused()
    accepted(app, GENUINE[source](signer, 2))  # the service keeps serving


def test_a_yookassa_replay_from_its_network_with_another_amount_is_a_duplicate(
    app: WebhookApp, signer: Signer
) -> None:
    """YooKassa signs nothing: from its own networks a changed body is believed as far as its
    identity goes (the worker re-fetches the payment before acting), and a replay of a stored
    notification is a duplicate: no second row, no job."""
    genuine = GENUINE["yookassa"](signer, 7)
    accepted(app, genuine)
    notification = json.loads(genuine.body)
    notification["object"]["amount"]["value"] = "1.00"
    notification["object"]["status"] = "canceled"
    replayed = Delivery("yookassa", body=dumps(notification), peer=genuine.peer)
    marks = app.marks()
    response = app.send(replayed)
    assert response.status_code == 200 and response.json()["status"] == "duplicate"
    rows = app.since(marks)
    assert rows.inbox == [] and rows.jobs == [] and rows.queued == 0


@pytest.mark.parametrize(
    ("source", "secret"),
    [("getcourse", GETCOURSE_SECRET), ("amocrm", AMOCRM_SECRET), ("telegram", TELEGRAM_SECRET)],
    ids=["getcourse", "amocrm", "telegram"],
)
def test_a_genuine_delivery_is_stored_without_its_secret(
    app: WebhookApp, signer: Signer, source: str, secret: str
) -> None:
    row = accepted(app, GENUINE[source](signer, 3))
    kept = json.dumps(row["headers"]) + (row["query"] or "") + bytes(row["body"]).decode()
    assert secret not in kept


def test_a_secret_sent_in_another_case_or_spelling_is_not_kept_either(app: WebhookApp) -> None:
    marks = app.marks()
    for query in (
        f"Secret={GETCOURSE_SECRET}&id=1",
        f"id=1&SECRET={GETCOURSE_SECRET}",
        f"TOKEN={AMOCRM_SECRET}",
        f"s%65cret={GETCOURSE_SECRET}",
    ):
        app.send(Delivery("getcourse", query=query))
    app.send(
        Delivery(
            "telegram",
            body=b"{}",
            headers=(("X-Telegram-Bot-Api-Secret-Token", TELEGRAM_SECRET[:-1] + "x"),),
        )
    )
    rows = app.since(marks).inbox
    assert len(rows) == 5 and {r["status"] for r in rows} == {"rejected"}
    for row in rows:
        kept = json.dumps(row["headers"]) + (row["query"] or "")
        assert GETCOURSE_SECRET not in kept and AMOCRM_SECRET not in kept
        assert TELEGRAM_SECRET[:-1] not in kept  # a near miss is almost the secret


# --- PayPal: the signature covers only the CRC-32 of the body ---------------------------------


def crc_fixed(body: bytes, target: int, filler_at: int, filler_len: int) -> bytes:
    """``body`` with letters of ``body[filler_at:filler_at + filler_len]`` (all ``a``) turned
    into ``c`` where needed so that its CRC-32 is ``target``. CRC-32 is affine over GF(2):
    each such flip XORs a fixed 32-bit vector into the CRC, so a linear system picks them."""
    zeros = bytes(len(body))
    base = zlib.crc32(zeros)
    vectors = []
    for i in range(filler_len):
        flip = bytearray(len(body))
        flip[filler_at + i] = ord("a") ^ ord("c")
        vectors.append(zlib.crc32(bytes(flip)) ^ base)
    want = zlib.crc32(body) ^ target
    # Gaussian elimination: rows are (vector, set of flips making it)
    pivots: dict[int, tuple[int, int]] = {}
    for i, vector in enumerate(vectors):
        combo = 1 << i
        for bit in sorted(pivots, reverse=True):
            if vector >> bit & 1:
                vector ^= pivots[bit][0]
                combo ^= pivots[bit][1]
        if vector:
            pivots[vector.bit_length() - 1] = (vector, combo)
    chosen = 0
    for bit in sorted(pivots, reverse=True):
        if want >> bit & 1:
            want ^= pivots[bit][0]
            chosen ^= pivots[bit][1]
    assert want == 0, "the filler is too short to fix the CRC"
    out = bytearray(body)
    for i in range(filler_len):
        if chosen >> i & 1:
            out[filler_at + i] = ord("c")
    return bytes(out)


def rewritten(genuine: bytes, event: dict[str, Any]) -> bytes:
    """``event`` as a body with the CRC-32 of ``genuine`` (its ``summary`` is the filler)."""
    event = {**event, "summary": "a" * 64}
    draft = dumps(event)
    forged = crc_fixed(draft, zlib.crc32(genuine), draft.index(b"a" * 64), 64)
    assert zlib.crc32(forged) == zlib.crc32(genuine) and forged != genuine
    return forged


def sandbox_client(base_url: str) -> PayPalClient:
    config = PayPalSandboxConfig()
    endpoint = Endpoint("paypal", "paypal")
    http = build_client(base_url, timeout=5)
    tokens = PayPalTokens(http, endpoint, config.client_id, config.client_secret)
    return PayPalClient(http, endpoint, tokens, webhook_id=PAYPAL_WEBHOOK_ID)


def work(app: WebhookApp, job_ids: list[int], timeout_s: float = 20) -> dict[int, str]:
    """Run the queued jobs with a worker as ``schoolsync worker`` runs them (the job ledger
    records every final failure) until ``job_ids`` are finished; their statuses."""
    runtime = app.runtime
    register_actors(runtime.broker, runtime.context, time_limit_ms=10_000)
    worker = Worker(runtime.broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with runtime.db.read() as conn:
                found = {i: jobs.get(conn, i) for i in job_ids}
            statuses = {i: str(row["status"]) if row else "" for i, row in found.items()}
            if all(status in jobs.FINISHED for status in statuses.values()):
                return statuses
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
    finally:
        worker.stop()


def test_a_paypal_body_rewritten_to_the_same_crc32_records_only_paypals_figures(
    app: WebhookApp, signer: Signer
) -> None:
    """PayPal signs crc32(body), not the body: a genuine delivery's headers verify any body
    with the same CRC-32, so the web role stores such a forgery (it cannot tell; PayPal's
    online verification checks the same CRC). The guarantee is the worker's: the capture an
    event names is re-fetched from PayPal and recorded as PayPal has it, so a made-up capture
    fails visibly and a made-up amount never reaches the ledger."""
    with serving(create_app(PayPalSandboxConfig())) as paypal_url:
        platforms = app.runtime.context.platforms
        assert platforms is not None
        assert isinstance(platforms.of(SCHOOL).paypal, PayPalClient)  # the workers have one
        # PayPal only (here, its sandbox): settling a payment must not reach other platforms
        platforms.schools[SCHOOL] = SchoolPlatforms(paypal=sandbox_client(paypal_url))
        paid = httpx.post(
            f"{paypal_url}/_sandbox/captures", json={"amount": "25.10", "currency": "USD"}
        )
        capture_id = paid.json()["capture"]["id"]
        # Given a genuine delivery of a real capture (its signature headers are not secret)
        body = dumps(paypal_event("WH-GENUINE-0004", capture_id, Decimal("25.10")))
        genuine = paypal_delivery(
            body, signer.headers(body, PAYPAL_WEBHOOK_ID, transmission_id="t-4")
        )
        marks = app.marks()
        accepted(app, genuine)
        job_ids = [job["id"] for job in app.since(marks).jobs]
        # When bodies with its CRC-32 name another capture, or the real one with another
        # amount, and are sent with its headers
        forged_rows = []
        for event_id, forged_capture in (
            ("WH-FORGED-0001", "FORGEDCAPTURE1"),
            ("WH-FORGED-0002", capture_id),
        ):
            forged = rewritten(
                genuine.body, paypal_event(event_id, forged_capture, Decimal("9999.00"))
            )
            assert json.loads(forged)["resource"]["amount"]["value"] == "9999.00"
            marks = app.marks()
            response = app.send(Delivery("paypal", body=forged, headers=genuine.headers))
            assert response.status_code == 200, response.text  # the signature verifies
            rows = app.since(marks)
            (row,) = rows.inbox
            (job,) = rows.jobs
            forged_rows.append(row["id"])
            job_ids.append(job["id"])
        statuses = work(app, job_ids)

    # Then the ledger holds PayPal's figures only, and the made-up capture is a failure
    genuine_job, unknown_job, known_job = job_ids
    assert statuses == {genuine_job: "done", unknown_job: "failed", known_job: "done"}
    with app.runtime.db.read() as conn:
        ledger = [dict(r) for r in conn.execute(sa.select(payments)).mappings()]
        failure = failures.for_job(conn, unknown_job)
        unknown_row = inbox_store.get(conn, forged_rows[0])
    assert [(r["source"], r["external_id"], r["amount_minor"], r["currency"]) for r in ledger] == [
        ("paypal", capture_id, 2510, "USD")
    ]
    assert failure is not None and failure["error_class"] == "NotFoundError"
    assert (
        "PayPal has no capture FORGEDCAPTURE1: the notification was not recorded "
        "(forged or from another account?)"
    ) in failure["error_message"]
    assert unknown_row is not None and unknown_row["status"] == "received"  # kept to inspect
