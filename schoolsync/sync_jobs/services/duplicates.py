"""W3: duplicate orders resolved without a manager, and undone by an admin.

A sweep finds the pairs (``mappings/duplicates.py``); for each, once (an effect key per later
order): GetCourse gets the later order as «Ложный» and the earlier as «В работе» if it was new,
the order mirror takes both statuses (so the CRM push moves the leads by the stage mapping: the
later one to lost), the later lead gets a note, and the sales channel a line. What was there
before is kept with the effect, and ``schoolsync orders undo-duplicate N`` puts it back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import effects as effects_table
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.errors import NotFoundError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.duplicates import Duplicate, duplicate_rules, find_duplicates
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.crm_notes import note_once
from schoolsync.sync_jobs.services.crm_push import LANES, schedule_push
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices
from schoolsync.sync_jobs.services.platform_orders import write_status

log = get_logger(__name__)

DUPLICATES_ACTOR = "duplicates_sweep"


def duplicates_sweep(ctx: JobContext, school_id: str) -> int:
    """Resolve every new duplicate pair; returns how many were resolved now."""
    school = ctx.school(school_id)
    rules = duplicate_rules(school)
    if not rules.enabled:
        return 0
    since = utcnow() - timedelta(hours=rules.window_hours * 2)
    with ctx.db.read() as conn:
        orders = order_store.orders_where(conn, school_id, orders_table.c.created_at >= since)
    done = 0
    for pair in find_duplicates(orders, rules):
        with ctx.db.read() as conn:
            if effects.exists(conn, _key(school_id, pair.drop.number)):
                continue  # resolved before (and maybe undone by a person: then it stays so)
        _resolve(ctx, school, pair, rules.channel)
        done += 1
    return done


def _key(school: str, number: str) -> str:
    return f"duplicate:{school}:{number}"


def _resolve(ctx: JobContext, school: School, pair: Duplicate, channel: str) -> None:
    keep, drop = pair.keep, pair.drop
    keep_to = OrderStatus.IN_WORK if keep.status == OrderStatus.NEW else keep.status
    write_status(ctx, school, drop, OrderStatus.FALSE, no_manager=True)
    if keep_to != keep.status:
        write_status(ctx, school, keep, keep_to)
    note = f"Дубль заказа №{keep.number}: тот же покупатель и продукт. Закрыт без менеджера."
    note_once(
        ctx,
        school.id,
        key=f"duplicate-note:{school.id}:{drop.number}",
        number=drop.number,
        text=note,
    )
    html = (
        f"♻️ Дубль: заказ <b>№{drop.number}</b> помечен «Ложный» (тот же покупатель и продукт, "
        f"что №{keep.number}; он {'взят в работу' if keep_to != keep.status else 'оставлен'}). "
        f"Отменить: <code>schoolsync orders undo-duplicate {drop.number}</code>"
    )
    changed = [
        drop.model_copy(update={"status": OrderStatus.FALSE, "manager_email": None}),
        keep.model_copy(update={"status": keep_to}),
    ]
    with ctx.db.write() as conn:
        effects.record(
            conn,
            school=school.id,
            key=_key(school.id, drop.number),
            job_id=None,
            detail={
                "keep": keep.number,
                "keep_status": keep.status.value,
                "drop": drop.number,
                "drop_status": drop.status.value,
                "drop_manager": drop.manager_email,
                "undone": False,
            },
        )
        order_store.upsert_many(conn, school.id, changed, lanes=LANES)
        refs = schedule_push(conn, school.id, range(LANES))
        refs += queue_notices(
            conn,
            school,
            [Notice(key=f"duplicate:{drop.number}", kind="duplicate", html=html, channel=channel)],
        )
    ctx.queue.send(refs)
    log.info("duplicate order resolved", school=school.id, keep=keep.number, drop=drop.number)


def undo_duplicate(ctx: JobContext, school_id: str, number: str, *, who: str) -> None:
    """Put both orders of a resolved duplicate back as they were.

    Raises:
        NotFoundError: the order was never resolved as a duplicate (or is undone already).
    """
    school = ctx.school(school_id)
    key = _key(school_id, number)
    with ctx.db.read() as conn:
        row = conn.execute(sa.select(effects_table).where(effects_table.c.key == key)).first()
    detail: dict[str, Any] = dict(row.detail) if row is not None else {}
    if row is None or detail.get("undone"):
        raise NotFoundError(f"order {number} is not a resolved duplicate (or was undone already)")
    drop = _order(ctx, school_id, str(detail["drop"]))
    keep = _order(ctx, school_id, str(detail["keep"]))
    drop_back = drop.model_copy(
        update={
            "status": OrderStatus(detail["drop_status"]),
            "manager_email": detail.get("drop_manager"),
        }
    )
    keep_back = keep.model_copy(update={"status": OrderStatus(detail["keep_status"])})
    write_status(ctx, school, drop_back, drop_back.status)
    if keep_back.status != keep.status:
        write_status(ctx, school, keep_back, keep_back.status)
    note_once(
        ctx,
        school_id,
        key=f"duplicate-undo-note:{school_id}:{drop.number}",
        number=drop.number,
        text=f"Отмена дубля ({who}): заказ восстановлен.",
    )
    channel = duplicate_rules(school).channel
    html = f"↩️ Отмена дубля: заказы №{drop.number} и №{keep.number} восстановлены ({who})."
    with ctx.db.write() as conn:
        conn.execute(
            sa.update(effects_table)
            .where(effects_table.c.key == key)
            .values(detail={**detail, "undone": True, "undone_by": who})
        )
        order_store.upsert_many(conn, school_id, [drop_back, keep_back], lanes=LANES)
        refs = schedule_push(conn, school_id, range(LANES))
        refs += queue_notices(
            conn,
            school,
            [
                Notice(
                    key=f"duplicate-undo:{drop.number}:{utcnow().timestamp():.0f}",
                    kind="duplicate",
                    html=html,
                    channel=channel,
                )
            ],
        )
    ctx.queue.send(refs)
    log.info("duplicate undone", school=school_id, order=number, who=who)


def _order(ctx: JobContext, school: str, number: str) -> Order:
    with ctx.db.read() as conn:
        order = order_store.find_order(conn, school, number)
    if order is None:
        raise NotFoundError(f"order {number} is not in the order mirror")
    return order
