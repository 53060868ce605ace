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
