"""W2 with a controllable clock: reminders and escalations once each, nothing at night, the
night's orders as one list at 12:00, oldest first; in psychology mode, «not seen within the
working hour» and «no first contact by the end of the working day», once each."""

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
from schoolsync.mappings.sla import SlaRules, deadlines
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


# --- psychology mode: seen within the working hour, first contact within the working day -----

PSYCHOLOGY = School.model_validate(
    {
        **SCHOOL.model_dump(),
        "rules": {
            "sla": {
                "mode": "psychology",
                "seen_within_min": 60,
                "working_hours": {"start": "10:00", "end": "19:00"},
            }
        },
    }
)


def taken(number: str, created: datetime, *, status: OrderStatus, manager: bool) -> Order:
    return order(number, created, status).model_copy(
        update={"manager_email": "anna@school.ru" if manager else None}
    )


def test_psychology_alerts_at_the_working_hour_and_day_end_once_each(ctx: JobContext) -> None:
    ctx.config = AppConfig(schools=[PSYCHOLOGY])
    tuesday = at  # 2026-11-24 is a Tuesday

    def wednesday(hour: int, minute: int = 0) -> datetime:
        return at(hour, minute) + timedelta(days=1)

    store(
        ctx,
        order("NOON", tuesday(12)),  # seen by 13:00, contact by 19:00
        order("NIGHT", tuesday(3)),  # before hours: seen by 11:00, contact by 19:00
        order("LATE", tuesday(18, 30)),  # last hour: seen by 10:30, contact by 19:00 tomorrow
        order("TAKEN", tuesday(12)),  # taken into work at 12:50: nothing
        order("SEEN", tuesday(12)),  # a manager on it at 12:30, no contact: escalation only
    )
    changes = {
        tuesday(12, 30): taken("SEEN", tuesday(12), status=OrderStatus.NEW, manager=True),
        tuesday(12, 50): taken("TAKEN", tuesday(12), status=OrderStatus.IN_WORK, manager=True),
    }
    first_seen: dict[str, datetime] = {}
    sweep = tuesday(2)
    while sweep <= wednesday(20):
        if sweep in changes:
            store(ctx, changes[sweep])
        sla_sweep(ctx, SCHOOL.id, now=sweep)
        for _kind, key in posted(ctx):
            first_seen.setdefault(key, sweep)
        sweep += timedelta(minutes=10)

    assert first_seen == {
        "sla-seen:NIGHT": tuesday(11),
        "sla-seen:NOON": tuesday(13),
        "sla-contact:NIGHT": tuesday(19),
        "sla-contact:NOON": tuesday(19),
        "sla-contact:SEEN": tuesday(19),
        "sla-seen:LATE": wednesday(10, 30),
        "sla-contact:LATE": wednesday(19),
    }
    found = posted(ctx)
    assert len(found) == len(first_seen)  # once each, over 42 hours of sweeps
    assert {kind for kind, _key in found} == {"sla_seen", "sla_contact"}  # no night list
    with ctx.db.read() as conn:
        texts = dict(conn.execute(sa.select(outbox.c.key, outbox.c.text)).all())
    assert "№NOON" in texts["sla-seen:NOON"] and "1 ч" in texts["sla-seen:NOON"]
    assert "24.11 19:00" in texts["sla-contact:NOON"]


def test_psychology_working_time_skips_days_off() -> None:
    rules = SlaRules.model_validate(
        {
            "mode": "psychology",
            "working_hours": {"start": "10:00", "end": "19:00", "weekdays": [1, 2, 3, 4, 5]},
        }
    )
    friday = datetime(2026, 11, 27, 18, 30, tzinfo=MOSCOW)
    seen_by, contact_by = deadlines(order("F", friday.astimezone(UTC)), MOSCOW, rules)
    monday = datetime(2026, 11, 30, tzinfo=MOSCOW)
    assert seen_by == (monday + timedelta(hours=10, minutes=30)).astimezone(UTC)
    assert contact_by == (monday + timedelta(hours=19)).astimezone(UTC)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=MOSCOW)
    seen_by, contact_by = deadlines(order("S", saturday.astimezone(UTC)), MOSCOW, rules)
    assert seen_by == (monday + timedelta(hours=11)).astimezone(UTC)
    assert contact_by == (monday + timedelta(hours=19)).astimezone(UTC)


def test_shop_mode_is_unchanged_by_the_psychology_keys() -> None:
    assert SlaRules().mode == "shop"
    with pytest.raises(ValueError, match="later than start"):
        SlaRules.model_validate({"working_hours": {"start": "19:00", "end": "10:00"}})
