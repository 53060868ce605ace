"""Bulk replay (W14): the dry run runs the CRM mapping with today's config per order and groups
what would happen; the job queues the failures again in chunks, stops when cancelled, goes on
where it stopped; done jobs resolve their failures; a second bulk replay finds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from schoolsync.core.config import AppConfig
from schoolsync.core.db import Database
from schoolsync.core.db.tables import audit, failures
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.settings import JobSettings
from schoolsync.core.stores import jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores.failures import FailureFilter
from schoolsync.core.stores.jobs import JobRef
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup, Platforms, SchoolPlatforms
from schoolsync.sync_jobs.services import bulk_replay
from schoolsync.sync_jobs.services.bulk_replay import (
    cancel_bulk_replay,
    dry_run,
    run_bulk_replay,
    start_bulk_replay,
)
from schoolsync.sync_jobs.services.crm_push import RESEND_ACTOR

SCHOOL = "default"
MAPPING = AmoCrmMapping.model_validate(
    {
        "pipeline_id": 1000,
        "stages": {"new": 1002},
        "products": {"Пакет Эконом": {}},
        "fields": {"order_number": 5001},
    }
)


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[JobRef] = []
        self.on_send: Any = None

    def send(self, refs: Sequence[JobRef], **_: Any) -> bool:
        self.sent += refs
        if self.on_send is not None:
            self.on_send()
        return True


@pytest.fixture
def ctx(sqlite_db: Database, tmp_path: Path) -> JobContext:
    setup = AmoCrmSetup(account="sandbox", client=cast(Any, None), mapping=MAPPING)
    return JobContext(
        config=AppConfig(),
        db=sqlite_db,
        queue=cast(Any, FakeQueue()),
        jobs=JobSettings(),
        data_dir=tmp_path,
        platforms=Platforms(redis=None, schools={SCHOOL: SchoolPlatforms(amocrm=setup)}),
    )


def add_failed_orders(ctx: JobContext, products: dict[str, str]) -> None:
    """Orders in the mirror, each a CRM push failure as ``crm_push`` records one."""
    with ctx.db.write() as conn:
        order_store.upsert_many(
            conn,
            SCHOOL,
            [
                Order(
                    platform="getcourse",
                    account="gc",
                    number=number,
                    status=OrderStatus.NEW,
                    product=product,
                    cost=Money(amount=Decimal(991)),
                    customer=Customer(email=f"client{number}@example.org"),
                )
                for number, product in products.items()
            ],
        )
        for number, product in products.items():
            jobs.fail_as_job(
                conn,
                school=SCHOOL,
                actor=RESEND_ACTOR,
                args={"school": SCHOOL, "platform": "getcourse", "account": "gc", "number": number},
                key=f"crm-order:{SCHOOL}:getcourse:gc:{number}",
                error_class="UnmappableError",
                error=f"order {number}: product '{product}' is unknown; add it to "
                f"schools[{SCHOOL}].mappings.amocrm.products in schoolsync.yaml",
            )


def statuses(ctx: JobContext) -> list[str]:
    with ctx.db.read() as conn:
        return list(conn.execute(sa.select(failures.c.status).order_by(failures.c.id)).scalars())


def test_the_dry_run_maps_each_order_with_the_config_of_now(ctx: JobContext) -> None:
    add_failed_orders(
        ctx,
        {
            "1": "Пакет VIP",
            "2": "Пакет VIP",
            "3": "Пакет VIP",
            "4": "Пакет Эконом",
            "5": "Пакет Эконом",
        },
    )
    with ctx.db.write() as conn:  # order 5 reached amoCRM before: an update, not a second lead
        links.put_many(conn, SCHOOL, [(("getcourse", "order", "5"), ("amocrm", "lead", "77"))])

    found = dry_run(ctx, FailureFilter(actor=RESEND_ACTOR))

    vip = (
        "would fail the config check: product 'Пакет VIP' is unknown; add it to "
        "schools[default].mappings.amocrm.products in schoolsync.yaml"
    )
    assert found.outcomes == {vip: 3, "would create a lead": 1, "would update its lead": 1}
    assert (found.total, found.would_run, found.would_fail) == (5, 2, 3)
    assert found.summary == f"5 failures: 3 {vip}, 1 would create a lead, 1 would update its lead"
    assert [(g.count, g.outcomes) for g in found.groups] == [
        (3, {vip: 3}),
        (2, {"would create a lead": 1, "would update its lead": 1}),
    ]
    assert dry_run(ctx, FailureFilter(actor="no_such_job")).summary == (
        "no open failure matches: nothing would run"
    )


def test_bulk_replay_in_chunks_cancel_go_on_resolve_and_then_nothing(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_replay, "CHUNK", 2)
    add_failed_orders(ctx, {str(n): "Пакет VIP" for n in range(1, 6)})
    queue = cast(FakeQueue, ctx.queue)
    filt = FailureFilter(error_class="UnmappableError")

    first = start_bulk_replay(ctx, filt, who="api:olga")
    assert (first.status, first.total, first.done) == ("queued", 5, 0)
    assert [r.actor for r in queue.sent] == ["bulk_replay"]
    queue.sent.clear()
    # the admin cancels while the first chunk goes out
    queue.on_send = lambda: cancel_bulk_replay(ctx.db, first.id, who="api:olga")
    run_bulk_replay(ctx, first.id)
    stopped = bulk_replay.bulk_status(ctx.db, first.id)
    assert (stopped.status, stopped.done) == ("cancelled", 2)
    assert [r.actor for r in queue.sent] == [RESEND_ACTOR, RESEND_ACTOR]
    assert statuses(ctx) == ["replaying", "replaying", "open", "open", "open"]
    run_bulk_replay(ctx, first.id)  # delivered again: a finished bulk replay does nothing
    assert len(queue.sent) == 2

    queue.on_send = None
    rest = start_bulk_replay(ctx, filt, who="cli:anna")
    assert rest.total == 3
    run_bulk_replay(ctx, rest.id)
    run_bulk_replay(ctx, rest.id)
    assert bulk_replay.bulk_status(ctx.db, rest.id).done == 3
    assert statuses(ctx) == ["replaying"] * 5
    assert len(queue.sent) == 2 + 1 + 3  # five replays and the second bulk job

    # each replayed job succeeds (as the worker's middleware records it): resolved
    with ctx.db.write() as conn:
        for ref in queue.sent:
            if ref.actor == RESEND_ACTOR:
                row = jobs.get(conn, ref.id)
                assert row is not None
                jobs.finish(conn, row, attempt=None, status=jobs.DONE)
    assert statuses(ctx) == ["resolved"] * 5

    again = start_bulk_replay(ctx, filt, who="cli:anna")
    assert (again.status, again.total, again.job_id) == ("done", 0, None)
    with ctx.db.read() as conn:
        trail = conn.execute(
            sa.select(audit.c.action, audit.c.target, audit.c.who).where(
                audit.c.action.in_(("bulk_replay", "cancel"))
            )
        ).all()
        replays = conn.execute(
            sa.select(sa.func.count()).where(audit.c.action == "replay")
        ).scalar_one()
    assert [tuple(t) for t in trail] == [
        ("bulk_replay", "bulk:1", "api:olga"),
        ("cancel", "bulk:1", "api:olga"),
        ("bulk_replay", "bulk:2", "cli:anna"),
        ("bulk_replay", "bulk:3", "cli:anna"),
    ]
    assert replays == 5
