"""W5 PayPal: a webhook event is only a hint. What it names is re-fetched from the PayPal sandbox
(in process) and recorded as PayPal has it, never as the body says: PayPal signs only a CRC-32
of the body, so a body can be rewritten under a genuine signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.paypal import PayPalClient, PayPalTokens
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import jobs, payments, refunds
from schoolsync.core.errors import ConfigError, MalformedInputError, NotFoundError
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import inbox
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.sandbox.paypal import PayPalSandboxConfig, create_app
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import Platforms, SchoolPlatforms
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services.provider_payments import process_paypal_event
from tests.conftest import RedisServer, serving

SCHOOL = School.model_validate({"id": "default"})
CONFIG = PayPalSandboxConfig()
PAYER = {"given_name": "Sasha", "surname": "Demin", "email": "Sasha@Example.com"}


class PayPalSetup:
    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base: str) -> None:
        self.db = db
        self.sandbox = httpx.Client(base_url=base, timeout=10)
        endpoint = Endpoint("paypal", "sandbox")
        http = build_client(base, timeout=5)
        self.client = PayPalClient(
            http,
            endpoint,
            PayPalTokens(http, endpoint, CONFIG.client_id, CONFIG.client_secret),
            webhook_id=CONFIG.webhook_id,
        )
        broker = build_broker(server.url, broker=BrokerSettings(), jobs=JobSettings())
        self.ctx = JobContext(
            config=AppConfig(schools=[SCHOOL]),
            db=db,
            queue=JobQueue(db, broker),
            jobs=JobSettings(),
            data_dir=tmp_path,
            platforms=Platforms(
                redis=redis.Redis.from_url(server.url),
                schools={SCHOOL.id: SchoolPlatforms(paypal=self.client)},
            ),
        )

    def pay(self, amount: str = "1500.00", **extra: Any) -> dict[str, Any]:
        """A buyer pays at PayPal (no webhook is sent): the order, capture and event."""
        body = {"amount": amount, "currency": "RUB", "invoice_id": "GC-1001", "payer": PAYER}
        made = self.sandbox.post("/_sandbox/captures", json={**body, **extra})
        made.raise_for_status()
        result: dict[str, Any] = made.json()
        return result

    def stored(self, event: dict[str, Any] | bytes) -> int:
        """An event as the web role stores it once its signature verified."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        with self.db.write() as conn:
            inbox_id = inbox.insert(
                conn,
                InboxRecord(
                    school=SCHOOL.id,
                    source="paypal",
                    dedup_key=json.loads(body)["id"],
                    body=body,
                ),
            )
        assert inbox_id is not None
        return inbox_id

    def process(self, event: dict[str, Any] | bytes) -> int:
        inbox_id = self.stored(event)
        process_paypal_event(self.ctx, inbox_id, None)
        return inbox_id

    def ledger(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(sa.select(payments)).mappings()]

    def refunds(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(sa.select(refunds)).mappings()]

    def status(self, inbox_id: int) -> str:
        with self.db.read() as conn:
            row = inbox.get(conn, inbox_id)
        assert row is not None
        return str(row["status"])


@pytest.fixture
def setup(sqlite_db: Database, redis_server: RedisServer, tmp_path: Path) -> Iterator[PayPalSetup]:
    with serving(create_app(CONFIG)) as base:
        yield PayPalSetup(sqlite_db, redis_server, tmp_path, base)


