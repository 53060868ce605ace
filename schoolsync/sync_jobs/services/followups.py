"""W8: follow-ups, a sweep every few minutes (``mappings/followups.py`` decides).

**Payment links.** Orders waiting for payment with a link: for each that has waited
``after_hours`` since it reached that status (``orders.status_changed_at``), with no succeeded
payment matched to it in the ledger, the order's lead gets one task for its manager (once per
order and status change: a task key names both). With ``client_message``, the client gets one
message too (once per order: its outbox key names the order), in their Telegram chat when we
know it: a ``("telegram", "chat")`` link from the order or from its amoCRM contact. Without one
the message is skipped, once, with a line in the log. A message held back by quiet hours is
withdrawn by a later sweep if the order is paid before the morning.

**Undecided leads.** Each sweep asks amoCRM for the leads in the configured stage (no mirror of
our own: the webhooks only log a stage change). The first sweep that sees a lead there notes
when it entered, in a cursor: the lead's ``updated_at`` (moving it set that, and a later edit
only moves it later), or now. A lead no longer listed is marked as gone, so one that comes back
starts again, no earlier than it was seen gone. A lead gets the reminder whose day has come,
once (the task key names the lead, its entry and the step); nothing after it leaves the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from schoolsync.connectors.amocrm.models import Lead
from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import cursors as cursors_table
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.db.tables import outbox as outbox_table
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import cursors, effects, links
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.core.stores import payments as ledger
from schoolsync.mappings.followups import FollowupRules, Undecided, followup_rules, needs_followup
from schoolsync.mappings.notifications import render
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup
from schoolsync.sync_jobs.services.crm_tasks import task_once
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

log = get_logger(__name__)

FOLLOWUP_ACTOR = "followups_sweep"
CLIENT_KIND = "followup_client"
ORDER = ("getcourse", "order")
CONTACT = ("amocrm", "contact")
CHAT = ("telegram", "chat")
_LEFT = "left:"


def followups_sweep(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> int:
    """Make the follow-ups due now; returns how many were made (tasks and client messages)."""
    school = ctx.school(school_id)
    rules = followup_rules(school)
    setup = ctx.platforms.of(school_id).amocrm if ctx.platforms else None
    now = now or utcnow()
    made = 0
    if rules.enabled:
        _withdraw_paid(ctx, school_id, rules, now)
        made += _payment_links(ctx, school, setup, rules, now)
    undecided = rules.undecided
    if setup is not None and undecided is not None and undecided.enabled:
        made += _undecided(ctx, school_id, setup, undecided, rules.due_hours, now)
    return made


# -- payment links ---------------------------------------------------------------------------


def _payment_links(
    ctx: JobContext, school: School, setup: AmoCrmSetup | None, rules: FollowupRules, now: datetime
) -> int:
    if setup is None and not rules.client_message:
        return 0
    school_id = school.id
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
            paid = _paid(conn, school_id, order.number)
            lead = links.targets(conn, school_id, ORDER, [order.number], ("amocrm", "lead")).get(
                order.number
            )
        if not needs_followup(order, changed, paid, now, rules):
            continue
        if (
            setup is not None
            and lead is not None
            and _task(ctx, school_id, setup, rules, order, int(lead), changed, now)
        ):
            made += 1
        if rules.client_message and _message_client(ctx, school, order, now):
            made += 1
    return made


def _task(
    ctx: JobContext,
    school_id: str,
    setup: AmoCrmSetup,
    rules: FollowupRules,
    order: Order,
    lead: int,
    changed: datetime,
    now: datetime,
) -> bool:
    manager = (
        setup.mapping.managers.get(order.manager_email.lower())
        if setup.mapping is not None and order.manager_email
        else None
    )
    made = task_once(
        ctx,
        school_id,
        setup,
        key=f"amocrm:task:followup:{school_id}:{order.number}:{changed:%Y%m%d%H%M}",
        lead_id=lead,
        text=f"{rules.task_text} (заказ №{order.number})",
        due=now + timedelta(hours=rules.due_hours),
        responsible_user_id=manager,
    )
    if made:
        log.info("payment link follow-up task made", school=school_id, order=order.number)
    return made


def _message_client(ctx: JobContext, school: School, order: Order, now: datetime) -> bool:
    """The client's follow-up message, queued once per order; ``False`` when it was decided
    before, or there is no way to reach the client (decided too: not looked for again)."""
    telegram = ctx.platforms.of(school.id).telegram if ctx.platforms else None
    decided = f"followups:client:{school.id}:{order.number}"
    with ctx.db.write() as conn:
        if effects.exists(conn, decided):
            return False
        chat = _client_chat(conn, school.id, order.number) if telegram is not None else None
        if not effects.record(
            conn, school=school.id, key=decided, job_id=None, detail={"sent": chat is not None}
        ):
            return False
        if chat is None:
            log.info(
                "payment link follow-up: no way to reach the client, no message",
                school=school.id,
                order=order.number,
                telegram=telegram is not None,
            )
            return False
        notice = Notice(
            key=f"followup-client:{order.number}",
            kind=CLIENT_KIND,
            html=render(
                CLIENT_KIND,
                name=order.customer.first_name,
                product=order.product,
                link=order.payment_link,
            ),
            chat_id=chat,
            to_client=True,
        )
        refs = queue_notices(conn, school, [notice], now=now)
    ctx.queue.send(refs)
    log.info("payment link follow-up: client message queued", school=school.id, order=order.number)
    return True


def _client_chat(conn: Any, school: str, number: str) -> str | None:
    """The client's Telegram chat: linked to the order, or to the order's amoCRM contact."""
    chat = links.targets(conn, school, ORDER, [number], CHAT).get(number)
    if chat is not None:
        return chat
    contact = links.targets(conn, school, ORDER, [number], CONTACT).get(number)
    if contact is None:
        return None
    return links.targets(conn, school, CONTACT, [contact], CHAT).get(contact)


def _withdraw_paid(ctx: JobContext, school: str, rules: FollowupRules, now: datetime) -> int:
    """Client messages still held back by quiet hours whose order was paid (or left the
    waiting statuses) since: cancelled, so that nobody who paid is asked whether they did."""
    withdrawn = 0
    with ctx.db.write() as conn:
        rows = conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.key).where(
                outbox_table.c.school == school,
                outbox_table.c.kind == CLIENT_KIND,
                outbox_table.c.state == outbox_store.PENDING,
                outbox_table.c.not_before > now,
                outbox_table.c.inflight_at.is_(None),
            )
        ).all()
        for message_id, key in rows:
            number = str(key).removeprefix("followup-client:")
            if not _paid(conn, school, number) and _waiting(conn, school, number, rules.statuses):
                continue
            conn.execute(
                sa.update(outbox_table)
                .where(
                    outbox_table.c.id == message_id, outbox_table.c.state == outbox_store.PENDING
                )
                .values(state=outbox_store.CANCELLED, error="the order was paid before it went")
            )
            withdrawn += 1
            log.info("payment link follow-up withdrawn: paid", school=school, order=number)
    return withdrawn


def _paid(conn: Any, school: str, number: str) -> bool:
    return any(p["status"] == ledger.SUCCEEDED for p in ledger.for_order(conn, school, number))


def _waiting(conn: Any, school: str, number: str, statuses: Sequence[OrderStatus]) -> bool:
    status = conn.execute(
        sa.select(orders_table.c.status).where(
            orders_table.c.school == school, orders_table.c.number == number
        )
    ).scalar()
    return status in {s.value for s in statuses}


# -- undecided leads -------------------------------------------------------------------------


def _undecided(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    rule: Undecided,
    due_hours: int,
    now: datetime,
) -> int:
    stage = rule.known_stage(setup.mapping) or rule.stage_in(
        setup.mapping, setup.client.pipelines(), school=school
    )
    pipeline_id, status_id = stage
    leads = list(setup.client.leads_in_stage(pipeline_id, status_id))
    prefix = f"undecided:{pipeline_id}:{status_id}:"
    entered = _entries(ctx, school, prefix, leads, now, timedelta(days=rule.within_days))
    made = 0
    count = len(rule.days)
    for lead in leads:
        since = entered[lead.id]
        step = rule.step_due(since, now)
        if step is None:
            continue
        stay = f"{lead.id}:{status_id}:{since:%Y%m%d%H%M}"
        if task_once(
            ctx,
            school,
            setup,
            key=f"amocrm:task:undecided:{school}:{stay}:{step + 1}",
            lead_id=lead.id,
            text=f"{rule.task_text} (напоминание {step + 1} из {count})",
            due=now + timedelta(hours=due_hours),
            responsible_user_id=lead.responsible_user_id,
        ):
            made += 1
            log.info(
                "undecided lead: reminder task made", school=school, lead=lead.id, step=step + 1
            )
    return made


def _entries(
    ctx: JobContext,
    school: str,
    prefix: str,
    leads: Sequence[Lead],
    now: datetime,
    keep: timedelta,
) -> dict[int, datetime]:
    """When each lead now in the stage entered it, as first noted. A lead no longer listed is
    marked as gone (``left:<time>``): if it comes back, its new stay starts no earlier than
    that; marks older than ``keep`` are dropped."""
    with ctx.db.write() as conn:
        rows = conn.execute(
            sa.select(cursors_table.c.name, cursors_table.c.value).where(
                cursors_table.c.school == school,
                cursors_table.c.name.startswith(prefix, autoescape=True),
            )
        ).all()
        stays: dict[str, datetime] = {}
        left: dict[str, datetime] = {}
        for name, value in rows:
            text = str(value)
            when = as_utc(datetime.fromisoformat(text.removeprefix(_LEFT)))
            (left if text.startswith(_LEFT) else stays)[str(name).removeprefix(prefix)] = when
        here = {str(lead.id) for lead in leads}
        for lead_id in stays.keys() - here:
            cursors.put_text(conn, school, prefix + lead_id, _LEFT + now.isoformat())
        stale = [prefix + k for k, when in left.items() if k not in here and when < now - keep]
        if stale:
            conn.execute(
                sa.delete(cursors_table).where(
                    cursors_table.c.school == school, cursors_table.c.name.in_(stale)
                )
            )
        found: dict[int, datetime] = {}
        for lead in leads:
            since = stays.get(str(lead.id))
            if since is None:
                # moving the lead set its updated_at; a later edit only moves it later
                since = min(as_utc(lead.updated_at), now) if lead.updated_at else now
                since = max(since, left.get(str(lead.id), since))
                cursors.put(conn, school, prefix + str(lead.id), since)
            found[lead.id] = since
    return found
