"""The payments ledger: one row per (school, source, external id), whichever way money came.

A provider's notification, a manager's line in the finance group, a bank statement line and an
admin's command all become the same row. Recording the same payment again (a repeated
notification, a statement imported twice) changes nothing, except a status the source has
moved on (``pending`` -> ``succeeded``). Amounts are whole minor units with their currency.

``match_state``: ``unmatched`` -> ``matched`` (the order it pays, with the rule and a human
explanation), or ``flagged`` (matched, but the amount differs from the order's cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import payments, refunds
from schoolsync.core.db.upsert import insert_ignore
from schoolsync.core.domain import Money

SUCCEEDED, PENDING, CANCELED, REFUNDED = "succeeded", "pending", "canceled", "refunded"
AUTOMATIC, MANUAL = "automatic", "manual"
UNMATCHED, MATCHED, FLAGGED = "unmatched", "matched", "flagged"
# set by the reconciliation (W7): a manual payment removed as a double of an automatic one, and
# a payment a person said is not the school's; neither counts as money for an order
DUPLICATE, DISMISSED = "duplicate", "dismissed"
SOURCES = ("yookassa", "robokassa", "paypal", "card_transfer", "bank_transfer", "getcourse")


@dataclass(frozen=True)
class NewPayment:
    source: str
    external_id: str
    amount: Money
    kind: str = AUTOMATIC
    status: str = SUCCEEDED
    fee: Money | None = None
    paid_at: datetime | None = None
    payer_name: str | None = None
    payer_email: str | None = None
    payer_phone: str | None = None
    reference: str | None = None
    inbox_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown payment source {self.source!r}")
        if self.amount.amount <= 0:
            raise ValueError("a payment's amount must be positive")


@dataclass(frozen=True)
class Recorded:
    id: int
    created: bool  # a new row
    became_paid: bool  # new and succeeded, or moved to succeeded now


def record(conn: Connection, school: str, payment: NewPayment) -> Recorded:
    """Store ``payment`` once; a known one only takes a changed status."""
    now = utcnow()
    if len(payment.external_id) > 160:
        raise ValueError("a payment's external id is at most 160 characters")
    values = {
        "school": school,
        "source": payment.source,
        "external_id": payment.external_id,
        "kind": payment.kind,
        "status": payment.status,
        "amount_minor": payment.amount.minor,
        "currency": payment.amount.currency,
        "fee_minor": payment.fee.minor if payment.fee is not None else None,
        "paid_at": payment.paid_at,
        # what a source sends can be longer than anyone needs; the columns bound it everywhere
        "payer_name": _cut(payment.payer_name, 200),
        "payer_email": _cut(payment.payer_email, 200),
        "payer_phone": _cut(payment.payer_phone, 40),
        "reference": _cut(payment.reference, 120),
        "inbox_id": payment.inbox_id,
        "data": payment.data,
        "created_at": now,
        "updated_at": now,
    }
    new_id = insert_ignore(conn, payments, values, conflict=("school", "source", "external_id"))
    if new_id is not None:
        return Recorded(new_id, True, payment.status == SUCCEEDED)
    row = find(conn, school, payment.source, payment.external_id)
    assert row is not None
    if row["status"] == payment.status or row["status"] in (REFUNDED,):
        return Recorded(int(row["id"]), False, False)
    conn.execute(
        sa.update(payments)
        .where(payments.c.id == row["id"])
        .values(status=payment.status, updated_at=now, paid_at=payment.paid_at or row["paid_at"])
    )
    return Recorded(int(row["id"]), False, payment.status == SUCCEEDED)


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def record_refund(
    conn: Connection,
    school: str,
    *,
    payment_row: RowMapping,
    external_id: str,
    amount: Money,
    status: str,
    data: dict[str, Any],
) -> bool:
    """A refund of a ledger payment, once; a payment refunded in full becomes ``refunded``.
    Returns ``False`` when the refund was known already (one of ours still waiting for the
    provider, ``sent``, becomes ``done`` when the provider's ``done`` arrives first)."""
    now = utcnow()
    new = insert_ignore(
        conn,
        refunds,
        {
            "school": school,
            "payment_id": payment_row["id"],
            "source": payment_row["source"],
            "external_id": external_id,
            "amount_minor": amount.minor,
            "currency": amount.currency,
            "status": status,
            "data": data,
            "created_at": now,
            "updated_at": now,
        },
        conflict=("school", "source", "external_id"),
    )
    if new is None:
        if status == "done":
            moved = conn.execute(
                sa.update(refunds)
                .where(
                    refunds.c.school == school,
                    refunds.c.source == payment_row["source"],
                    refunds.c.external_id == external_id,
                    refunds.c.status == "sent",
                )
                .values(status="done", updated_at=now)
            ).rowcount
            if moved:
                mark_refunded_if_covered(conn, int(payment_row["id"]))
        return False
    mark_refunded_if_covered(conn, int(payment_row["id"]))
    return True


def mark_refunded_if_covered(conn: Connection, payment_id: int) -> bool:
    """The payment becomes ``refunded`` once its ``done`` refunds cover its amount (it no
    longer counts as money received). Returns whether it is refunded now."""
    row = get(conn, payment_id)
    if row is None:
        return False
    done = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_minor), 0)).where(
            refunds.c.payment_id == payment_id, refunds.c.status == "done"
        )
    ).scalar()
    if int(done or 0) < int(row["amount_minor"]):
        return False
    if row["status"] != REFUNDED:
        conn.execute(
            sa.update(payments)
            .where(payments.c.id == payment_id)
            .values(status=REFUNDED, updated_at=utcnow())
        )
    return True