def event_of(made: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(made["event"]["body"])
    return event


def test_a_capture_is_recorded_as_paypal_has_it_with_the_orders_payer(setup: PayPalSetup) -> None:
    made = setup.pay()
    inbox_id = setup.process(event_of(made))

    (row,) = setup.ledger()
    assert (row["source"], row["external_id"]) == ("paypal", made["capture"]["id"])
    assert (row["amount_minor"], row["currency"], row["status"]) == (150_000, "RUB", "succeeded")
    assert row["fee_minor"] == 5284  # 3.49 % + 0.49, from PayPal's breakdown
    assert (row["payer_name"], row["payer_email"]) == ("Sasha Demin", "sasha@example.com")
    assert row["reference"] == "GC-1001"
    assert row["data"]["order_id"] == made["order"]["id"]
    assert setup.status(inbox_id) == "processed"
    with setup.db.read() as conn:  # and it is settled by its own job
        assert [r["actor"] for r in conn.execute(sa.select(jobs)).mappings()] == ["settle_payment"]


def test_a_rewritten_body_is_recorded_with_paypals_figures(setup: PayPalSetup) -> None:
    made = setup.pay("1500.00")
    event = event_of(made)
    # Given a body rewritten under the genuine signature: another event id, amount, payer
    event["id"] = "WH-REWRITTEN-0001"
    resource = event["resource"]
    resource["amount"]["value"] = "9999.00"
    resource["seller_receivable_breakdown"]["paypal_fee"]["value"] = "0.00"
    resource["invoice_id"] = "GC-9999"
    resource["payer"] = {"email_address": "thief@example.org", "name": {"given_name": "Thief"}}

    setup.process(event)

    (row,) = setup.ledger()
    assert (row["external_id"], row["amount_minor"]) == (made["capture"]["id"], 150_000)
    assert row["fee_minor"] == 5284
    assert (row["reference"], row["payer_email"]) == ("GC-1001", "sasha@example.com")


def test_the_same_capture_twice_is_one_payment(setup: PayPalSetup) -> None:
    made = setup.pay()
    event = event_of(made)
    setup.process(event)
    event["id"] = "WH-ANOTHER-EVENT-ID"
    setup.process(event)
    assert len(setup.ledger()) == 1


def test_a_capture_paypal_does_not_know_fails_visibly_and_records_nothing(
    setup: PayPalSetup,
) -> None:
    event = event_of(setup.pay())
    event["id"] = "WH-FORGED-0001"
    event["resource"]["id"] = "FORGEDCAPTURE0001"
    inbox_id = setup.stored(event)

    with pytest.raises(NotFoundError) as failed:
        process_paypal_event(setup.ctx, inbox_id, None)

    assert failed.value.message == (
        "PayPal has no capture FORGEDCAPTURE0001: the notification was not recorded "
        "(forged or from another account?)"
    )
    assert failed.value.platform == "paypal"
    assert setup.ledger() == []
    assert setup.status(inbox_id) == "received"  # kept for inspection and replay


def test_an_id_that_is_no_paypal_id_is_malformed_and_never_sent(setup: PayPalSetup) -> None:
    event = event_of(setup.pay())
    event["resource"]["id"] = "../../v1/oauth2/token"
    requests_before = setup.sandbox.get("/_sandbox/state").json()["requests"]
    with pytest.raises(MalformedInputError, match="not a PayPal id"):
        setup.process(event)
    assert setup.sandbox.get("/_sandbox/state").json()["requests"] == requests_before
    assert setup.ledger() == []


def test_a_capture_refunded_before_its_event_is_handled_is_still_money_that_came_in(
    setup: PayPalSetup,
) -> None:
    made = setup.pay("1500.00")
    capture_id = made["capture"]["id"]
    refunded = setup.sandbox.post(f"/_sandbox/captures/{capture_id}/refund", json={}).json()
    inbox_id = setup.process(event_of(made))  # COMPLETED in the body, REFUNDED at PayPal by now
    (payment,) = setup.ledger()
    assert payment["amount_minor"] == 150_000
    assert setup.status(inbox_id) == "processed"

    setup.process(event_of(refunded))  # the refund's own event takes it back out, once
    (refund,) = setup.refunds()
    assert refund["amount_minor"] == 150_000


def test_a_refund_is_recorded_with_paypals_amount(setup: PayPalSetup) -> None:
    made = setup.pay("1500.00")
    capture_id = made["capture"]["id"]
    setup.process(event_of(made))
    refunded = setup.sandbox.post(
        f"/_sandbox/captures/{capture_id}/refund", json={"amount": "500.00"}
    ).json()
    event = event_of(refunded)
    event["resource"]["amount"]["value"] = "1500.00"  # rewritten: a full refund

    setup.process(event)

    (refund,) = setup.refunds()
    assert (refund["external_id"], refund["amount_minor"]) == (refunded["refund"]["id"], 50_000)
    (payment,) = setup.ledger()
    assert payment["status"] == "succeeded"  # partly refunded: still money received


def test_a_refund_of_a_capture_that_is_not_refunded_records_nothing(setup: PayPalSetup) -> None:
    made = setup.pay("1500.00")
    setup.process(event_of(made))
    other = setup.pay("100.00")  # its refund event, rewritten to name the first capture
    refunded = setup.sandbox.post(
        f"/_sandbox/captures/{other['capture']['id']}/refund", json={}
    ).json()
    event = event_of(refunded)
    event["id"] = "WH-REFUND-REWRITTEN"
    for link in event["resource"]["links"]:
        if link["rel"] == "up":
            link["href"] = link["href"].rsplit("/", 1)[0] + "/" + made["capture"]["id"]
    event["resource"]["amount"]["value"] = "1500.00"

    inbox_id = setup.process(event)

    assert setup.refunds() == []
    assert setup.ledger()[0]["status"] == "succeeded"
    assert setup.status(inbox_id) == "processed"


def test_a_refund_paypal_does_not_know_fails_visibly(setup: PayPalSetup) -> None:
    made = setup.pay("1500.00")
    setup.process(event_of(made))
    refunded = setup.sandbox.post(
        f"/_sandbox/captures/{made['capture']['id']}/refund", json={}
    ).json()
    event = event_of(refunded)
    event["resource"]["id"] = "FORGEDREFUND00001"
    with pytest.raises(NotFoundError, match="PayPal has no refund FORGEDREFUND00001"):
        setup.process(event)
    assert setup.refunds() == []


def test_a_v1_sale_is_recorded_as_paypal_has_it(setup: PayPalSetup) -> None:
    sold = setup.sandbox.post(
        "/_sandbox/sales", json={"amount": "20.00", "currency": "USD", "invoice_number": "GC-7"}
    ).json()
    event = event_of(sold)
    event["resource"]["amount"]["total"] = "2000.00"

    setup.process(event)

    (row,) = setup.ledger()
    assert (row["external_id"], row["amount_minor"], row["currency"]) == (
        sold["sale"]["id"],
        2000,
        "USD",
    )
    assert (row["fee_minor"], row["reference"]) == (119, "GC-7")
    assert row["data"]["parent_payment"] == sold["sale"]["parent_payment"]

    event["id"], event["resource"]["id"] = "WH-FORGED-SALE", "FORGEDSALE0000001"
    with pytest.raises(NotFoundError, match="PayPal has no sale FORGEDSALE0000001"):
        setup.process(event)
    assert len(setup.ledger()) == 1


def test_other_events_are_noted_and_a_school_without_paypal_is_a_config_error(
    setup: PayPalSetup,
) -> None:
    noted = setup.process({"id": "WH-OTHER", "event_type": "CHECKOUT.ORDER.APPROVED"})
    assert setup.status(noted) == "processed"

    assert setup.ctx.platforms is not None
    setup.ctx.platforms.schools[SCHOOL.id].paypal = None
    with pytest.raises(ConfigError, match="no PayPal account"):
        setup.process(event_of(setup.pay()))
    assert setup.ledger() == []


def test_a_refund_rewritten_to_name_another_refunded_capture_is_malformed(
    setup: PayPalSetup,
) -> None:
    first, second = setup.pay("1500.00"), setup.pay("100.00")
    for made in (first, second):
        setup.process(event_of(made))
    setup.sandbox.post(f"/_sandbox/captures/{first['capture']['id']}/refund", json={})
    refunded = setup.sandbox.post(
        f"/_sandbox/captures/{second['capture']['id']}/refund", json={}
    ).json()
    event = event_of(refunded)
    for link in event["resource"]["links"]:
        if link["rel"] == "up":
            link["href"] = link["href"].rsplit("/", 1)[0] + "/" + first["capture"]["id"]

    with pytest.raises(MalformedInputError, match=r"not .* as the notification says"):
        setup.process(event)
    assert setup.refunds() == []
