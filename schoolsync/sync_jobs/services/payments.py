"""W5/W6: a payment into the ledger, matched to its order, and what follows, once.

Every source (a provider's notification, a line in the finance group, a bank statement, the
admin API and CLI) ends in :func:`record`: the ledger row is written once per (source, external
id), and a payment that became paid gets a ``settle_payment`` job in the same transaction.

Settling (:func:`settle`) matches the payment to its order by the direct rules
(``mappings.payments.direct_match``), then, each under its own effect key so a retry or a
replay repeats nothing:

- GetCourse is told the order is paid, only for sources it does not see itself (PayPal, card
  and bank transfers by default), with the configured payment type;
- the order's amoCRM lead moves to the won stage (the mapping's ``payed`` stage);
- one line goes to the finance channel: ``2500 Демин Саша · YooKassa`` (not for a line a
  manager typed in that very group).

A payment the direct rules cannot place stays ``unmatched`` for reconciliation (W7); it still
gets its finance line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from schoolsync.connectors.amocrm.models import LeadUpdate
from schoolsync.connectors.getcourse.models import (
    DealImport,
    ImportDeal,
    ImportSystem,
    ImportUser,
)
from schoolsync.connectors.telegram.text import escape_html
from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.errors import (
    NotFoundError,
    PermanentError,
    SchoolsyncError,
    UnmappableError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects, jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores.payments import NewPayment, Recorded
from schoolsync.mappings.payments import (
    OPEN_STATUSES,
    Match,
    PaymentFacts,
    direct_match,
    finance_line,
    payment_rules,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

log = get_logger(__name__)

SETTLE_ACTOR = "settle_payment"
FINANCE_GROUP = "finance_group"  # data.origin of a line a manager typed in the finance group


def record(ctx: JobContext, school: str, payment: NewPayment) -> Recorded:
    """Write ``payment`` to the ledger (once) and ask for its settling if it became paid."""
    with ctx.db.write() as conn:
        recorded = record_in(conn, school, payment)
        refs = _settle_job(conn, school, recorded)
    ctx.queue.send(refs)
    return recorded


def record_in(conn: Any, school: str, payment: NewPayment) -> Recorded:
    recorded = ledger.record(conn, school, payment)
    if recorded.created:
        log.info(
            "payment recorded",
            school=school,
            payment=recorded.id,
            source=payment.source,
            status=payment.status,
        )
    return recorded


def _settle_job(conn: Any, school: str, recorded: Recorded) -> list[jobs.JobRef]:
    return settle_job(conn, school, recorded.id) if recorded.became_paid else []


def settle_job(conn: Any, school: str, payment_id: int, *, again: str = "") -> list[jobs.JobRef]:
    """Ask for the payment's settling, once (``again``: once more, for a new reason, e.g. a
    match found later by the reconciliation or a person)."""
    ref = jobs.add(
        conn,
        school=school,
        actor=SETTLE_ACTOR,
        args={"school": school, "payment_id": payment_id},
        dedup_key=f"settle:{school}:{payment_id}" + (f":{again}" if again else ""),
    )
    return [ref] if ref is not None else []


def record_many(ctx: JobContext, school: str, items: list[NewPayment]) -> list[Recorded]:
    """Several payments in one transaction (a bank statement)."""
    with ctx.db.write() as conn:
        done = [record_in(conn, school, item) for item in items]
        refs = [ref for recorded in done for ref in _settle_job(conn, school, recorded)]
    ctx.queue.send(refs)
    return done


# --- settling --------------------------------------------------------------------------------


def settle(ctx: JobContext, school_id: str, payment_id: int) -> None:
    school = ctx.school(school_id)
    with ctx.db.read() as conn:
        row = ledger.get(conn, payment_id)
    if row is None:
        raise NotFoundError(f"payment {payment_id} is not in the ledger")
    if row["status"] != ledger.SUCCEEDED:
        log.info("payment is not paid; nothing to settle", payment=payment_id)
        return
    order = _matched_order(ctx, school, row)
    rules = payment_rules(school)
    with ctx.db.read() as conn:
        fresh = ledger.get(conn, payment_id)
    assert fresh is not None
    # the line first: whatever happens to the effects below, the finance group hears of it
    if (row["data"] or {}).get("origin") != FINANCE_GROUP:
        _finance_line(ctx, school, fresh, order, rules.channel)
    if order is None or fresh["match_state"] != ledger.MATCHED:
        return  # a flagged payment (another amount, a paid or closed order) waits for a person
    problems: list[SchoolsyncError] = []
    effects_to_do: list[Callable[[], None]] = [lambda: _lead_won(ctx, school, order)]
    if fresh["source"] in rules.getcourse_unseen:
        effects_to_do.insert(
            0, lambda: _tell_getcourse(ctx, school, fresh, order, rules.getcourse_payment_types)
        )
    for effect in effects_to_do:
        try:
            effect()
        except PermanentError as exc:  # the other effect still happens; this one fails visibly
            problems.append(exc)
    if problems:
        raise problems[0]


def _matched_order(ctx: JobContext, school: School, row: Any) -> Order | None:
    """The order the payment pays: as matched before, or by the direct rules now."""
    if row["order_number"]:
        return _order(ctx, school.id, str(row["order_number"]))
    rules = payment_rules(school)
    facts = PaymentFacts(
        amount=ledger.amount_of(row),
        reference=row["reference"],
        email=row["payer_email"],
        phone=row["payer_phone"],
        paid_at=ledger.paid_at_of(row),
    )
    by_reference = _order(ctx, school.id, str(row["reference"])) if row["reference"] else None
    candidates = [] if by_reference else _open_orders(ctx, school.id, rules.match_window_days)
    match: Match | None = direct_match(facts, by_reference, candidates, rules)
    if match is not None and not match.flagged:
        match = _second_look(ctx, school.id, int(row["id"]), match, by_reference)
    if match is None:
        log.info(
            "payment not matched by the direct rules; left for reconciliation", payment=row["id"]
        )
        return None
    with ctx.db.write() as conn:
        ledger.set_match(
            conn,
            int(row["id"]),
            order_number=match.order_number,
            state=ledger.FLAGGED if match.flagged else ledger.MATCHED,
            rule=match.rule,
            note=match.note,
        )
    log.info("payment matched", payment=row["id"], rule=match.rule, flagged=match.flagged)
    return by_reference or next(o for o in candidates if o.number == match.order_number)


def _second_look(
    ctx: JobContext, school: str, payment_id: int, match: Match, order: Order | None
) -> Match:
    """A payment naming an order that is closed or already paid is flagged, not acted on."""
    if order is not None and order.status not in OPEN_STATUSES:
        note = f"{match.note}; заказ уже в статусе «{order.status.russian}»"
        return Match(match.order_number, match.rule, note, flagged=True)
    with ctx.db.read() as conn:
        others = ledger.paid_for_order(conn, school, match.order_number, other_than=payment_id)
    if others:
        note = f"{match.note}; по заказу уже есть оплата (платёж {others[0]['id']})"
        return Match(match.order_number, match.rule, note, flagged=True)
    return match


def _order(ctx: JobContext, school: str, number: str) -> Order | None:
    with ctx.db.read() as conn:
        return order_store.find_order(conn, school, number)


def _open_orders(ctx: JobContext, school: str, days: int) -> list[Order]:
    since = utcnow() - timedelta(days=days)
    with ctx.db.read() as conn:
        return order_store.orders_where(
            conn,
            school,
            orders_table.c.status.in_([s.value for s in OPEN_STATUSES]),
            orders_table.c.updated_at >= since,
        )


def _tell_getcourse(
    ctx: JobContext, school: School, row: Any, order: Order, types: dict[str, str]
) -> None:
    """Mark the order paid in GetCourse (a payment GetCourse did not see), once."""
    key = f"getcourse:paid:{school.id}:{row['id']}"
    with ctx.db.read() as conn:
        if effects.exists(conn, key):
            return
    setup = ctx.platforms.of(school.id).getcourse if ctx.platforms else None
    if setup is None:
        log.warning("no GetCourse account: the order is not marked paid there", payment=row["id"])
        return
    if not order.customer.email:
        raise UnmappableError(
            f"order {order.number} has no buyer email; GetCourse needs one to record the payment"
        )
    params = DealImport(
        user=ImportUser(
            email=order.customer.email,
            first_name=order.customer.first_name,
            last_name=order.customer.last_name,
        ),
        system=ImportSystem(refresh_if_exists=True),
        deal=ImportDeal(
            deal_number=order.number,
            product_title=order.product,
            deal_cost=order.cost.amount if order.cost else None,
            deal_is_paid=True,
            deal_status="payed",
            payment_type=types.get(str(row["source"]), "CARD"),
            payment_status="accepted",
            deal_comment=f"Оплата {ledger.amount_of(row).display()} ({row['source']}), schoolsync",
        ),
    )
    setup.client.add_deal(params)
    with ctx.db.write() as conn:
        effects.record(conn, school=school.id, key=key, job_id=None, detail={"order": order.number})
    log.info("GetCourse told the order is paid", payment=row["id"], order=order.number)


def _lead_won(ctx: JobContext, school: School, order: Order) -> None:
    """Move the order's lead to the stage the mapping gives paid orders, once."""
    setup = ctx.platforms.of(school.id).amocrm if ctx.platforms else None
    if setup is None or setup.mapping is None:
        return
    key = f"amocrm:won:{school.id}:{order.number}"
    with ctx.db.read() as conn:
        if effects.exists(conn, key):
            return
        lead_id = links.targets(
            conn, school.id, ("getcourse", "order"), [order.number], ("amocrm", "lead")
        ).get(order.number)
    stage = setup.mapping.stages.get(OrderStatus.PAYED)
    if lead_id is None or stage is None:
        log.info("no lead (or no paid stage) for the order; the CRM is left", order=order.number)
        return
    setup.client.update_leads(
        [LeadUpdate(id=int(lead_id), status_id=stage, pipeline_id=setup.mapping.pipeline_id)]
    )
    with ctx.db.write() as conn:
        effects.record(conn, school=school.id, key=key, job_id=None, detail={"lead": lead_id})


def _finance_line(
    ctx: JobContext, school: School, row: Any, order: Order | None, channel: str
) -> None:
    payer = row["payer_name"] or (order.customer.full_name if order is not None else None)
    flag = None
    if row["match_state"] == ledger.FLAGGED:
        note = str(row["match_note"] or "")
        flag = "сумма не совпадает с заказом" if "не совпадает" in note else "нужна проверка"
    text = finance_line(
        ledger.amount_of(row),
        payer,
        str(row["source"]),
        order=order.number if order is not None else None,
        flag=flag,
    )
    notice = Notice(
        key=f"payment:{row['id']}:finance",
        kind="finance_line",
        html=escape_html(text),
        channel=channel,
    )
    with ctx.db.write() as conn:
        refs = queue_notices(conn, school, [notice])
    ctx.queue.send(refs)
