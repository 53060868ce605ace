"""W1 intake: GetCourse orders (callbacks, export rows) -> the order mirror -> a CRM push.

The callback is a hint, the export is the truth; both go through :func:`ingest_orders`, which
stores the orders and asks for a push in the same transaction. A status or product the mapping
does not know fails the job (a ``failures`` row that names the value and the config key);
after the config is fixed, replaying it goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import RowMapping

from schoolsync.connectors.getcourse.callbacks import parse_callback
from schoolsync.core.domain import Order
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox, jobs
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.amocrm import lead_for
from schoolsync.mappings.getcourse import order_from_wire
from schoolsync.mappings.status_sync import ECHO
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.names import PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.platforms import GetCourseSetup
from schoolsync.sync_jobs.services.crm_push import LANES, schedule_push
from schoolsync.sync_jobs.services.status_sync import (
    PlatformChanges,
    schedule_settles,
    split_platform_changes,
)

log = get_logger(__name__)


def getcourse_setup(ctx: JobContext, school: str) -> GetCourseSetup:
    setup = ctx.platforms.of(school).getcourse if ctx.platforms else None
    if setup is None:
        raise ConfigError(
            f"school '{school}' has no GetCourse account: add accounts.getcourse to its "
            "block in schoolsync.yaml"
        )
    return setup


def check_mappable(ctx: JobContext, school: str, order: Order) -> None:
    """Refuse now (with the config key to add) what the CRM push could not map later."""
    amocrm = ctx.platforms.of(school).amocrm if ctx.platforms else None
    if amocrm is not None and amocrm.mapping is not None:
        lead_for(order, amocrm.mapping, school=school)


def ingest_orders(
    ctx: JobContext,
    school: str,
    orders: Sequence[Order],
    *,
    inbox_ids: Sequence[int] = (),
    one_by_one: Sequence[int] = (),
    snapshot_at: datetime | None = None,
) -> int:
    """Store ``orders`` and ask for a CRM push, in one transaction; returns how many changed.

    ``inbox_ids`` are marked processed in the same transaction; ``one_by_one`` get a job each
    (events of a batch that could not be taken with the others: they fail, or not, alone).
    """
    push = bool(ctx.platforms and ctx.platforms.of(school).amocrm)
    refs: list[jobs.JobRef] = []
    with ctx.db.write() as conn:
        # GetCourse's callbacks of our own status writes, and conflicts with the CRM (W4)
        split = (
            split_platform_changes(ctx, conn, school, orders)
            if push
            else PlatformChanges(push=list(orders))
        )
        changed = order_store.upsert_many(
            conn, school, split.push, push=push, lanes=LANES, snapshot_at=snapshot_at
        )
        changed += order_store.upsert_many(
            conn, school, split.echoes, lanes=LANES, snapshot_at=snapshot_at, origin=ECHO
        )
        changed += order_store.upsert_many(
            conn, school, split.quiet, push=False, lanes=LANES, snapshot_at=snapshot_at
        )
        if push and split.push:
            refs += schedule_push(conn, school, {order_store.lane_of(o, LANES) for o in split.push})
        refs += schedule_settles(conn, school, split.settle)
        for inbox_id in inbox_ids:
            inbox.mark_processed(conn, inbox_id)
        refs += jobs.add_many(
            conn,
            school_actor_args_keys=[
                (school, PROCESS_INBOX_EVENT, {"inbox_id": i}, f"inbox:{i}") for i in one_by_one
            ],
        )
    ctx.queue.send(refs)
    return changed


def _order_of(ctx: JobContext, school: str, setup: GetCourseSetup, row: RowMapping) -> Order:
    """The order a stored callback describes, checked against the CRM mapping."""
    callback = parse_callback(str(row["query"]), setup.tz)
    order = order_from_wire(callback, account=setup.account, school=school, mapping=setup.mapping)
    check_mappable(ctx, school, order)
    return order


def process_getcourse_callback(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    school = str(row["school"])
    order = _order_of(ctx, school, getcourse_setup(ctx, school), row)
    changed = ingest_orders(ctx, school, [order], inbox_ids=[inbox_id])
    log.info(
        "getcourse order received",
        school=school,
        order=order.number,
        status=order.status.value,
        changed=bool(changed),
    )


def process_getcourse_callbacks(ctx: JobContext, rows: list[RowMapping]) -> None:
    """Many callbacks of one school at once (a launch): one transaction for all of them.

    A callback that cannot be parsed or mapped is handed to a job of its own, which fails
    alone with a ``failures`` row that names the problem, and can be replayed after a fix.
    """
    by_school: dict[str, list[RowMapping]] = {}
    for row in rows:
        by_school.setdefault(str(row["school"]), []).append(row)
    for school, school_rows in by_school.items():
        setup = getcourse_setup(ctx, school)
        orders: list[Order] = []
        taken: list[int] = []
        alone: list[int] = []
        for row in school_rows:
            try:
                order = _order_of(ctx, school, setup, row)
            except Exception:  # handed on: its own job fails (or not) alone, with the reason
                alone.append(int(row["id"]))
                continue
            orders.append(order)
            taken.append(int(row["id"]))
        changed = ingest_orders(ctx, school, orders, inbox_ids=taken, one_by_one=alone)
        log.info(
            "getcourse orders received",
            school=school,
            callbacks=len(school_rows),
            changed=changed,
            handed_on=len(alone),
        )
