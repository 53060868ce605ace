"""The audit trail: who did what, when, and how it ended."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import audit

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def add(
    conn: Connection,
    *,
    school: str,
    who: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    outcome: str = PENDING,
    job_id: int | None = None,
) -> int:
    row = conn.execute(
        sa.insert(audit)
        .values(
            school=school,
            at=utcnow(),
            who=who,
            action=action,
            target=target,
            detail=detail,
            outcome=outcome,
            job_id=job_id,
            finished_at=None if outcome == PENDING else utcnow(),
        )
        .returning(audit.c.id)
    ).one()
    return int(row[0])


def settle_for_job(conn: Connection, job_id: int, outcome: str) -> None:
    """Close every pending audit entry waiting on ``job_id`` with ``outcome``."""
    conn.execute(
        sa.update(audit)
        .where(audit.c.job_id == job_id, audit.c.outcome == PENDING)
        .values(outcome=outcome, finished_at=utcnow())
    )


def get(conn: Connection, audit_id: int) -> RowMapping | None:
    return conn.execute(sa.select(audit).where(audit.c.id == audit_id)).mappings().first()


def for_target(conn: Connection, target: str) -> list[RowMapping]:
    return list(
        conn.execute(
            sa.select(audit).where(audit.c.target == target).order_by(audit.c.id)
        ).mappings()
    )


def search(
    conn: Connection,
    *,
    school: str | None = None,
    who: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[RowMapping], int | None]:
    """One page of the trail, newest first, and the ``before_id`` of the next page (``None``
    after the last). ``target`` matches exactly, or by prefix when it ends with ``:``
    (``failure:`` is every failure's trail)."""
    c = audit.c
    query = sa.select(audit)
    if school:
        query = query.where(c.school == school)
    if who:
        query = query.where(c.who == who)
    if action:
        query = query.where(c.action == action)
    if outcome:
        query = query.where(c.outcome == outcome)
    if target:
        query = query.where(
            c.target.startswith(target, autoescape=True)
            if target.endswith(":")
            else c.target == target
        )
    if before_id is not None:
        query = query.where(c.id < before_id)
    rows = list(conn.execute(query.order_by(c.id.desc()).limit(limit + 1)).mappings())
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], int(rows[limit - 1]["id"])
