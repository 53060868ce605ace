"""W14 alerts with a controllable clock: a new failure class is one message, 50 more of it one
spike message (not 50), a second sweep nothing, a new class a new message; the example's
personal data is masked."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa

from schoolsync.app.bootstrap import Runtime
from schoolsync.app.platforms import CONFIG_BLOCKS
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import outbox
from schoolsync.core.settings import BrokerSettings, JobSettings, Settings
from schoolsync.core.stores import jobs
from schoolsync.mappings.alerts import AlertRules
from schoolsync.sync_jobs.actors import HANDLERS
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import Platforms, SchoolPlatforms
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services.failure_alerts import ALERTS_ACTOR, failure_alerts_sweep
from tests.conftest import RedisServer

SCHOOL = School.model_validate(
    {
        "id": "default",
        "channels": {"admin": -1001000000009},
        "rules": {"alerts": {"base_url": "https://sync.school.ru"}},
    }
)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PUSH = "push_orders"
_jobs = itertools.count()


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


def fail(
    ctx: JobContext, message: str, at: datetime, *, count: int = 1, error_class: str = "ConfigError"
) -> None:
    """``count`` jobs of ``push_orders`` that failed at ``at`` with ``message``."""
    with ctx.db.write() as conn:
        for _ in range(count):
            ref = jobs.add(
                conn,
                school=SCHOOL.id,
                actor=PUSH,
                args={"school": SCHOOL.id, "n": next(_jobs)},
                dedup_key=f"test:{next(_jobs)}",
            )
            assert ref is not None
            row = jobs.get(conn, ref.id)
            assert row is not None
            jobs.finish(
                conn,
                row,
                attempt=None,
                status=jobs.FAILED,
                error_class=error_class,
                error=message,
                now=at,
            )


def posted(ctx: JobContext) -> list[tuple[str, str]]:
    with ctx.db.read() as conn:
        rows = conn.execute(sa.select(outbox.c.key, outbox.c.text).order_by(outbox.c.id)).all()
    return [(str(key), str(text)) for key, text in rows]


def test_first_failure_then_a_spike_then_nothing_then_a_new_class(ctx: JobContext) -> None:
    fail(ctx, "order 1001: product 'Пакет VIP' is unknown; buyer anna@mail.ru", T0)
    assert failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(seconds=30)) == 1
    (first,) = posted(ctx)
    assert first[0].startswith("alert:first:default:")
    assert "Новая ошибка" in first[1] and "push_orders · ConfigError" in first[1]
    assert "product &#39;Пакет VIP&#39; is unknown" in first[1]  # Telegram HTML, escaped
    assert "anna@mail.ru" not in first[1] and "a***@mail.ru" in first[1]  # the example, masked
    assert (
        '<a href="https://sync.school.ru/admin/failures?actor=push_orders&amp;class=ConfigError">'
        in first[1]
    )

    # 50 more orders of the same root cause, over five minutes, a sweep every minute
    for minute in range(1, 6):
        at = T0 + timedelta(minutes=minute)
        message = f"order {2000 + minute}: product 'Пакет VIP' is unknown; buyer b{minute}@x.ru"
        fail(ctx, message, at, count=10)
        failure_alerts_sweep(ctx, SCHOOL.id, now=at + timedelta(seconds=30))
    found = posted(ctx)
    assert len(found) == 2
    spike_key, spike_text = found[1]
    assert spike_key.startswith("alert:spike:default:")
    assert "Всплеск ошибок: 21 за 10 мин" in spike_text  # 20 is the threshold: 1 + 10 + 10

    # the same sweep again, and more sweeps within the quiet hour: nothing new
    for minute in range(6, 40):
        failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=minute))
    failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=5, seconds=30))
    assert len(posted(ctx)) == 2

    # a new class: one new message
    fail(ctx, "order 3001: product 'Пакет Эконом' is unknown", T0 + timedelta(minutes=41))
    fail(ctx, "amoCRM answered 503", T0 + timedelta(minutes=41), error_class="UnavailableError")
    failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=42))
    failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=42))
    found = posted(ctx)
    assert len(found) == 4
    assert all(key.startswith("alert:first:") for key, _ in found[2:])
    texts = " ".join(text for _key, text in found[2:])
    assert "Пакет Эконом" in texts and "UnavailableError" in texts


def test_fifty_at_once_is_one_message_and_a_class_older_than_the_look_back_is_not_new(
    ctx: JobContext,
) -> None:
    fail(ctx, "status 'archived' has no stage", T0 - timedelta(days=3))
    fail(ctx, "status 'archived' has no stage", T0, count=3)
    fail(ctx, "no lead for order 77", T0, count=50, error_class="NotFoundError")

    failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=1))
    failure_alerts_sweep(ctx, SCHOOL.id, now=T0 + timedelta(minutes=2))

    (only,) = posted(ctx)
    assert only[0].startswith("alert:spike:default:")
    assert "Новая ошибка, и сразу всплеск: 50 за 10 мин" in only[1]
    assert "no lead for order &lt;n&gt;" in only[1]


def test_without_base_url_the_message_names_the_cli_command(ctx: JobContext) -> None:
    school = SCHOOL.model_copy(update={"rules": {}})
    ctx.config = AppConfig(schools=[school])
    fail(ctx, "boom", T0)
    failure_alerts_sweep(ctx, SCHOOL.id, now=T0)
    ((_key, text),) = posted(ctx)
    assert "<code>schoolsync failures list --actor push_orders --class ConfigError</code>" in text


def test_disabled_alerts_post_nothing(ctx: JobContext) -> None:
    school = SCHOOL.model_copy(update={"rules": {"alerts": {"enabled": False}}})
    ctx.config = AppConfig(schools=[school])
    fail(ctx, "boom", T0)
    assert failure_alerts_sweep(ctx, SCHOOL.id, now=T0) == 0
    assert posted(ctx) == []


def test_registered_as_an_actor_a_config_block_and_a_sweep_per_school_with_the_channel(
    ctx: JobContext,
) -> None:
    assert ALERTS_ACTOR in HANDLERS
    assert CONFIG_BLOCKS["rules.alerts"] is AlertRules
    other = School.model_validate({"id": "other", "channels": {"sales": -100}})
    ctx.config = AppConfig(schools=[SCHOOL, other])
    telegram: Any = SimpleNamespace(poll=False)
    ctx.platforms = Platforms(
        redis=None,
        schools={s.id: SchoolPlatforms(telegram=telegram) for s in (SCHOOL, other)},
    )
    runtime = Runtime(Settings(), ctx.config, ctx.db, cast(Any, None), ctx.queue, ctx)
    sweeps = [p for p in runtime.schedule if p.actor == ALERTS_ACTOR]
    assert [(p.school, p.args, p.every_s) for p in sweeps] == [
        ("default", {"school": "default"}, 60)
    ]
