"""W1 intake: GetCourse orders (callbacks, export rows) -> the order mirror -> a CRM push.

The callback is a hint, the export is the truth; both go through :func:`ingest_orders`, which
stores the orders and asks for a push in the same transaction. A status or product the mapping
does not know fails the job (a ``failures`` row that names the value and the config key);
after the config is fixed, replaying it goes through.
"""

from __future__ import annotations

from collections.abc import Sequence

from schoolsync.connectors.getcourse.callbacks import parse_callback
from schoolsync.core.domain import Order
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.amocrm import lead_for
from schoolsync.mappings.getcourse import order_from_wire
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import GetCourseSetup
from schoolsync.sync_jobs.services.crm_push import schedule_push

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
    ctx: JobContext, school: str, orders: Sequence[Order], *, inbox_id: int | None = None
) -> int:
    """Store ``orders`` and ask for a CRM push, in one transaction; returns how many changed."""
    push = bool(ctx.platforms and ctx.platforms.of(school).amocrm)
    changed = 0
    with ctx.db.write() as conn:
        for order in orders:
            _, did_change = order_store.upsert(conn, school, order, push=push)
            changed += did_change
        ref = schedule_push(conn, school) if push else None
        if inbox_id is not None:
            inbox.mark_processed(conn, inbox_id)
    if ref is not None:
        ctx.queue.send([ref])
    return changed


def process_getcourse_callback(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    school = str(row["school"])
    setup = getcourse_setup(ctx, school)
    callback = parse_callback(str(row["query"]), setup.tz)
    order = order_from_wire(callback, account=setup.account, school=school, mapping=setup.mapping)
    check_mappable(ctx, school, order)
    changed = ingest_orders(ctx, school, [order], inbox_id=inbox_id)
    log.info(
        "getcourse order received",
        school=school,
        order=order.number,
        status=order.status.value,
        changed=bool(changed),
    )