def find(conn: Connection, school: str, source: str, external_id: str) -> RowMapping | None:
    return (
        conn.execute(
            sa.select(payments).where(
                payments.c.school == school,
                payments.c.source == source,
                payments.c.external_id == external_id,
            )
        )
        .mappings()
        .first()
    )


def get(conn: Connection, payment_id: int) -> RowMapping | None:
    return conn.execute(sa.select(payments).where(payments.c.id == payment_id)).mappings().first()


def set_match(
    conn: Connection, payment_id: int, *, order_number: str, state: str, rule: str, note: str
) -> None:
    conn.execute(
        sa.update(payments)
        .where(payments.c.id == payment_id)
        .values(
            order_number=order_number,
            match_state=state,
            match_rule=rule,
            match_note=note,
            updated_at=utcnow(),
        )
    )


def paid_for_order(
    conn: Connection, school: str, order_number: str, *, other_than: int
) -> list[RowMapping]:
    """Succeeded payments already matched to an order (other than ``other_than``)."""
    return [
        row
        for row in for_order(conn, school, order_number)
        if row["status"] == SUCCEEDED
        and row["match_state"] not in (DUPLICATE, DISMISSED)
        and int(row["id"]) != other_than
    ]


def for_order(conn: Connection, school: str, order_number: str) -> list[RowMapping]:
    return list(
        conn.execute(
            sa.select(payments)
            .where(payments.c.school == school, payments.c.order_number == order_number)
            .order_by(payments.c.id)
        ).mappings()
    )


def listing(
    conn: Connection, school: str, *, match_state: str | None = None, limit: int = 1000
) -> list[RowMapping]:
    stmt = sa.select(payments).where(payments.c.school == school)
    if match_state is not None:
        stmt = stmt.where(payments.c.match_state == match_state)
    return list(conn.execute(stmt.order_by(payments.c.id.desc()).limit(limit)).mappings())


def amount_of(row: RowMapping) -> Money:
    return Money.from_minor(int(row["amount_minor"]), str(row["currency"]))


def paid_at_of(row: RowMapping) -> datetime | None:
    value = row["paid_at"]
    return as_utc(value) if value is not None else None
