"""What the admin console shows, as pydantic models, masked for the caller's role.

The API routes (``admin_console``) and the server-rendered pages both call these functions, so
that a page and the API always agree, and masking happens in one place. Each takes the caller
(``Principal``): a viewer gets emails, phones and card numbers masked everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.app.web.admin_auth import VIEWER, Principal
from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.tables import reconcile_items
from schoolsync.core.domain import Order
from schoolsync.core.errors import NotFoundError
from schoolsync.core.stores import audit, failures, inbox, jobs
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.failures import FailureFilter
from schoolsync.sync_jobs.services.bulk_replay import BulkStatus, DryRun

BODY_LIMIT = 20_000  # characters of a stored request shown at most


def _at(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


# --- failures ------------------------------------------------------------------------------


class FailureOut(BaseModel):
    id: int
    school: str
    platform: str = Field(description="derived from the job (see core.stores.failures)")
    actor: str = Field(description="the job (workflow) that failed")
    error_class: str
    error_message: str
    attempts: int
    status: str = Field(description="open, replaying, resolved or ignored")
    first_failed_at: datetime
    last_failed_at: datetime
    resolved_at: datetime | None
    group: str = Field(description="root cause: same actor, error class and normalised message")
    job_id: int


class FailurePageOut(BaseModel):
    items: list[FailureOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; None: last")


class AttemptOut(BaseModel):
    attempt: int
    worker: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    outcome: str | None = Field(description="ok, retry, failed, crashed; None while running")
    error_class: str | None
    error_message: str | None


class AuditOut(BaseModel):
    id: int
    school: str
    at: datetime
    who: str
    action: str
    target: str
    detail: dict[str, Any]
    outcome: str = Field(description="pending, succeeded or failed")
    job_id: int | None
    finished_at: datetime | None


class InboxEventOut(BaseModel):
    id: int
    school: str
    source: str
    status: str = Field(description="received (not processed yet), processed or rejected")
    reject_reason: str | None
    received_at: datetime
    processed_at: datetime | None
    remote_addr: str | None


class InboxDetailOut(InboxEventOut):
    dedup_key: str
    headers: dict[str, str]
    query: str
    body: str
    body_truncated: bool


class FailureDetailOut(FailureOut):
    args: dict[str, Any] = Field(description="the job's input (what a replay runs with)")
    pattern: str = Field(description="the normalised message its group shares")
    history: list[AttemptOut] = Field(description="every attempt of the job")
    audit: list[AuditOut] = Field(description="who replayed, resolved or ignored it, and how")
    input: InboxDetailOut | None = Field(description="the stored webhook it processed, if any")


class GroupOut(BaseModel):
    key: str
    actor: str
    error_class: str
    platform: str
    pattern: str
    count: int
    statuses: dict[str, int]
    first_failed_at: datetime
    last_failed_at: datetime
    example_id: int
    example_message: str


class OverviewOut(BaseModel):
    since: datetime
    total: int = Field(description="failures that (last) failed in the window")
    open_total: int = Field(description="open now, whenever they failed")
    by_platform: dict[str, int]
    by_actor: dict[str, int]
    by_error_class: dict[str, int]
    by_status: dict[str, int]
    inbox: dict[str, int] = Field(description="webhooks received in the window, by status")
    reconcile_open: int = Field(description="reconciliation findings waiting for a person")
    top_groups: list[GroupOut] = Field(description="the biggest open root causes")


def _failure(principal: Principal, row: RowMapping) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "school": row["school"],
        "platform": row["platform"],
        "actor": row["actor"],
        "error_class": row["error_class"],
        "error_message": principal.mask(row["error_message"]),
        "attempts": int(row["attempts"]),
        "status": row["status"],
        "first_failed_at": as_utc(row["first_failed_at"]),
        "last_failed_at": as_utc(row["last_failed_at"]),
        "resolved_at": _at(row["resolved_at"]),
        "group": failures.group_key(row["actor"], row["error_class"], row["error_message"]),
        "job_id": int(row["job_id"]),
    }


def failure_page(
    db: Database,
    filt: FailureFilter,
    *,
    principal: Principal,
    cursor: str | None = None,
    limit: int = 50,
) -> FailurePageOut:
    """Raises ``ValueError`` for a cursor this API did not give out, or an entity a viewer may
    not search by."""
    _viewer_entity(principal, filt)
    with db.read() as conn:
        page = failures.search(conn, filt, cursor=cursor, limit=limit)
    return FailurePageOut(
        items=[FailureOut(**_failure(principal, r)) for r in page.rows],
        next_cursor=page.next_cursor,
    )


def failure_detail(db: Database, failure_id: int, *, principal: Principal) -> FailureDetailOut:
    """Raises ``NotFoundError``."""
    with db.read() as conn:
        row = failures.get_with_platform(conn, failure_id)
        if row is None:
            raise NotFoundError(f"failure {failure_id} does not exist")
        attempts = jobs.attempts(conn, int(row["job_id"]))
        trail = audit.for_target(conn, f"failure:{failure_id}")
        inbox_id = row["args"].get("inbox_id") if isinstance(row["args"], dict) else None
        event = inbox.get(conn, int(inbox_id)) if isinstance(inbox_id, int) else None
    return FailureDetailOut(
        **_failure(principal, row),
        args=principal.mask_json(dict(row["args"])),
        pattern=principal.mask(failures.normalise(row["error_message"])),
        history=[
            AttemptOut(
                attempt=int(a["attempt"]),
                worker=a["worker"],
                started_at=as_utc(a["started_at"]),
                finished_at=_at(a["finished_at"]),
                duration_ms=a["duration_ms"],
                outcome=a["outcome"],
                error_class=a["error_class"],
                error_message=principal.mask(a["error_message"]) if a["error_message"] else None,
            )
            for a in attempts
        ],
        audit=[audit_entry(principal, e) for e in trail],
        input=_inbox_detail(principal, event) if event is not None else None,
    )


def _group(principal: Principal, group: failures.FailureGroup) -> GroupOut:
    return GroupOut(
        key=group.key,
        actor=group.actor,
        error_class=group.error_class,
        platform=group.platform,
        pattern=principal.mask(group.pattern),
        count=group.count,
        statuses=group.statuses,
        first_failed_at=group.first_failed_at,
        last_failed_at=group.last_failed_at,
        example_id=group.example_id,
        example_message=principal.mask(group.example_message),
    )


def _viewer_entity(principal: Principal, filt: FailureFilter) -> None:
    """A viewer searches by an order number only: a partial email or phone (``iv***@mail.ru``)
    would tell them, a character at a time, what the masking hides."""
    if principal.role == VIEWER and filt.entity and not filt.entity.strip().isdigit():
        raise ValueError("a viewer can search failures by order number only")


def failure_groups(db: Database, filt: FailureFilter, *, principal: Principal) -> list[GroupOut]:
    _viewer_entity(principal, filt)
    with db.read() as conn:
        found = failures.groups(conn, filt)
    return [_group(principal, g) for g in found]


def overview(
    db: Database,
    *,
    principal: Principal,
    school: str | None = None,
    hours: int = 24,
    now: datetime | None = None,
) -> OverviewOut:
    now = now or utcnow()
    with db.read() as conn:
        counts = failures.overview(conn, now=now, hours=hours, school=school)
        events = inbox.count_since(conn, now - timedelta(hours=hours), school=school)
        waiting = _reconcile_open(conn, school)
        top = failures.groups(conn, FailureFilter(school=school, status=failures.OPEN))[:10]
    return OverviewOut(
        since=counts.since,
        total=counts.total,
        open_total=counts.open_total,
        by_platform=counts.by_platform,
        by_actor=counts.by_actor,
        by_error_class=counts.by_error_class,
        by_status=counts.by_status,
        inbox=events,
        reconcile_open=waiting,
        top_groups=[_group(principal, g) for g in top],
    )


def _reconcile_open(conn: Connection, school: str | None) -> int:
    query = sa.select(sa.func.count()).where(reconcile_items.c.status == findings.OPEN)
    if school:
        query = query.where(reconcile_items.c.school == school)
    return int(conn.execute(query).scalar_one())


# --- bulk replays --------------------------------------------------------------------------


class DryRunGroupOut(BaseModel):
    key: str
    actor: str
    error_class: str
    pattern: str
    count: int
    outcomes: dict[str, int] = Field(description="what would happen -> how many")


class DryRunOut(BaseModel):
    total: int
    would_run: int
    would_fail: int
    outcomes: dict[str, int]
    groups: list[DryRunGroupOut]
    summary: str = Field(
        description="e.g. '412 failures: 398 would create a lead, 14 would fail the config check: …'"
    )


class BulkOut(BaseModel):
    id: int
    school: str
    who: str
    filter: dict[str, Any]
    status: str = Field(description="queued, running, done, cancelled or failed")
    total: int
    done: int = Field(description="failures queued again so far")
    skipped: int = Field(description="no longer open when their turn came")
    cancel_requested: bool
    job_id: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def dry_run_out(principal: Principal, found: DryRun) -> DryRunOut:
    return DryRunOut(
        total=found.total,
        would_run=found.would_run,
        would_fail=found.would_fail,
        outcomes={principal.mask(k): v for k, v in found.outcomes.items()},
        groups=[
            DryRunGroupOut(
                key=g.key,
                actor=g.actor,
                error_class=g.error_class,
                pattern=principal.mask(g.pattern),
                count=g.count,
                outcomes={principal.mask(k): v for k, v in g.outcomes.items()},
            )
            for g in found.groups
        ],
        summary=principal.mask(found.summary),
    )


def bulk_out(principal: Principal, found: BulkStatus) -> BulkOut:
    return BulkOut(
        id=found.id,
        school=found.school,
        who=found.who,
        filter=principal.mask_json(found.filter),
        status=found.status,
        total=found.total,
        done=found.done,
        skipped=found.skipped,
        cancel_requested=found.cancel_requested,
        job_id=found.job_id,
        error=principal.mask(found.error) if found.error else None,
        created_at=as_utc(found.created_at),
        started_at=_at(found.started_at),
        finished_at=_at(found.finished_at),
    )


# --- inbox ---------------------------------------------------------------------------------


class InboxPageOut(BaseModel):
    items: list[InboxEventOut]
    next_cursor: str | None


def _inbox_event(principal: Principal, row: RowMapping) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "school": row["school"],
        "source": row["source"],
        "status": row["status"],
        "reject_reason": principal.mask(row["reject_reason"]) if row["reject_reason"] else None,
        "received_at": as_utc(row["received_at"]),
        "processed_at": _at(row["processed_at"]),
        "remote_addr": row["remote_addr"],
    }


def _inbox_detail(principal: Principal, row: RowMapping) -> InboxDetailOut:
    body = bytes(row["body"]).decode("utf-8", "replace")
    return InboxDetailOut(
        **_inbox_event(principal, row),
        dedup_key=principal.mask(row["dedup_key"]),
        headers=principal.mask_headers(dict(row["headers"] or {})),
        query=principal.mask(row["query"] or ""),
        body=principal.mask(body[:BODY_LIMIT]),
        body_truncated=len(body) > BODY_LIMIT,
    )


def inbox_page(
    db: Database,
    *,
    principal: Principal,
    school: str | None = None,
    source: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> InboxPageOut:
    """Raises ``ValueError`` for a bad cursor."""
    before = _int_cursor(cursor)
    with db.read() as conn:
        rows, next_before = inbox.search(
            conn, school=school, source=source, status=status, before_id=before, limit=limit
        )
    return InboxPageOut(
        items=[InboxEventOut(**_inbox_event(principal, r)) for r in rows],
        next_cursor=str(next_before) if next_before is not None else None,
    )


def inbox_detail(db: Database, inbox_id: int, *, principal: Principal) -> InboxDetailOut:
    """Raises ``NotFoundError``."""
    with db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise NotFoundError(f"inbox event {inbox_id} does not exist")
    return _inbox_detail(principal, row)


def _int_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValueError("not a cursor this API gave out")
    return int(cursor)


# --- audit ---------------------------------------------------------------------------------


class AuditPageOut(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


def audit_entry(principal: Principal, row: RowMapping) -> AuditOut:
    return AuditOut(
        id=int(row["id"]),
        school=row["school"],
        at=as_utc(row["at"]),
        who=row["who"],
        action=row["action"],
        target=row["target"],
        detail=principal.mask_json(dict(row["detail"] or {})),
        outcome=row["outcome"],
        job_id=row["job_id"],
        finished_at=_at(row["finished_at"]),
    )


def audit_page(
    db: Database,
    *,
    principal: Principal,
    school: str | None = None,
    who: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPageOut:
    """Raises ``ValueError`` for a bad cursor."""
    before = _int_cursor(cursor)
    with db.read() as conn:
        rows, next_before = audit.search(
            conn,
            school=school,
            who=who,
            action=action,
            target=target,
            outcome=outcome,
            before_id=before,
            limit=limit,
        )
    return AuditPageOut(
        items=[audit_entry(principal, r) for r in rows],
        next_cursor=str(next_before) if next_before is not None else None,
    )


# --- reconciliation queue ------------------------------------------------------------------


class ReconcileItemOut(BaseModel):
    id: int
    school: str
    kind: str
    rule: str
    score: float
    explanation: str
    payment_ids: list[int]
    order_ids: list[str]
    candidates: list[str]
    status: str = Field(description="open (waiting for a person), acted, resolved, dismissed, gone")
    resolution: dict[str, Any] | None
    first_seen_at: datetime
    last_seen_at: datetime


class PaymentOut(BaseModel):
    id: int
    source: str
    status: str
    amount: str
    currency: str
    paid_at: datetime | None
    payer_name: str | None
    payer_email: str | None
    payer_phone: str | None
    reference: str | None
    match_state: str
    order_number: str | None


class OrderOut(BaseModel):
    number: str
    status: str
    product: str | None
    cost: str | None
    payed: str | None
    customer: str
    email: str | None
    phone: str | None
    created_at: datetime | None
    role: str = Field(description="order (the finding names it) or candidate")


class ReconcileDetailOut(ReconcileItemOut):
    payments: list[PaymentOut]
    orders: list[OrderOut] = Field(description="its orders and candidate orders, side by side")


def _item(principal: Principal, row: RowMapping) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "school": row["school"],
        "kind": row["kind"],
        "rule": row["rule"],
        "score": float(row["score"]),
        "explanation": principal.mask(row["explanation"]),
        "payment_ids": [int(p) for p in row["payment_ids"]],
        "order_ids": [str(o) for o in row["order_ids"]],
        "candidates": [str(o) for o in row["candidates"]],
        "status": row["status"],
        "resolution": principal.mask_json(row["resolution"]) if row["resolution"] else None,
        "first_seen_at": as_utc(row["first_seen_at"]),
        "last_seen_at": as_utc(row["last_seen_at"]),
    }


def reconcile_queue(
    db: Database, school: str, *, principal: Principal, status: str | None = findings.OPEN
) -> list[ReconcileItemOut]:
    with db.read() as conn:
        rows = findings.listing(conn, school, status=status)
    return [ReconcileItemOut(**_item(principal, r)) for r in rows]


def reconcile_detail(db: Database, item_id: int, *, principal: Principal) -> ReconcileDetailOut:
    """Raises ``NotFoundError``."""
    with db.read() as conn:
        row = findings.get(conn, item_id)
        if row is None:
            raise NotFoundError(f"reconciliation item {item_id} does not exist")
        paid = [p for p in (ledger.get(conn, int(i)) for i in row["payment_ids"]) if p]
        wanted = [(str(n), "order") for n in row["order_ids"]]
        wanted += [(str(n), "candidate") for n in row["candidates"]]
        orders = [
            (o, role)
            for number, role in wanted
            if (o := order_store.find_order(conn, row["school"], number)) is not None
        ]
    return ReconcileDetailOut(
        **_item(principal, row),
        payments=[_payment(principal, p) for p in paid],
        orders=[_order(principal, o, role) for o, role in orders],
    )


def _payment(principal: Principal, row: RowMapping) -> PaymentOut:
    money = ledger.amount_of(row)
    return PaymentOut(
        id=int(row["id"]),
        source=row["source"],
        status=row["status"],
        amount=f"{money.amount:f}",
        currency=money.currency,
        paid_at=_at(ledger.paid_at_of(row)),
        payer_name=row["payer_name"],
        payer_email=principal.mask(row["payer_email"]) if row["payer_email"] else None,
        payer_phone=principal.mask(row["payer_phone"]) if row["payer_phone"] else None,
        reference=principal.mask(row["reference"]) if row["reference"] else None,
        match_state=row["match_state"],
        order_number=row["order_number"],
    )


def _order(principal: Principal, order: Order, role: str) -> OrderOut:
    customer = order.customer
    return OrderOut(
        number=order.number,
        status=order.status.value,
        product=order.product,
        cost=str(order.cost) if order.cost else None,
        payed=str(order.payed) if order.payed else None,
        customer=customer.full_name,
        email=principal.mask(customer.email) if customer.email else None,
        phone=principal.mask(customer.phone) if customer.phone else None,
        created_at=_at(order.created_at),
        role=role,
    )
