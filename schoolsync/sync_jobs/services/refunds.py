"""W9: a refund, from the request to the money back and the course access closed, once.

1. :func:`request_refund` (CLI, admin API): a request for an order's paid ledger payments, and
   one message in the «Возвраты» channel in the handbook's format (the card masked to its last
   four digits; the full number is never stored or logged). Asked again for the same order
   while it is open, the same request comes back.
2. :func:`confirm_refund` (CLI, admin API, or the lead reaching ``rules.refunds.confirm_stage_id``,
   :func:`on_lead_refund_stage`): ``requested -> confirmed`` and a :data:`REFUND_ACTOR` job, in
   one transaction. A second confirmation changes nothing and says so.
3. :func:`process_refund` (the job), each effect once however often it runs:

   - a YooKassa payment is refunded through YooKassa with an ``Idempotence-Key`` derived from
     the request, the payment and the attempt (a retry of the job sends the same key; YooKassa
     answers it with the first refund);
   - a payment from any other source is recorded as a manual refund (a person sends the money
     to the card);
   - the ledger: each refund ``done``, each payment covered ``refunded``;
   - the GetCourse deal is set to ``close_access_status`` (``platform_orders.write_status``,
     under an effects key), and the order mirror follows;
   - one outcome message in the channel.

   A refund YooKassa cancels or refuses fails the request: a ``failures`` row an admin replays
   (the replay tries again under a new key), and a message saying why. Nothing is closed then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schoolsync.connectors.amocrm.models import Lead
from schoolsync.connectors.amocrm.webhooks import LeadEvent
from schoolsync.connectors.yookassa.client import idempotence_key
from schoolsync.core.config import School
from schoolsync.core.domain import Money, Order, OrderStatus
from schoolsync.core.errors import ConfigError, NotFoundError, RejectedError, UnavailableError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import audit, effects, jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import refunds as store
from schoolsync.mappings.notifications import channel_target
from schoolsync.mappings.refunds import (
    RefundLine,
    RefundRules,
    RequestFacts,
    outcome_message,
    refund_rules,
    request_message,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup
from schoolsync.sync_jobs.services.crm_notes import LEAD, ORDER
from schoolsync.sync_jobs.services.crm_push import LANES, schedule_push
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices
from schoolsync.sync_jobs.services.platform_orders import write_status

log = get_logger(__name__)

REFUND_ACTOR = "process_refund"
PENDING_RECHECK_S = 60.0  # a refund YooKassa is still processing is looked at again after this
MANUAL = "manual"


@dataclass(frozen=True)
class Requested:
    id: int
    order_number: str
    created: bool  # False: the order's open request, given back
    state: str


@dataclass(frozen=True)
class Confirmation:
    id: int
    order_number: str
    confirmed: bool  # False: it was confirmed before (or is done); nothing happened
    state: str  # the request's state before this confirmation


# --- 1. the request ---------------------------------------------------------------------------


def request_refund(
    ctx: JobContext,
    school_id: str,
    *,
    order_number: str,
    card_last4: str | None,
    comment: str | None,
    who: str,
) -> Requested:
    """A refund request for the order's paid payments, posted to the refunds channel.

    Raises:
        NotFoundError: the ledger has no paid payment of the order (naming it).
        ConfigError: the refunds channel is not configured.
    """
    school = ctx.school(school_id)
    rules = refund_rules(school)
    channel_target(school, rules.channel)  # a missing channel is said now, not at delivery
    with ctx.db.write() as conn:
        existing = store.open_request(conn, school.id, order_number)
        if existing is not None:
            return Requested(int(existing["id"]), order_number, False, str(existing["state"]))
        known = ledger.for_order(conn, school.id, order_number)
        # what counts as the order's money (a double or a payment that is not ours does not)
        paid = ledger.paid_for_order(conn, school.id, order_number, other_than=0)
        if not paid:
            raise NotFoundError(
                f"order {order_number} has no payment in the ledger of school {school.id!r}: "
                "nothing to refund"
                if not known
                else f"order {order_number} has no paid payment left to refund "
                "(its payments are refunded, pending, canceled or set aside as not its money)"
            )
        order = order_store.find_order(conn, school.id, order_number)
        name, package = _name(order, paid), order.product if order is not None else None
        request_id = store.add_request(
            conn,
            school.id,
            order_number=order_number,
            payments=paid,
            card_last4=card_last4,
            comment=comment,
            requested_by=who,
            data={"name": name, "package": package},
        )
        facts = RequestFacts(
            request_id=request_id,
            order_number=order_number,
            full_name=name,
            package=package,
            phone=(order.customer.phone if order is not None else None)
            or _first(paid, "payer_phone"),
            email=(order.customer.email if order is not None else None)
            or _first(paid, "payer_email"),
            card_last4=card_last4,
            comment=comment,
            paid=[(ledger.amount_of(p), str(p["source"])) for p in paid],
        )
        notice = Notice(
            key=f"refund:{request_id}:request",
            kind="refund_request",
            html=request_message(facts),
            channel=rules.channel,
        )
        refs = queue_notices(conn, school, [notice])
        audit.add(
            conn,
            school=school.id,
            who=who,
            action="refund.request",
            target=f"order:{order_number}",
            detail={"request": request_id},
            outcome=audit.SUCCEEDED,
        )
    ctx.queue.send(refs)
    log.info("refund requested", school=school.id, order=order_number, request=request_id)
    return Requested(request_id, order_number, True, store.REQUESTED)


def _name(order: Order | None, paid: list[Any]) -> str | None:
    if order is not None:
        name = " ".join(p for p in (order.customer.last_name, order.customer.first_name) if p)
        if name:
            return name
    return _first(paid, "payer_name")


def _first(rows: list[Any], column: str) -> str | None:
    return next((str(r[column]) for r in rows if r[column]), None)


# --- 2. the confirmation ----------------------------------------------------------------------


def confirm_refund(
    ctx: JobContext, request_id: int, *, who: str, school: str | None = None
) -> Confirmation:
    """Confirm a request and ask for its refund job; a request confirmed before is left as it
    is (``confirmed=False``). ``school``, if given, must be the request's.

    Raises:
        NotFoundError: no such request (in that school).
    """
    with ctx.db.write() as conn:
        row = store.get_request(conn, request_id)
        if row is None or (school is not None and row["school"] != school):
            raise NotFoundError(f"there is no refund request {request_id}")
        school_id, number = str(row["school"]), str(row["order_number"])
        if not store.confirm(conn, request_id, who=who):
            return Confirmation(request_id, number, False, str(row["state"]))
        ref = jobs.add(
            conn,
            school=school_id,
            actor=REFUND_ACTOR,
            args={"school": school_id, "request_id": request_id},
            dedup_key=f"refund:{school_id}:{request_id}",
        )
        audit.add(
            conn,
            school=school_id,
            who=who,
            action="refund.confirm",
            target=f"order:{number}",
            detail={"request": request_id},
            outcome=audit.SUCCEEDED,
        )
    ctx.queue.send([ref] if ref is not None else [])
    log.info("refund confirmed", school=school_id, request=request_id, order=number)
    return Confirmation(request_id, number, True, str(row["state"]))


def on_lead_refund_stage(
    ctx: JobContext, school: School, setup: AmoCrmSetup, event: LeadEvent
) -> None:
    """A lead reached the configured refund stage: its order's waiting request is confirmed
    (the lead is re-read first: a webhook has no signature)."""
    stage = refund_rules(school).confirm_stage_id
    if stage is None or event.status_id != stage or event.action not in ("add", "status", "update"):
        return
    mapping = setup.mapping
    if mapping is not None and event.pipeline_id not in (None, mapping.pipeline_id):
        return
    lead = setup.client.get_lead(event.id, with_contacts=False)
    if lead.status_id != stage:
        log.info("lead left the refund stage since the webhook; nothing to do", lead=event.id)
        return
    number = _order_of(ctx, school.id, setup, lead)
    with ctx.db.read() as conn:
        request = store.open_request(conn, school.id, number) if number is not None else None
    if request is None or request["state"] != store.REQUESTED:
        log.info(
            "lead reached the refund stage; no refund request waits for it",
            school=school.id,
            lead=lead.id,
            order=number,
        )
        return
    confirm_refund(ctx, int(request["id"]), who=f"amocrm:lead:{lead.id}")


def _order_of(ctx: JobContext, school: str, setup: AmoCrmSetup, lead: Lead) -> str | None:
    with ctx.db.read() as conn:
        found = links.sources(conn, school, ORDER, LEAD, str(lead.id))
    if found:
        return found[-1]
    if setup.mapping is None:
        return None
    values = lead.field_values(setup.mapping.fields.order_number)
    return values[0] if values else None


# --- 3. the refund job ------------------------------------------------------------------------


def process_refund(ctx: JobContext, school_id: str, request_id: int) -> None:
    """Carry out a confirmed request (module docstring). Safe to run any number of times."""
    school = ctx.school(school_id)
    rules = refund_rules(school)
    with ctx.db.read() as conn:
        request = store.get_request(conn, request_id)
    if request is None or request["school"] != school.id:
        raise NotFoundError(f"there is no refund request {request_id} in school {school.id!r}")
    if request["state"] == store.DONE:
        log.info("refund request is done already; nothing to do", request=request_id)
        return
    if request["state"] == store.REQUESTED:
        log.info("refund request is not confirmed; nothing to do", request=request_id)
        return
    if request["state"] == store.FAILED:  # a replay: the failed refunds are tried again
        with ctx.db.write() as conn:
            store.set_state(conn, request_id, store.CONFIRMED)
    with ctx.db.read() as conn:
        rows = store.refunds_of(conn, request_id)
    lines = [_refund(ctx, school, rules, request, row) for row in rows]
    if any(line.result == "failed" for line in lines):
        _failed(ctx, school, rules, request, lines)
        return
    access, problem = _close_access(ctx, school, rules, request)
    html = outcome_message(
        request_id=request_id,
        order_number=str(request["order_number"]),
        full_name=(request["data"] or {}).get("name"),
        package=(request["data"] or {}).get("package"),
        card_last4=request["card_last4"],
        lines=lines,
        access=access.russian if access is not None else None,
        access_problem=problem,
    )
    notice = Notice(
        key=f"refund:{request_id}:outcome", kind="refund_outcome", html=html, channel=rules.channel
    )
    with ctx.db.write() as conn:
        store.set_state(conn, request_id, store.DONE)
        refs = queue_notices(conn, school, [notice])
    ctx.queue.send(refs)
    log.info("refund done", school=school.id, request=request_id, access_closed=access is not None)


def _refund(
    ctx: JobContext, school: School, rules: RefundRules, request: Any, row: Any
) -> RefundLine:
    """One payment's refund, once: done already, manual, or through YooKassa."""
    amount = Money.from_minor(int(row["amount_minor"]), str(row["currency"]))
    source = str(row["source"])
    manual = (row["data"] or {}).get("method") == MANUAL
    if row["status"] == store.DONE:
        return RefundLine(amount, source, MANUAL if manual else "done")
    if source != "yookassa":
        with ctx.db.write() as conn:
            store.mark_refund(conn, int(row["id"]), store.DONE, data={"method": MANUAL})
        log.info("manual refund recorded", request=request["id"], payment=row["payment_id"])
        return RefundLine(amount, source, MANUAL)
    return _yookassa(ctx, school, rules, request, row, amount)


