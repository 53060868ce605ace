"""Refund requests (W9) and the refunds that carry them out, one per payment of the order.

A request::

    requested ──confirm──> confirmed ──every refund done──> done
                               │──a refund failed──> failed ──replayed──> confirmed ...

Its refunds (``refunds`` rows with ``request_id``) go ``requested -> confirmed -> sent -> done |
failed``: ``sent`` is a provider refund that is still processing. A refund's ``external_id`` is
ours (``request:<id>:<payment id>``) until the provider names it; then it is the provider's id,
so that the provider's own notification of it is recognised (``payments.record_refund``).
Only the last four digits of a card are ever stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import refund_requests, refunds
from schoolsync.core.stores.payments import mark_refunded_if_covered

REQUESTED, CONFIRMED, SENT, DONE, FAILED = "requested", "confirmed", "sent", "done", "failed"
OPEN = (REQUESTED, CONFIRMED, FAILED)  # a request that has not returned the money yet


def add_request(
    conn: Connection,
    school: str,
    *,
    order_number: str,
    payments: Sequence[RowMapping],
    card_last4: str | None,
    comment: str | None,
    requested_by: str,
    data: dict[str, Any],
) -> int:
    """A new request for ``order_number`` and a ``requested`` refund of each of ``payments``
    (in full). Returns the request id."""
    if card_last4 is not None and (len(card_last4) != 4 or not card_last4.isdigit()):
        raise ValueError("only the last four digits of a card are stored")
    now = utcnow()
    request_id = int(
        conn.execute(
            sa.insert(refund_requests)
            .values(
                school=school,
                order_number=order_number,
                state=REQUESTED,
                card_last4=card_last4,
                comment=comment,
                requested_by=requested_by[:120],
                data=data,
                created_at=now,
            )
            .returning(refund_requests.c.id)
        ).one()[0]
    )
    for payment in payments:
        conn.execute(
            sa.insert(refunds).values(
                school=school,
                payment_id=payment["id"],
                source=payment["source"],
                external_id=f"request:{request_id}:{payment['id']}",
                amount_minor=payment["amount_minor"],
                currency=payment["currency"],
                status=REQUESTED,
                data={"attempt": 0},
                request_id=request_id,
                created_at=now,
                updated_at=now,
            )
        )
    return request_id


def get_request(conn: Connection, request_id: int) -> RowMapping | None:
    return (
        conn.execute(sa.select(refund_requests).where(refund_requests.c.id == request_id))
        .mappings()
        .first()
    )


def open_request(conn: Connection, school: str, order_number: str) -> RowMapping | None:
    """The order's request that has not returned the money yet, if any."""
    return (
        conn.execute(
            sa.select(refund_requests)
            .where(
                refund_requests.c.school == school,
                refund_requests.c.order_number == order_number,
                refund_requests.c.state.in_(OPEN),
            )
            .order_by(refund_requests.c.id.desc())
        )
        .mappings()
        .first()
    )


def requests(
    conn: Connection, school: str, *, state: str | None = None, limit: int = 100
) -> list[RowMapping]:
    stmt = sa.select(refund_requests).where(refund_requests.c.school == school)
    if state is not None:
        stmt = stmt.where(refund_requests.c.state == state)
    return list(conn.execute(stmt.order_by(refund_requests.c.id.desc()).limit(limit)).mappings())


def confirm(conn: Connection, request_id: int, *, who: str) -> bool:
    """``requested`` -> ``confirmed`` (compare-and-set: of two confirmations at once, one
    wins). ``False`` when the request was not waiting for a confirmation."""
    now = utcnow()
    changed = conn.execute(
        sa.update(refund_requests)
        .where(refund_requests.c.id == request_id, refund_requests.c.state == REQUESTED)
        .values(state=CONFIRMED, confirmed_by=who[:120], confirmed_at=now)
    ).rowcount
    if not changed:
        return False
    conn.execute(
        sa.update(refunds)
        .where(refunds.c.request_id == request_id, refunds.c.status == REQUESTED)
        .values(status=CONFIRMED, updated_at=now)
    )
    return True


def set_state(conn: Connection, request_id: int, state: str, *, error: str | None = None) -> None:
    finished = utcnow() if state in (DONE, FAILED) else None
    conn.execute(
        sa.update(refund_requests)
        .where(refund_requests.c.id == request_id)
        .values(state=state, error=error, finished_at=finished)
    )


def refunds_of(conn: Connection, request_id: int) -> list[RowMapping]:
    return list(
        conn.execute(
            sa.select(refunds).where(refunds.c.request_id == request_id).order_by(refunds.c.id)
        ).mappings()
    )


def get_refund(conn: Connection, refund_id: int) -> RowMapping | None:
    return conn.execute(sa.select(refunds).where(refunds.c.id == refund_id)).mappings().first()


def mark_refund(
    conn: Connection,
    refund_id: int,
    status: str,
    *,
    external_id: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Move one refund of a request on; ``external_id`` is the provider's id once it has one.

    If the provider's notification of that very refund was recorded first (a row of its own),
    that row is taken over (it joins the request) and ours goes: the refund is counted once.
    A ``done`` refund that covers its payment makes the payment ``refunded``.
    """
    row = get_refund(conn, refund_id)
    if row is None:
        raise ValueError(f"refund {refund_id} does not exist")
    values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": utcnow()}
    if data is not None:
        values["data"] = {**dict(row["data"] or {}), **data}
    target = refund_id
    if external_id is not None and external_id != row["external_id"]:
        known = (
            conn.execute(
                sa.select(refunds.c.id, refunds.c.status).where(
                    refunds.c.school == row["school"],
                    refunds.c.source == row["source"],
                    refunds.c.external_id == external_id,
                )
            )
            .mappings()
            .first()
        )
        if known is not None:
            conn.execute(sa.delete(refunds).where(refunds.c.id == refund_id))
            target = int(known["id"])
            values["request_id"] = row["request_id"]
            if known["status"] == DONE:
                values["status"] = DONE
        else:
            values["external_id"] = external_id
    conn.execute(sa.update(refunds).where(refunds.c.id == target).values(**values))
    if values["status"] == DONE:
        mark_refunded_if_covered(conn, int(row["payment_id"]))
