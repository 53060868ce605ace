"""W2 with a controllable clock: reminders and escalations once each, nothing at night, the
night's orders as one list at 12:00, oldest first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import outbox
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import orders as order_store
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services.sla import sla_sweep
from tests.conftest import RedisServer

MOSCOW = ZoneInfo("Europe/Moscow")
SCHOOL = School.model_validate({"id": "default", "channels": {"sales": -1001000000001}})


@pytest.fixture
def ctx(sqlite_db: Database, redis_server: RedisServer, tmp_path: Path) -> Iterator[JobContext]:
    broker = build_broker(redis_server.url, broker=BrokerSettings(), jobs=JobSettings())
    yield JobContext(
        config=AppConfig(schools=[SCHOOL]),
        db=sqlite_db,
        queue=JobQueue(sqlite_db, broker),
        jobs=JobSettings(),
        data_dir=tmp_path,
    )


def order(number: str, created: datetime, status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order(
        platform="getcourse",
        account="sandbox",
        number=number,
        status=status,
        product="Пакет Эконом",
        cost=Money(amount=Decimal("991")),
        customer=Customer(email=f"{number}@example.org"),
        created_at=created,
    )


def store(ctx: JobContext, *orders: Order) -> None:
    with ctx.db.write() as conn:
        order_store.upsert_many(conn, SCHOOL.id, list(orders), push=False)


def posted(ctx: JobContext) -> list[tuple[str, str]]:
    with ctx.db.read() as conn:
        rows = conn.execute(sa.select(outbox.c.kind, outbox.c.key).order_by(outbox.c.id)).all()
    return [(str(kind), str(key)) for kind, key in rows]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, tzinfo=MOSCOW).astimezone(UTC)


def test_one_reminder_and_one_escalation_each_and_none_for_an_order_taken_in_time(
    ctx: JobContext,
) -> None:
    now = at(15)
    store(
        ctx,
        order("20", now - timedelta(minutes=20)),
        order("35", now - timedelta(minutes=35)),
        order("50", now - timedelta(minutes=50)),
        order("19", now - timedelta(minutes=19)),
    )
    sla_sweep(ctx, SCHOOL.id, now=now)
    # the manager takes order 19 before its 20 minutes are up
    store(ctx, order("19", now - timedelta(minutes=19), OrderStatus.IN_WORK))
    for minute in range(1, 30):  # a sweep every minute for half an hour
        sla_sweep(ctx, SCHOOL.id, now=now + timedelta(minutes=minute))

    found = posted(ctx)
    for number in ("20", "35", "50"):
        assert found.count(("sla_remind", f"sla-remind:{number}")) == 1
        assert found.count(("sla_escalate", f"sla-escalate:{number}")) == 1
    assert not [key for _kind, key in found if key.endswith(":19")]
    assert len(found) == 6


def test_night_orders_are_one_list_at_noon_oldest_first_and_no_alert_at_night(
    ctx: JobContext,
) -> None:
    night = [order(f"N{i:02d}", at(2) + timedelta(minutes=19 * i + 1)) for i in range(30)]
    store(ctx, *reversed(night))  # stored in any order

    sweep = at(2, 10)
    while sweep < at(12):
        sla_sweep(ctx, SCHOOL.id, now=sweep)
        sweep += timedelta(minutes=10)
    assert posted(ctx) == []  # the night is quiet

    sla_sweep(ctx, SCHOOL.id, now=at(12))
    sla_sweep(ctx, SCHOOL.id, now=at(12, 1))

    assert posted(ctx) == [("sla_night", "sla-night:2026-11-24")]
    with ctx.db.read() as conn:
        text = conn.execute(sa.select(outbox.c.text)).scalar_one()
    numbers = [line.split(" · ")[1] for line in text.splitlines()[1:]]
    assert numbers == [f"№N{i:02d}" for i in range(30)]
    assert "Ночные заказы без менеджера: 30" in text
