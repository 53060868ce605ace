"""W12 against the Sheets and Telegram sandboxes (in process) and a real Redis: a report run
twice for the same day leaves one row with the same values; the weekly report sends its chart
once and its digest once, however often it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.sheets.auth import ServiceAccountTokens
from schoolsync.connectors.sheets.client import SheetsClient
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db.tables import feedback as feedback_table
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.stores import feedback as feedback_store
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.core.stores.payments import NewPayment
from schoolsync.mappings.reports import HEADER, day_period, week_period
from schoolsync.sync_jobs.platforms import SheetsSetup
from schoolsync.sync_jobs.services.outbox import deliver
from schoolsync.sync_jobs.services.payments import record
from schoolsync.sync_jobs.services.reports import reports_tick, run_report
from tests.sync_jobs.test_payments import FINANCE, SCHOOL, Setup, setup

__all__ = ["setup"]

MSK = ZoneInfo("Europe/Moscow")
SHEET = "reports-sheet-1"
DAY = date(2026, 11, 10)  # a Tuesday of ISO week 2026-W46


@pytest.fixture
def reports(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> httpx.Client:
    """The school with ``rules.reports`` (sheet and channel) and a Sheets account."""
    base = str(setup.gc.base_url).removesuffix("/getcourse/").removesuffix("/getcourse")
    sheets = httpx.Client(base_url=f"{base}/sheets", timeout=10)
    sheets.post(
        "/_sandbox/spreadsheets",
        json={"id": SHEET, "tabs": {"Ежедневный": [], "Еженедельный": []}},
    ).raise_for_status()
    key_file = tmp_path / "sheets-key.json"
    key_file.write_text(sheets.get("/_sandbox/key-file").text)
    endpoint = Endpoint("sheets", "sandbox")
    client = SheetsClient(
        build_client(f"{base}/sheets", timeout=5),
        endpoint,
        ServiceAccountTokens(key_file, endpoint=endpoint),
    )
    assert setup.ctx.platforms is not None
    setup.ctx.platforms.schools[SCHOOL.id].sheets = SheetsSetup(account="sandbox", client=client)
    school = School.model_validate(
        {
            "id": SCHOOL.id,
            "channels": {"finance_income": FINANCE, "reports": FINANCE},
            "rules": {"reports": {"spreadsheet": SHEET}},
        }
    )
    monkeypatch.setattr(setup.ctx, "config", AppConfig(schools=[school]))
    return sheets


def seed(setup: Setup) -> None:
    """Three orders on DAY (two managers), one paid by YooKassa, and two survey answers."""
    created = datetime(2026, 11, 10, 10, 0, tzinfo=MSK)
    orders = [
        Order(
            platform="getcourse",
            account="sandbox",
            number=str(100 + n),
            status=OrderStatus.NEW,
            cost=Money(amount=Decimal("5000")),
            created_at=created + timedelta(minutes=n),
            customer=Customer(email=f"client{n}@example.org"),
            manager_email=manager,
        )
        for n, manager in enumerate(["anna@school.ru", "anna@school.ru", None])
    ]
    with setup.db.write() as conn:
        order_store.upsert_many(conn, SCHOOL.id, orders, push=False)
        order_store.upsert_many(
            conn,
            SCHOOL.id,
            [orders[0].model_copy(update={"status": OrderStatus.PAYED})],
            push=False,
        )
        for n, score in enumerate([10, 6]):
            feedback_store.add(
                conn,
                SCHOOL.id,
                {
                    "key": f"survey:{n}",
                    "source": "survey",
                    "author_kind": "client",
                    "score": score,
                    "scale": 10,
                    "text": "",
                    "data": {},
                },
            )
        conn.execute(sa.update(feedback_table).values(created_at=created.astimezone(UTC)))
        conn.execute(  # the payment moved the order 30 minutes after it arrived
            sa.update(orders_table)
            .where(orders_table.c.number == "100")
            .values(status_changed_at=(created + timedelta(minutes=30)).astimezone(UTC))
        )
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="yookassa",
            external_id="yk-1",
            amount=Money(amount=Decimal("5000")),
            paid_at=created + timedelta(hours=1),
            reference="100",
        ),
    )


def tab(sheets: httpx.Client, name: str) -> list[list[str]]:
    return [r for r in sheets.get(f"/_sandbox/spreadsheets/{SHEET}").json()["tabs"][name] if r]


def deliver_all(setup: Setup) -> None:
    with setup.db.read() as conn:
        lanes = outbox_store.due_lanes(conn, datetime.now(UTC))
    for school, lane in lanes:
        deliver(setup.ctx, school, lane)


def sent(setup: Setup) -> list[dict[str, Any]]:
    found = setup.tg.get(f"/_sandbox/messages?chat_id={FINANCE}&present=1").json()
    return list(found["messages"])


def test_the_daily_report_run_twice_leaves_one_row_with_the_same_values(
    setup: Setup, reports: httpx.Client
) -> None:
    seed(setup)
    period = day_period(DAY, MSK)

    first = run_report(setup.ctx, SCHOOL.id, period, now=datetime(2026, 11, 11, 6, tzinfo=UTC))
    rows_once = tab(reports, "Ежедневный")
    again = run_report(setup.ctx, SCHOOL.id, period, now=datetime(2026, 11, 12, 6, tzinfo=UTC))
    rows = tab(reports, "Ежедневный")

    assert rows == rows_once and len(rows) == 2
    assert rows[0] == HEADER
    assert rows[1] == first.row == again.row
    row = dict(zip(HEADER, rows[1], strict=True))
    assert row["Период"] == "2026-11-10"
    assert (row["Заказов получено"], row["Взято в работу"], row["Оплачено"]) == ("3", "2", "1")
    assert row["Конверсия, %"] == "50.0"
    assert row["Первое касание, медиана, мин"] == "30"
    assert "yookassa: 5" in row["Выручка по источникам"]
    assert row["NPS (по N)"] == "0.0 (n=2)"  # one promoter, one detractor
    assert row["CSAT, % (по N)"] == "нет данных"  # no 1-5 answers: no data, not 0
    assert row["FCR, % (по N)"] == "нет данных"
    assert (
        row["Занятия: проведено / перенесено / отменено"] == "нет данных / нет данных / нет данных"
    )
    assert (
        "anna@school.ru: 2/2/1/50.0%"
        in row["По менеджерам: получено / в работе / оплачено / конверсия"]
    )
    assert first.digest_queued and not again.digest_queued  # the digest once per day
    assert len(first.digest.splitlines()) == 5


def test_the_weekly_report_sends_one_chart_and_one_digest_once(
    setup: Setup, reports: httpx.Client
) -> None:
    seed(setup)
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=MSK)  # after daily_at (08:00)

    assert reports_tick(setup.ctx, SCHOOL.id, now=monday - timedelta(hours=2)) == []
    assert reports_tick(setup.ctx, SCHOOL.id, now=monday) == ["2026-11-15", "2026-W46"]
    assert reports_tick(setup.ctx, SCHOOL.id, now=monday + timedelta(minutes=10)) == []
    deliver_all(setup)
    # the CLI, later, for the same week: the row is updated, nothing is sent again
    later = run_report(setup.ctx, SCHOOL.id, week_period("2026-W46", MSK))
    deliver_all(setup)

    messages = sent(setup)
    photos = [m for m in messages if m.get("kind") == "photo"]
    weekly = [m for m in messages if "Отчёт за неделю 2026-W46" in m["text"]]
    daily = [m for m in messages if "Отчёт за 15.11.2026" in m["text"]]
    assert len(photos) == 1 and len(weekly) == 1 and len(daily) == 1
    assert photos[0]["photo"]["content_type"] == "image/png" and photos[0]["photo"]["width"] > 0
    assert not later.photo_sent and not later.digest_queued
    assert [r[0] for r in tab(reports, "Еженедельный")] == ["Период", "2026-W46"]
    assert tab(reports, "Еженедельный")[1][3] == "3"  # the week's three orders