def _yookassa(
    ctx: JobContext, school: School, rules: RefundRules, request: Any, row: Any, amount: Money
) -> RefundLine:
    setup = ctx.platforms.of(school.id).yookassa if ctx.platforms else None
    if setup is None:
        raise ConfigError(
            f"school {school.id!r} has no YooKassa account (accounts.yookassa) to refund "
            f"request {request['id']} through"
        )
    with ctx.db.read() as conn:
        payment = ledger.get(conn, int(row["payment_id"]))
    assert payment is not None  # a foreign key
    refund_id = int(row["id"])
    if row["status"] == store.SENT:
        refund = setup.client.get_refund(str(row["external_id"]))
    else:
        attempt = int((row["data"] or {}).get("attempt", 0))
        if row["status"] == store.FAILED:
            attempt += 1  # the same key would only give the failed refund back
        key = idempotence_key(
            f"schoolsync-refund-{school.id}-{request['id']}-{payment['id']}-{attempt}"
        )
        with ctx.db.write() as conn:  # the key is stored before it is used: a crash reuses it
            store.mark_refund(
                conn, refund_id, store.CONFIRMED, data={"attempt": attempt, "key": key}
            )
        comment = rules.provider_comment(
            order=str(request["order_number"]), request=int(request["id"]), amount=amount
        )
        try:
            refund = setup.client.create_refund(
                str(payment["external_id"]), amount.amount, amount.currency, key, comment
            )
        except RejectedError as exc:
            return _refund_failed(ctx, request, row, amount, f"YooKassa отказала: {exc.message}")
    if refund.status == "succeeded":
        with ctx.db.write() as conn:
            store.mark_refund(conn, refund_id, store.DONE, external_id=refund.id)
        log.info("refunded through YooKassa", request=request["id"], refund=refund.id)
        return RefundLine(amount, "yookassa", "done")
    if refund.status == "canceled":
        details = refund.cancellation_details
        parts = (details.party, details.reason) if details is not None else ()
        why = " / ".join(p for p in parts if p) or "без причины"
        return _refund_failed(
            ctx, request, row, amount, f"YooKassa отменила возврат ({why})", refund.id
        )
    with ctx.db.write() as conn:
        store.mark_refund(conn, refund_id, store.SENT, external_id=refund.id)
    raise UnavailableError(
        f"YooKassa is still processing refund {refund.id} of request {request['id']}",
        retry_after=PENDING_RECHECK_S,
        platform="yookassa",
        account=setup.shop_id,
    )


