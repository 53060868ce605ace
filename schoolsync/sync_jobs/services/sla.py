"""W2: a sweep every minute over new orders nobody has taken (``mappings/sla.py`` decides).

Reminders and escalations go to the sales channel once each (their outbox keys name the order);
the night's orders go as one list when the night ends (its key names the day), so a sweep run
twice, or by two schedulers, posts nothing twice. In psychology mode the alerts are «not seen
within the hour» and «no first contact by the end of the working day» (``sla-seen:<number>``,
``sla-contact:<number>``), once each too.
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
from schoolsync.mappings.sla import (
    PSYCHOLOGY_LOOK_BACK,
    Alert,
    alerts_due,
    night_list_due,
    sla_rules,
)
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
    look_back = PSYCHOLOGY_LOOK_BACK if rules.mode == "psychology" else _LOOK_BACK
    waiting = _new_orders(ctx, school_id, now - look_back)
    notices = [
        Notice(
            key=f"sla-{alert.kind}:{alert.order.number}",
            kind=f"sla_{alert.kind}",
            html=_alert_html(alert, school),
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


def _alert_html(alert: Alert, school: School) -> str:
    deadline = alert.due.astimezone(school.tz).strftime("%d.%m %H:%M") if alert.due else None
    return render(
        f"sla_{alert.kind}",
        minutes=alert.minutes,
        age=_age(alert.minutes),
        deadline=deadline,
        **_facts(alert.order),
    )


def _age(minutes: int) -> str:
    """«45 мин», «3 ч 10 мин», «2 дн 4 ч»: how long a request has waited, as people say it."""
    if minutes < 60:
        return f"{minutes} мин"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} ч {rest} мин" if rest else f"{hours} ч"
    days, hours = divmod(hours, 24)
    return f"{days} дн {hours} ч" if hours else f"{days} дн"


def _facts(order: Order) -> dict[str, str | None]:
    return {
        "number": order.number,
        "product": order.product or "без продукта",
        "amount": order.cost.display() if order.cost is not None else None,
    }


def _local_time(order: Order, school: School) -> str:
    assert order.created_at is not None
    return order.created_at.astimezone(school.tz).strftime("%H:%M")
