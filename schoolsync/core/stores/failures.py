"""Final failures: one row per job that could not be done, with its attempt history."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import failures

OPEN, REPLAYING, RESOLVED, IGNORED = "open", "replaying", "resolved", "ignored"


def record(
    conn: Connection, job: RowMapping, *, error_class: str, error: str, now: datetime
) -> None:
    """Create the job's failure row, or reopen and update it after a failed replay."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(failures).values(
        school=job["school"],
        job_id=job["id"],
        actor=job["actor"],
        args=job["args"],
        error_class=error_class,
        error_message=error,
        attempts=job["starts"],
        status=OPEN,
        first_failed_at=now,
        last_failed_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id"],
        set_={
            "error_class": stmt.excluded.error_class,
            "error_message": stmt.excluded.error_message,
            "attempts": stmt.excluded.attempts,
            "status": OPEN,
            "last_failed_at": stmt.excluded.last_failed_at,
            "resolved_at": None,
        },
    )
    conn.execute(stmt)


def resolve_for_job(conn: Connection, job_id: int, *, now: datetime | None = None) -> None:
    conn.execute(
        sa.update(failures)
        .where(failures.c.job_id == job_id, failures.c.status.in_((OPEN, REPLAYING)))
        .values(status=RESOLVED, resolved_at=now or utcnow())
    )


def get(conn: Connection, failure_id: int) -> RowMapping | None:
    return conn.execute(sa.select(failures).where(failures.c.id == failure_id)).mappings().first()


def for_job(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(sa.select(failures).where(failures.c.job_id == job_id)).mappings().first()


def listing(
    conn: Connection, *, status: str | None = OPEN, school: str | None = None, limit: int = 50
) -> list[RowMapping]:
    query = (
        sa.select(failures)
        .order_by(failures.c.last_failed_at.desc(), failures.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(failures.c.status == status)
    if school:
        query = query.where(failures.c.school == school)
    return list(conn.execute(query).mappings())


def set_status(conn: Connection, failure_id: int, status: str) -> None:
    conn.execute(sa.update(failures).where(failures.c.id == failure_id).values(status=status))


def count_open_by_class(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(failures.c.error_class, sa.func.count())
        .where(failures.c.status == OPEN)
        .group_by(failures.c.error_class)
    )
    return {r[0]: int(r[1]) for r in rows}