def _refund_failed(
    ctx: JobContext,
    request: Any,
    row: Any,
    amount: Money,
    reason: str,
    external_id: str | None = None,
) -> RefundLine:
    with ctx.db.write() as conn:
        store.mark_refund(
            conn, int(row["id"]), store.FAILED, external_id=external_id, reason=reason
        )
    log.warning("refund failed", request=request["id"], payment=row["payment_id"])
    return RefundLine(amount, str(row["source"]), "failed", reason)


def _failed(
    ctx: JobContext, school: School, rules: RefundRules, request: Any, lines: list[RefundLine]
) -> None:
    """The request fails visibly: a failure to replay, and a message; nothing is closed."""
    request_id, number = int(request["id"]), str(request["order_number"])
    reasons = "; ".join(line.reason or "" for line in lines if line.result == "failed")
    with ctx.db.read() as conn:
        attempt = max(
            (int((r["data"] or {}).get("attempt", 0)) for r in store.refunds_of(conn, request_id)),
            default=0,
        )
    html = outcome_message(
        request_id=request_id,
        order_number=number,
        full_name=(request["data"] or {}).get("name"),
        package=(request["data"] or {}).get("package"),
        card_last4=request["card_last4"],
        lines=lines,
        access=None,
    )
    notice = Notice(
        key=f"refund:{request_id}:failed:{attempt}",
        kind="refund_outcome",
        html=html,
        channel=rules.channel,
    )
    with ctx.db.write() as conn:
        store.set_state(conn, request_id, store.FAILED, error=reasons)
        jobs.fail_as_job(
            conn,
            school=school.id,
            actor=REFUND_ACTOR,
            args={"school": school.id, "request_id": request_id},
            key=f"refund-failed:{school.id}:{request_id}",
            error_class="RefundFailed",
            error=f"refund request {request_id} (order {number}) failed: {reasons}; "
            "replay it to try again",
        )
        refs = queue_notices(conn, school, [notice])
    ctx.queue.send(refs)
    log.error("refund request failed", school=school.id, request=request_id, order=number)


