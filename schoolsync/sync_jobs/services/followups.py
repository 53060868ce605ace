"""W8: a task for the manager when a payment link went out a day ago and nothing was paid.

The sweep looks at orders waiting for payment with a link; for each that has waited
``after_hours`` since it reached that status (``orders.status_changed_at``), with no succeeded
payment matched to it in the ledger, the order's lead gets one task for its manager (once per
order and status change: a task key names both).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Order
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import links
from schoolsync.core.stores import payments as ledger
from schoolsync.mappings.followups import followup_rules, needs_followup
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.crm_tasks import task_once

log = get_logger(__name__)

FOLLOWUP_ACTOR = "followups_sweep"


def followups_sweep(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> int:
    """Make the follow-up tasks due now; returns how many were made."""
    school = ctx.school(school_id)
    rules = followup_rules(school)
    setup = ctx.platforms.of(school_id).amocrm if ctx.platforms else None
    if not rules.enabled or setup is None:
        return 0
    now = now or utcnow()
    with ctx.db.read() as conn:
        rows = conn.execute(
            sa.select(orders_table.c.data, orders_table.c.status_changed_at).where(
                orders_table.c.school == school_id,
                orders_table.c.status.in_([s.value for s in rules.statuses]),
                orders_table.c.status_changed_at <= now - timedelta(hours=rules.after_hours),
                orders_table.c.status_changed_at >= now - timedelta(days=7),
            )
        ).all()
    made = 0
    for data, since in rows:
        order = Order.model_validate(data)
        changed = as_utc(since)
        with ctx.db.read() as conn:
            paid = any(
                p["status"] == ledger.SUCCEEDED
                for p in ledger.for_order(conn, school_id, order.number)
            )
            lead = links.targets(
                conn, school_id, ("getcourse", "order"), [order.number], ("amocrm", "lead")
            ).get(order.number)
        if lead is None or not needs_followup(order, changed, paid, now, rules):
            continue
        manager = (
            setup.mapping.managers.get(order.manager_email.lower())
            if setup.mapping is not None and order.manager_email
            else None
        )
        if task_once(
            ctx,
            school_id,
            setup,
            key=f"amocrm:task:followup:{school_id}:{order.number}:{changed:%Y%m%d%H%M}",
            lead_id=int(lead),
            text=f"{rules.task_text} (заказ №{order.number})",
            due=now + timedelta(hours=rules.due_hours),
            responsible_user_id=manager,
        ):
            made += 1
            log.info("payment link follow-up task made", school=school_id, order=order.number)
    return made
