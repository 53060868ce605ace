"""W9 refunds against the YooKassa, GetCourse, amoCRM and Telegram sandboxes (in process) and a
real Redis: a request posts the handbook's «Возвраты» message with the card masked; a confirmed
refund returns the money once (YooKassa, or recorded as manual), closes the course access once
and posts one outcome, however often it is confirmed or its job runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from schoolsync.connectors.amocrm.models import LeadUpdate
from schoolsync.connectors.amocrm.webhooks import LeadEvent
from schoolsync.connectors.http import build_client
from schoolsync.connectors.yookassa import YooKassaAccount, YooKassaClient
from schoolsync.connectors.yookassa.models import Refund
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import audit, effects, jobs, outbox, refund_requests, refunds
from schoolsync.core.domain import Money
from schoolsync.core.errors import NotFoundError, UnavailableError
from schoolsync.core.stores import failures
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import refunds as refund_store
from schoolsync.core.stores.payments import MANUAL, NewPayment
from schoolsync.mappings.refunds import RefundRules, card_last4
from schoolsync.sandbox.amocrm import AmoSandboxConfig
from schoolsync.sandbox.getcourse import GetCourseSandboxConfig
from schoolsync.sandbox.server import create_app
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sandbox.yookassa import YooKassaSandboxConfig
from schoolsync.sync_jobs.actors import HANDLERS
from schoolsync.sync_jobs.platforms import YooKassaSetup
from schoolsync.sync_jobs.services.outbox import deliver
from schoolsync.sync_jobs.services.payments import record
from schoolsync.sync_jobs.services.refunds import (
    REFUND_ACTOR,
    confirm_refund,
    on_lead_refund_stage,
    process_refund,
    request_refund,
)
from tests.conftest import RedisServer, serving
from tests.sync_jobs.test_payments import FINANCE, Setup

REFUNDS = -1001000000003
REFUND_STAGE = 1003
SCHOOL = School.model_validate(
    {
        "id": "default",
        "channels": {"finance_income": FINANCE, "refunds": REFUNDS},
        "rules": {"refunds": {"confirm_stage_id": REFUND_STAGE}},
    }
)
CARD = "0000 0000 0000 1234"


class RefundSetup(Setup):
    """The payments setup, with a YooKassa shop and the «Возвраты» channel."""

    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base: str) -> None:
        super().__init__(db, server, tmp_path, base)
        self.ctx.config = AppConfig(schools=[SCHOOL])
        self.yk = httpx.Client(base_url=f"{base}/yookassa", timeout=10)
        account = YooKassaAccount(
            shop_id="100500", secret_key_env="YOOKASSA_KEY", base_url=f"{base}/yookassa/v3"
        )
        client = YooKassaClient(
            build_client(account.base_url, timeout=5),
            account.endpoint,
            "100500",
            "test_sandbox_secret",
        )
        assert self.ctx.platforms is not None
        self.ctx.platforms.schools[SCHOOL.id].yookassa = YooKassaSetup("100500", client)

    def paid_by_yookassa(self, order: dict[str, Any]) -> str:
        """The order paid at the YooKassa shop, in the ledger and matched."""
        payment = self.yk.post(
            "/_sandbox/payments",
            json={"amount": order["cost"], "status": "succeeded", "notify": False},
        ).json()
        record(
            self.ctx,
            SCHOOL.id,
            NewPayment(
                source="yookassa",
                external_id=payment["id"],
                amount=Money(amount=Decimal(order["cost"])),
                reference=order["number"],
            ),
        )
        self.settle_all()
        return str(payment["id"])

    def paid_by_transfer(self, order: dict[str, Any], **extra: Any) -> None:
        record(
            self.ctx,
            SCHOOL.id,
            NewPayment(
                source="card_transfer",
                external_id=f"tg:{order['number']}",
                amount=Money(amount=Decimal(order["cost"])),
                kind=MANUAL,
                payer_name="Демин Саша",
                reference=order["number"],
                **extra,
            ),
        )
        self.settle_all()

    def run_jobs(self) -> int:
        """What workers do with the refund jobs asked for (each as often as it is queued)."""
        with self.db.read() as conn:
            found = list(
                conn.execute(sa.select(jobs).where(jobs.c.actor == REFUND_ACTOR)).mappings()
            )
        for job in found:
            HANDLERS[REFUND_ACTOR](self.ctx, **job["args"])
        self.deliver()
        return len(found)

    def deliver(self) -> None:
        with self.db.read() as conn:
            lanes = outbox_store.due_lanes(conn, datetime.now(UTC))
        for school, lane in lanes:
            deliver(self.ctx, school, lane)

    def refund_messages(self) -> list[str]:
        found = self.tg.get(f"/_sandbox/messages?chat_id={REFUNDS}&present=1").json()
        return [m["text"] for m in found["messages"]]

    def gc_imports(self) -> int:
        return int(self.gc.get("/_sandbox/state").json()["imports"]["ok"])

    def yk_state(self) -> dict[str, Any]:
        return dict(self.yk.get("/_sandbox/state").json())


@pytest.fixture
def setup(sqlite_db: Database, redis_server: RedisServer, tmp_path: Path) -> Iterator[RefundSetup]:
    app = create_app(
        getcourse=GetCourseSandboxConfig(),
        amocrm=AmoSandboxConfig(long_lived_token="pay-token", rate_per_s=1000),
        telegram=TelegramSandboxConfig(),
        yookassa=YooKassaSandboxConfig(rate_per_s=1000),
    )
    with serving(app) as base:
        made = RefundSetup(sqlite_db, redis_server, tmp_path, base)
        made.tg.post("/_sandbox/limits", json={"per_chat_per_s": 1000, "per_chat_burst": 1000})
        yield made


def ask(setup: RefundSetup, number: str, card: str | None = CARD) -> int:
    made = request_refund(
        setup.ctx,
        SCHOOL.id,
        order_number=number,
        card_last4=card_last4(card) if card else None,
        comment="передумала",
        who="test",
    )
    return made.id


def test_a_refund_confirmed_twice_refunds_once_closes_access_once_posts_once(
    setup: RefundSetup,
) -> None:
    order = setup.order()
    payment_id = setup.paid_by_yookassa(order)
    request_id = ask(setup, order["number"])
    imports_before = setup.gc_imports()

    first = confirm_refund(setup.ctx, request_id, who="anna")
    second = confirm_refund(setup.ctx, request_id, who="boris")
    assert (first.confirmed, second.confirmed, second.state) == (True, False, "confirmed")
    assert setup.run_jobs() == 1  # one job, however often it was confirmed
    process_refund(setup.ctx, SCHOOL.id, request_id)  # the job run again (a redelivery)
    setup.run_jobs()
    assert not confirm_refund(setup.ctx, request_id, who="anna").confirmed

    shop = setup.yk_state()
    assert shop["refunds_created"] == 1
    (refund,) = setup.yk.get("/_sandbox/refunds").json()["refunds"]
    assert refund["payment_id"] == payment_id and Decimal(refund["amount"]["value"]) == Decimal(
        order["cost"]
    )
    in_gc = setup.gc.get(f"/_sandbox/orders/{order['number']}").json()
    assert in_gc["status"] == "cancelled"
    assert setup.gc_imports() - imports_before == 1  # the access closed once
    with setup.db.read() as conn:
        (paid,) = ledger.for_order(conn, SCHOOL.id, order["number"])
        (row,) = refund_store.refunds_of(conn, request_id)
        request = refund_store.get_request(conn, request_id)
    assert paid["status"] == "refunded"
    assert (row["status"], row["external_id"]) == ("done", refund["id"])
    assert request is not None and request["state"] == "done"
    assert request["confirmed_by"] == "anna"
    messages = setup.refund_messages()
    assert len(messages) == 2 and messages[0].startswith("Возврат:")
    assert messages[1].startswith("✅ Возврат выполнен: заказ №" + order["number"])
    assert "YooKassa: возвращено" in messages[1]
    assert "Доступ к курсу закрыт: заказ в статусе «Отменен»" in messages[1]


def test_a_job_that_died_after_yookassa_refunded_sends_the_same_key_again(
    setup: RefundSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = setup.order()
    setup.paid_by_yookassa(order)
    request_id = ask(setup, order["number"])
    confirm_refund(setup.ctx, request_id, who="anna")
    real = refund_store.mark_refund
    calls = {"n": 0}

    def crash_once_after_the_refund(conn: Any, refund_id: int, status: str, **kw: Any) -> None:
        if status == "done" and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("worker killed")
        real(conn, refund_id, status, **kw)

    monkeypatch.setattr(refund_store, "mark_refund", crash_once_after_the_refund)
    with pytest.raises(RuntimeError):
        process_refund(setup.ctx, SCHOOL.id, request_id)
    process_refund(setup.ctx, SCHOOL.id, request_id)

    shop = setup.yk_state()
    assert (shop["refunds_created"], shop["idempotent_replays"]) == (1, 1)
    with setup.db.read() as conn:
        assert refund_store.get_request(conn, request_id)["state"] == "done"  # type: ignore[index]


def test_a_card_transfer_is_refunded_as_manual_without_yookassa(setup: RefundSetup) -> None:
    order = setup.order()
    setup.paid_by_transfer(order)
    request_id = ask(setup, order["number"])

    confirm_refund(setup.ctx, request_id, who="anna")
    setup.run_jobs()

    assert setup.yk_state()["requests"] == 0  # YooKassa was never asked
    with setup.db.read() as conn:
        (row,) = refund_store.refunds_of(conn, request_id)
        (paid,) = ledger.for_order(conn, SCHOOL.id, order["number"])
    assert (row["source"], row["status"], row["data"]["method"]) == (
        "card_transfer",
        "done",
        "manual",
    )
    assert paid["status"] == "refunded"
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] == "cancelled"
    outcome = setup.refund_messages()[-1]
    assert "перевод на карту: вернуть вручную на карту **** 1234" in outcome


def test_the_request_message_is_the_handbooks_with_the_card_masked(setup: RefundSetup) -> None:
    order = setup.order(email="yulia@example.org")
    # the mirror has no phone for this buyer: the one the payment came with is shown
    setup.paid_by_transfer(order, payer_phone="+79237956435")

    request_id = ask(setup, order["number"])
    again = request_refund(
        setup.ctx, SCHOOL.id, order_number=order["number"], card_last4=None, comment=None, who="x"
    )
    setup.deliver()

    assert (again.id, again.created) == (request_id, False)  # asked twice, posted once
    (message,) = setup.refund_messages()
    user = order["user"]
    cost = Money(amount=Decimal(order["cost"])).display()
    assert message.split("\n") == [
        "Возврат:",
        "",
        f"{user['last_name']} {user['first_name']} — ФИО",
        f"{order['offer']['title']} — Пакет",
        "79237956435 — Телефон",
        "yulia@example.org — Почта",
        "карта: **** 1234",
        "передумала — Комментарий",
        "",
        f"Заказ №{order['number']}: {cost} (перевод на карту) · запрос №{request_id}",
        f"Подтвердить: schoolsync refunds confirm {request_id}",
    ]
    # the full number is nowhere: not in the request, the outbox, the audit trail
    with setup.db.read() as conn:
        stored = [
            repr(list(conn.execute(sa.select(table)).mappings()))
            for table in (refund_requests, refunds, outbox, audit, effects, jobs)
        ]
    assert not any(CARD in text or CARD.replace(" ", "") in text for text in stored)


def test_an_order_without_payments_is_a_clear_error(setup: RefundSetup) -> None:
    order = setup.order()

    for number in (order["number"], "no-such-order"):
        with pytest.raises(NotFoundError, match=f"order {number} has no payment in the ledger"):
            ask(setup, number)

    with setup.db.read() as conn:
        assert list(conn.execute(sa.select(refund_requests))) == []
        assert list(conn.execute(sa.select(outbox))) == []


def test_a_refund_yookassa_cancels_fails_visibly_and_its_replay_refunds(
    setup: RefundSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = setup.order()
    setup.paid_by_yookassa(order)
    request_id = ask(setup, order["number"])
    confirm_refund(setup.ctx, request_id, who="anna")
    assert setup.ctx.platforms is not None
    client = setup.ctx.platforms.of(SCHOOL.id).yookassa.client  # type: ignore[union-attr]
    keys: list[str] = []

    def canceled(payment_id: str, amount: Decimal, currency: str, key: str, *a: Any) -> Refund:
        keys.append(key)
        return Refund.model_validate(
            {
                "id": "rf-canceled-1",
                "payment_id": payment_id,
                "status": "canceled",
                "amount": {"value": str(amount), "currency": currency},
                "created_at": "2026-11-23T10:00:00.000Z",
                "cancellation_details": {"party": "yoo_money", "reason": "general_decline"},
            }
        )

    monkeypatch.setattr(client, "create_refund", canceled)
    setup.run_jobs()

    with setup.db.read() as conn:
        request = refund_store.get_request(conn, request_id)
        (open_failure,) = failures.listing(conn, status="open")
    assert request is not None and request["state"] == "failed"
    assert "general_decline" in request["error"]
    assert open_failure["actor"] == REFUND_ACTOR
    assert open_failure["args"] == {"school": SCHOOL.id, "request_id": request_id}
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] != "cancelled"
    assert setup.refund_messages()[-1].startswith("❌ Возврат не прошёл")
    assert not confirm_refund(setup.ctx, request_id, who="boris").confirmed

    monkeypatch.undo()
    HANDLERS[open_failure["actor"]](setup.ctx, **open_failure["args"])  # the replay
    setup.deliver()

    assert setup.yk_state()["refunds_created"] == 1
    (refund,) = setup.yk.get("/_sandbox/refunds").json()["refunds"]
    with setup.db.read() as conn:
        (row,) = refund_store.refunds_of(conn, request_id)
        assert refund_store.get_request(conn, request_id)["state"] == "done"  # type: ignore[index]
    assert (row["status"], row["external_id"], row["data"]["attempt"]) == ("done", refund["id"], 1)
    assert keys and row["data"]["key"] != keys[0]  # a new key: the old one means "canceled"
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] == "cancelled"
    assert setup.refund_messages()[-1].startswith("✅ Возврат выполнен")


def test_the_lead_reaching_the_refund_stage_confirms_the_request(setup: RefundSetup) -> None:
    order = setup.order()
    setup.paid_by_transfer(order)
    request_id = ask(setup, order["number"])
    assert setup.ctx.platforms is not None
    amo = setup.ctx.platforms.of(SCHOOL.id).amocrm
    assert amo is not None
    event = LeadEvent(
        action="status", id=order["lead_id"], status_id=REFUND_STAGE, pipeline_id=1000
    )

    on_lead_refund_stage(setup.ctx, SCHOOL, amo, event)  # the lead is not there (re-read)
    with setup.db.read() as conn:
        assert refund_store.get_request(conn, request_id)["state"] == "requested"  # type: ignore[index]

    amo.client.update_leads(
        [LeadUpdate(id=order["lead_id"], status_id=REFUND_STAGE, pipeline_id=1000)]
    )
    on_lead_refund_stage(setup.ctx, SCHOOL, amo, event)
    on_lead_refund_stage(setup.ctx, SCHOOL, amo, event)  # a repeated webhook

    with setup.db.read() as conn:
        request = refund_store.get_request(conn, request_id)
    assert request is not None and request["state"] == "confirmed"
    assert request["confirmed_by"] == f"amocrm:lead:{order['lead_id']}"
    assert setup.run_jobs() == 1


def test_the_refund_rules_refuse_what_would_not_close_the_access() -> None:
    assert RefundRules().close_access_status == "cancelled"
    with pytest.raises(ValidationError, match="does not end a course access"):
        RefundRules.model_validate({"close_access_status": "payed"})
    with pytest.raises(ValidationError, match="comment uses"):
        RefundRules.model_validate({"comment": "Возврат {client}"})
    assert RefundRules.model_validate({"close_access_status": "waiting_for_return"})
    with pytest.raises(ValueError, match="13 to 19 digits") as caught:
        card_last4("1234 5678")
    assert "1234" not in str(caught.value)


def test_a_refund_yookassa_is_still_processing_is_finished_by_its_notification(
    setup: RefundSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = setup.order()
    setup.paid_by_yookassa(order)
    request_id = ask(setup, order["number"])
    confirm_refund(setup.ctx, request_id, who="anna")
    assert setup.ctx.platforms is not None
    client = setup.ctx.platforms.of(SCHOOL.id).yookassa.client  # type: ignore[union-attr]

    def pending(payment_id: str, amount: Decimal, currency: str, key: str, *a: Any) -> Refund:
        return Refund.model_validate(
            {
                "id": "rf-pending-1",
                "payment_id": payment_id,
                "status": "pending",
                "amount": {"value": str(amount), "currency": currency},
                "created_at": "2026-11-23T10:00:00.000Z",
            }
        )

    monkeypatch.setattr(client, "create_refund", pending)
    with pytest.raises(UnavailableError, match="still processing") as waiting:
        process_refund(setup.ctx, SCHOOL.id, request_id)
    assert waiting.value.retry_after == 60
    with setup.db.read() as conn:
        (row,) = refund_store.refunds_of(conn, request_id)
        payment = ledger.get(conn, int(row["payment_id"]))
    assert (row["status"], row["external_id"]) == ("sent", "rf-pending-1")

    # YooKassa's refund.succeeded notification, as provider_payments records it
    with setup.db.write() as conn:
        assert payment is not None
        known = ledger.record_refund(
            conn,
            SCHOOL.id,
            payment_row=payment,
            external_id="rf-pending-1",
            amount=ledger.amount_of(payment),
            status="done",
            data={"origin": "yookassa notification"},
        )
    assert known is False  # the same refund, not a second one
    process_refund(setup.ctx, SCHOOL.id, request_id)  # the job's retry
    setup.deliver()

    with setup.db.read() as conn:
        (row,) = refund_store.refunds_of(conn, request_id)
        assert len(list(conn.execute(sa.select(refunds)))) == 1
        assert ledger.get(conn, int(row["payment_id"]))["status"] == "refunded"  # type: ignore[index]
    assert row["status"] == "done"
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] == "cancelled"
    assert setup.refund_messages()[-1].startswith("✅ Возврат выполнен")