def _close_access(
    ctx: JobContext, school: School, rules: RefundRules, request: Any
) -> tuple[OrderStatus | None, str | None]:
    """The GetCourse deal set to the closing status, once. ``(status, None)`` when closed,
    ``(None, why)`` when it cannot be done here (a person closes it)."""
    status = rules.close_access_status
    key = f"getcourse:refund-access:{school.id}:{request['id']}"
    number = str(request["order_number"])
    with ctx.db.read() as conn:
        if effects.exists(conn, key):
            return status, None
        order = order_store.find_order(conn, school.id, number)
    if order is None:
        return None, "заказа нет среди заказов GetCourse"
    setup = ctx.platforms.of(school.id).getcourse if ctx.platforms else None
    if order.platform != "getcourse" or setup is None:
        return None, "у школы не подключён GetCourse"
    write_status(ctx, school, order, status)
    with ctx.db.write() as conn:
        effects.record(
            conn,
            school=school.id,
            key=key,
            job_id=None,
            detail={"order": number, "status": status.value},
        )
        order_store.upsert_many(
            conn, school.id, [order.model_copy(update={"status": status})], lanes=LANES
        )
        crm = ctx.platforms.of(school.id).amocrm if ctx.platforms else None
        refs = schedule_push(conn, school.id, range(LANES)) if crm is not None else []
    ctx.queue.send(refs)
    log.info("course access closed", school=school.id, order=number, status=status.value)
    return status, None
