"""W5/W6 settling against the GetCourse, amoCRM and Telegram sandboxes (in process) and a real
Redis: a payment is matched to its order, GetCourse is told once where it did not see the money,
the lead moves to won, and one line goes to ФИНАНСЫ ПРИХОДЫ, however often it is recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.oauth import LongLivedToken
from schoolsync.connectors.getcourse.client import GetCourseClient
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.pacing import Pacer
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores.payments import MANUAL, NewPayment
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.sandbox.amocrm import AmoSandboxConfig
from schoolsync.sandbox.getcourse import GetCourseSandboxConfig
from schoolsync.sandbox.server import create_app
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import (
    AmoCrmSetup,
    GetCourseSetup,
    Platforms,
    SchoolPlatforms,
    TelegramSetup,
)
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services.outbox import deliver
from schoolsync.sync_jobs.services.payments import record, settle
from tests.conftest import RedisServer, serving

FINANCE = -1001000000002
SCHOOL = School.model_validate({"id": "default", "channels": {"finance_income": FINANCE}})
MAPPING = AmoCrmMapping.model_validate(
    {"pipeline_id": 1000, "stages": {"new": 1002, "payed": 142}, "fields": {"order_number": 5001}}
)


class Setup:
    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base: str) -> None:
        self.db = db
        self.gc = httpx.Client(base_url=f"{base}/getcourse", timeout=10)
        self.amo = httpx.Client(base_url=f"{base}/amocrm", timeout=10)
        self.tg = httpx.Client(base_url=f"{base}/telegram", timeout=10)
        client = redis.Redis.from_url(server.url)
        amo_endpoint = Endpoint("amocrm", "sandbox")
        amo = AmoCrmClient(
            build_client(f"{base}/amocrm", timeout=5),
            amo_endpoint,
            LongLivedToken("pay-token", endpoint=amo_endpoint),
            None,
        )
        gc = GetCourseClient(
            build_client(f"{base}/getcourse", timeout=5),
            Endpoint("getcourse", "sandbox"),
            "sandbox-secret-key",
        )
        telegram = TelegramClient(
            build_client(f"{base}/telegram", timeout=5),
            Endpoint("telegram", "sandbox"),
            "123456:sandbox-bot-token",
        )

        def chat_pacer(chat_id: str) -> Pacer:
            return Pacer(client, "telegram-chat", f"sandbox:{chat_id}", rate=500)

        broker = build_broker(server.url, broker=BrokerSettings(), jobs=JobSettings())
        self.ctx = JobContext(
            config=AppConfig(schools=[SCHOOL]),
            db=db,
            queue=JobQueue(db, broker),
            jobs=JobSettings(),
            data_dir=tmp_path,
            platforms=Platforms(
                redis=client,
                schools={
                    SCHOOL.id: SchoolPlatforms(
                        amocrm=AmoCrmSetup(account="sandbox", client=amo, mapping=MAPPING),
                        getcourse=GetCourseSetup(
                            account="sandbox",
                            client=gc,
                            exports=None,  # type: ignore[arg-type]
                            tz=ZoneInfo("Europe/Moscow"),
                        ),
                        telegram=TelegramSetup(
                            bot="sandbox", client=telegram, chat_pacer=chat_pacer
                        ),
                    )
                },
            ),
        )

    def order(self, email: str = "mama@example.org", product: str | None = None) -> dict[str, Any]:
        """A new GetCourse order, as the W1 intake leaves it: mirrored, with its lead."""
        body: dict[str, Any] = {"count": 1, "email": email}
        if product is not None:
            body["product"] = product
        made = self.gc.post("/_sandbox/orders", json=body).json()
        number = made["orders"][0]["number"]
        order = self.gc.get(f"/_sandbox/orders/{number}").json()
        lead = {"name": f"Заказ {number}", "status_id": 1002, "pipeline_id": 1000}
        self.amo.post("/_sandbox/leads", json={"leads": [lead]}).raise_for_status()
        lead_id = next(
            x["id"] for x in self.amo.get("/_sandbox/leads").json() if x["name"] == lead["name"]
        )
        with self.db.write() as conn:
            order_store.upsert_many(
                conn,
                SCHOOL.id,
                [
                    Order(
                        platform="getcourse",
                        account="sandbox",
                        number=number,
                        status=OrderStatus.NEW,
                        product=order["offer"]["title"],
                        cost=Money(amount=Decimal(order["cost"])),
                        created_at=datetime.fromisoformat(order["created_at"]),
                        customer=Customer(
                            email=email,
                            first_name=order["user"]["first_name"],
                            last_name=order["user"]["last_name"],
                        ),
                    )
                ],
                push=False,
            )
            links.put_many(
                conn,
                SCHOOL.id,
                [(("getcourse", "order", number), ("amocrm", "lead", str(lead_id)))],
            )
        return {**order, "lead_id": lead_id}

    def settle_all(self) -> None:
        """What workers do: settle every paid payment, deliver the finance lines."""
        with self.db.read() as conn:
            rows = ledger.listing(conn, SCHOOL.id)
        for row in rows:
            settle(self.ctx, SCHOOL.id, int(row["id"]))
        with self.db.read() as conn:
            lanes = outbox_store.due_lanes(conn, datetime.now(UTC))
        for school, lane in lanes:
            deliver(self.ctx, school, lane)

    def finance_lines(self) -> list[str]:
        found = self.tg.get(f"/_sandbox/messages?chat_id={FINANCE}&present=1").json()
        return [m["text"] for m in found["messages"]]


@pytest.fixture
def setup(sqlite_db: Database, redis_server: RedisServer, tmp_path: Path) -> Iterator[Setup]:
    app = create_app(
        getcourse=GetCourseSandboxConfig(),
        amocrm=AmoSandboxConfig(long_lived_token="pay-token", rate_per_s=1000),
        telegram=TelegramSandboxConfig(),
    )
    with serving(app) as base:
        made = Setup(sqlite_db, redis_server, tmp_path, base)
        made.tg.post("/_sandbox/limits", json={"per_chat_per_s": 1000, "per_chat_burst": 1000})
        yield made


def transfer(external_id: str, amount: str, **extra: Any) -> NewPayment:
    return NewPayment(
        source="card_transfer",
        external_id=external_id,
        amount=Money(amount=Decimal(amount)),
        kind=MANUAL,
        payer_name="Демин Саша",
        **extra,
    )


def test_a_transfer_with_its_order_number_pays_the_order_everywhere_once(setup: Setup) -> None:
    order = setup.order()
    payment = transfer("tg:1", order["cost"], reference=order["number"])

    for _ in range(5):  # the same payment told five times (a replay, a repeated message)
        record(setup.ctx, SCHOOL.id, payment)
    setup.settle_all()
    setup.settle_all()  # a settle job run again

    with setup.db.read() as conn:
        rows = ledger.listing(conn, SCHOOL.id)
    assert len(rows) == 1
    assert (rows[0]["match_state"], rows[0]["order_number"], rows[0]["match_rule"]) == (
        "matched",
        order["number"],
        "reference",
    )
    in_gc = setup.gc.get(f"/_sandbox/orders/{order['number']}").json()
    assert in_gc["status"] == "payed" and in_gc["left"] == "0.00"
    assert setup.gc.get("/_sandbox/state").json()["payments"] == 1
    lead = next(x for x in setup.amo.get("/_sandbox/leads").json() if x["id"] == order["lead_id"])
    assert lead["status_id"] == 142
    cost = Decimal(order["cost"])
    assert setup.finance_lines() == [
        f"{cost:.0f} Демин Саша · перевод на карту · заказ {order['number']}"
    ]


def test_a_payment_of_another_amount_is_matched_but_flagged(setup: Setup) -> None:
    order = setup.order()
    record(setup.ctx, SCHOOL.id, transfer("tg:2", "100", reference=order["number"]))

    setup.settle_all()

    with setup.db.read() as conn:
        row = ledger.listing(conn, SCHOOL.id)[0]
    assert row["match_state"] == "flagged" and "не совпадает" in row["match_note"]
    assert setup.finance_lines()[0].endswith("⚠️ сумма не совпадает с заказом")
    # 100 roubles do not open a course: nothing is written to GetCourse or the CRM
    assert setup.gc.get("/_sandbox/state").json()["payments"] == 0
    lead = next(x for x in setup.amo.get("/_sandbox/leads").json() if x["id"] == order["lead_id"])
    assert lead["status_id"] == 1002


def test_a_second_payment_for_a_paid_order_is_flagged_not_paid_twice(setup: Setup) -> None:
    order = setup.order()
    record(setup.ctx, SCHOOL.id, transfer("tg:5", order["cost"], reference=order["number"]))
    setup.settle_all()
    record(setup.ctx, SCHOOL.id, transfer("tg:6", order["cost"], reference=order["number"]))

    setup.settle_all()

    with setup.db.read() as conn:
        second = ledger.find(conn, SCHOOL.id, "card_transfer", "tg:6")
    assert second is not None and second["match_state"] == "flagged"
    assert "уже есть оплата" in second["match_note"]
    assert setup.gc.get("/_sandbox/state").json()["payments"] == 1
    assert len(setup.finance_lines()) == 2 and "⚠️ нужна проверка" in setup.finance_lines()[1]


def test_one_open_order_with_the_same_email_and_amount_is_matched(setup: Setup) -> None:
    order = setup.order(email="papa@example.org")
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="yookassa",
            external_id="2f5a-1",
            amount=Money(amount=Decimal(order["cost"])),
            payer_email="papa@example.org",
        ),
    )

    setup.settle_all()

    with setup.db.read() as conn:
        row = ledger.listing(conn, SCHOOL.id)[0]
    assert (row["order_number"], row["match_rule"]) == (order["number"], "contact_amount")
    # YooKassa's money GetCourse saw itself: it is not told again
    assert setup.gc.get("/_sandbox/state").json()["payments"] == 0
    assert "YooKassa" in setup.finance_lines()[0]


def test_a_payment_nobody_can_place_waits_for_reconciliation(setup: Setup) -> None:
    first = setup.order(email="twin@example.org")
    # two open orders of one person for the same product: which one is paid is not guessed
    setup.order(email="twin@example.org", product=first["offer"]["title"])
    record(
        setup.ctx,
        SCHOOL.id,
        transfer("tg:3", first["cost"], payer_email="twin@example.org"),
    )

    setup.settle_all()

    with setup.db.read() as conn:
        row = ledger.listing(conn, SCHOOL.id)[0]
    assert row["match_state"] == "unmatched" and row["order_number"] is None
    assert setup.gc.get("/_sandbox/state").json()["payments"] == 0
    assert setup.finance_lines() == [f"{Decimal(first['cost']):.0f} Демин Саша · перевод на карту"]


OURS = "40702810938000012345"


def statement(count: int, broken_at: int | None = None) -> bytes:
    """A 1C exchange statement with ``count`` incoming payments (one of them broken)."""
    lines = [
        "1CClientBankExchange",
        "ВерсияФормата=1.03",
        "Кодировка=Windows",
        "ДатаНачала=13.03.2026",
        "ДатаКонца=13.03.2026",
        f"РасчСчет={OURS}",
        "СекцияРасчСчет",
        f"РасчСчет={OURS}",
        "КонецРасчСчет",
    ]
    for n in range(count):
        amount = "сумма" if n == broken_at else f"{1000 + n}.00"
        lines += [
            "СекцияДокумент=Платежное поручение",
            f"Номер={n + 1}",
            "Дата=13.03.2026",
            f"Сумма={amount}",
            f"ПлательщикСчет=4070281040000000{n:04d}",
            f"Плательщик1=ООО Клиент {n}",
            f"ПлательщикИНН=77{n:08d}",
            f"ПолучательСчет={OURS}",
            "ДатаПоступило=13.03.2026",
            f"НазначениеПлатежа=Оплата обучения по счету {n}",
            "КонецДокумента",
        ]
    lines.append("КонецФайла")
    return "\r\n".join(lines).encode("cp1251")


def test_a_statement_imported_twice_adds_each_payment_once(setup: Setup, tmp_path: Path) -> None:
    from schoolsync.connectors.bankstatements import parse_statement
    from schoolsync.sync_jobs.services.manual_payments import import_statement

    path = tmp_path / "kl_to_1c.txt"
    path.write_bytes(statement(1000, broken_at=500))

    first = import_statement(setup.ctx, SCHOOL.id, path, parse_statement)
    again = import_statement(setup.ctx, SCHOOL.id, path, parse_statement)

    assert (first.new, first.known, again.new, again.known) == (999, 0, 0, 999)
    assert len(first.problems) == 1
    broken = first.problems[0]
    assert broken.line_number == 9 + 500 * 11 + 4  # the Сумма= line of the 501st document
    with setup.db.read() as conn:
        assert len(ledger.listing(conn, SCHOOL.id, limit=5000)) == 999


def test_a_managers_line_in_the_finance_group_is_a_payment_or_a_question(setup: Setup) -> None:
    from schoolsync.connectors.telegram.models import Message
    from schoolsync.sync_jobs.services.manual_payments import from_finance_group

    order = setup.order()

    def said(text: str, message_id: int) -> Message:
        return Message.model_validate(
            {
                "message_id": message_id,
                "date": 1_795_400_000,
                "chat": {"id": FINANCE, "type": "supergroup"},
                "from": {"id": 5, "first_name": "Анна"},
                "text": text,
            }
        )

    cost = Decimal(order["cost"])
    from_finance_group(
        setup.ctx, SCHOOL, said(f"{cost:.0f}₽ Демин Саша сбер заказ {order['number']}", 10)
    )
    from_finance_group(setup.ctx, SCHOOL, said("Саша перевела деньги", 11))
    setup.settle_all()

    with setup.db.read() as conn:
        rows = ledger.listing(conn, SCHOOL.id)
    assert [(r["source"], r["order_number"], r["payer_name"]) for r in rows] == [
        ("card_transfer", order["number"], "Демин Саша")
    ]
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] == "payed"
    lines = setup.finance_lines()
    # the manager's own line is not repeated; the unreadable one gets an answer
    assert len(lines) == 1 and lines[0].startswith("Не поняла строку «Саша перевела деньги»")


UNREADABLE = [
    "Демин Саша",
    "привет, как дела?",
    "2500",
    "2500 за курс",
    "2500 3000 Демин Саша",
    "0 Демин Саша",
    "-2500 Демин Саша",
    "2500,555 Демин",
    "50 000 000 Демин Саша",
    "Демин 4111 1111 1111 1111",
]


def test_ten_unreadable_lines_each_get_an_answer_and_are_kept(setup: Setup) -> None:
    from schoolsync.core.stores import inbox
    from schoolsync.core.stores.inbox import InboxRecord
    from schoolsync.sync_jobs.services.telegram_inbound import process_telegram_update

    with setup.db.write() as conn:
        ids = [
            inbox.insert(
                conn,
                InboxRecord(
                    school=SCHOOL.id,
                    source="telegram",
                    dedup_key=f"telegram:sandbox:{n}",
                    body=json.dumps(
                        {
                            "update_id": n,
                            "message": {
                                "message_id": 100 + n,
                                "date": 1_795_400_000,
                                "chat": {"id": FINANCE, "type": "supergroup"},
                                "from": {"id": 5, "first_name": "Анна"},
                                "text": text,
                            },
                        }
                    ).encode(),
                ),
            )
            for n, text in enumerate(UNREADABLE)
        ]
    for inbox_id in ids:
        assert inbox_id is not None
        process_telegram_update(setup.ctx, inbox_id, None)
    setup.settle_all()

    answers = setup.finance_lines()
    assert len(answers) == 10 and all(a.startswith("Не поняла строку") for a in answers)
    assert "4111 1111 1111 1111" not in "\n".join(answers)  # a card number is not repeated
    assert "**** 1111" in answers[-1]
    with setup.db.read() as conn:
        assert ledger.listing(conn, SCHOOL.id) == []
        kept = [inbox.get(conn, i) for i in ids]
    assert all(row is not None and row["status"] == "processed" for row in kept)
