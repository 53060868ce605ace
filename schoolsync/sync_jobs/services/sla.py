"""W2: a sweep every minute over new orders nobody has taken (``mappings/sla.py`` decides).

Reminders and escalations go to the sales channel once each (their outbox keys name the order);
the night's orders go as one list when the night ends (its key names the day), so a sweep run
twice, or by two schedulers, posts nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.notifications import render
from schoolsync.mappings.sla import alerts_due, night_list_due, sla_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

log = get_logger(__name__)

SLA_ACTOR = "sla_sweep"
_LOOK_BACK = timedelta(days=2)


def sla_sweep(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> int:
    """Queue the alerts due now; returns how many notices were asked for (new or known)."""
    school = ctx.school(school_id)
    rules = sla_rules(school)
    if not rules.enabled:
        return 0
    now = now or utcnow()
    waiting = _new_orders(ctx, school_id, now - _LOOK_BACK)
    notices = [
        Notice(
            key=f"sla-{alert.kind}:{alert.order.number}",
            kind=f"sla_{alert.kind}",
            html=render(f"sla_{alert.kind}", minutes=alert.minutes, **_facts(alert.order)),
            channel=rules.channel,
        )
        for alert in alerts_due(waiting, now, school.tz, rules)
    ]
    night = night_list_due(waiting, now, school.tz, rules)
    if night is not None and night[1]:
        day, orders = night
        notices.append(
            Notice(
                key=f"sla-night:{day.isoformat()}",
                kind="sla_night",
                html=render(
                    "sla_night",
                    orders=[{**_facts(o), "time": _local_time(o, school)} for o in orders],
                ),
                channel=rules.channel,
            )
        )
    if notices:
        with ctx.db.write() as conn:
            refs = queue_notices(conn, school, notices, now=now)
        ctx.queue.send(refs)
    return len(notices)


def _new_orders(ctx: JobContext, school: str, since: datetime) -> list[Order]:
    with ctx.db.read() as conn:
        return order_store.orders_where(
            conn,
            school,
            orders_table.c.status == OrderStatus.NEW.value,
            orders_table.c.created_at >= since,
        )


def _facts(order: Order) -> dict[str, str | None]:
    return {
        "number": order.number,
        "product": order.product or "без продукта",
        "amount": order.cost.display() if order.cost is not None else None,
    }


def _local_time(order: Order, school: School) -> str:
    assert order.created_at is not None
    return order.created_at.astimezone(school.tz).strftime("%H:%M")
