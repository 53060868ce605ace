"""The reconciliation's findings (W7): one row per subject, kept across runs.

A run reports what it finds now (``record_run``); a subject it no longer finds that was waiting
for a person is ``gone``; one a person settled (``resolved``, ``dismissed``) or the service acted
on (``acted``) stays so: the history of what was done and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import reconcile_items as items

OPEN, ACTED, RESOLVED, DISMISSED, GONE = "open", "acted", "resolved", "dismissed", "gone"
SETTLED = (RESOLVED, DISMISSED)


@dataclass(frozen=True)
class Finding:
    subject: str
    kind: str
    rule: str
    score: float
    explanation: str
    payment_ids: tuple[int, ...]
    order_ids: tuple[str, ...]
    candidates: tuple[str, ...]
    status: str  # open | acted


def record_run(conn: Connection, school: str, findings: Sequence[Finding]) -> dict[str, int]:
    """Store this run's findings; returns counts of new, updated and gone rows."""
    now = utcnow()
    existing = {
        str(row["subject"]): row
        for row in conn.execute(sa.select(items).where(items.c.school == school)).mappings()
    }
    counts = {"new": 0, "updated": 0, "gone": 0}
    seen: set[str] = set()
    for finding in findings:
        seen.add(finding.subject)
        values: dict[str, Any] = {
            "kind": finding.kind,
            "rule": finding.rule,
            "score": round(finding.score, 4),
            "explanation": finding.explanation,
            "payment_ids": list(finding.payment_ids),
            "order_ids": list(finding.order_ids),
            "candidates": list(finding.candidates),
            "last_seen_at": now,
        }
        row = existing.get(finding.subject)
        if row is None:
            conn.execute(
                sa.insert(items).values(
                    school=school,
                    subject=finding.subject,
                    status=finding.status,
                    first_seen_at=now,
                    **values,
                )
            )
            counts["new"] += 1
            continue
        if row["status"] in SETTLED:
            continue  # a person decided; the run does not reopen it
        if row["status"] == GONE or row["kind"] != finding.kind:
            values["status"] = finding.status
        elif row["status"] == OPEN and finding.status == ACTED:
            values["status"] = ACTED
        conn.execute(sa.update(items).where(items.c.id == row["id"]).values(**values))
        counts["updated"] += 1
    stale = [
        row["id"]
        for subject, row in existing.items()
        if subject not in seen and row["status"] == OPEN  # what was acted on stays so
    ]
    if stale:
        conn.execute(
            sa.update(items).where(items.c.id.in_(stale)).values(status=GONE, last_seen_at=now)
        )
    counts["gone"] = len(stale)
    return counts


def listing(conn: Connection, school: str, *, status: str | None = OPEN) -> list[RowMapping]:
    stmt = sa.select(items).where(items.c.school == school)
    if status is not None:
        stmt = stmt.where(items.c.status == status)
    return list(conn.execute(stmt.order_by(items.c.first_seen_at, items.c.id)).mappings())


def get(conn: Connection, item_id: int) -> RowMapping | None:
    return conn.execute(sa.select(items).where(items.c.id == item_id)).mappings().first()


def settle(
    conn: Connection, item_id: int, *, status: str, who: str, choice: dict[str, Any]
) -> bool:
    """Mark an open item settled by a person; ``False`` if it is not open any more."""
    result = conn.execute(
        sa.update(items)
        .where(items.c.id == item_id, items.c.status == OPEN)
        .values(
            status=status,
            resolution={"who": who, "at": utcnow().isoformat(), **choice},
        )
    )
    return bool(result.rowcount)


def counts_by_kind(conn: Connection, school: str, since: datetime) -> dict[tuple[str, str], int]:
    """(kind, status) -> how many rows were first found since ``since`` (each once: a double
    removed last week is not counted again every day)."""
    rows = conn.execute(
        sa.select(items.c.kind, items.c.status, sa.func.count())
        .where(items.c.school == school, items.c.first_seen_at >= since)
        .group_by(items.c.kind, items.c.status)
    ).all()
    return {(str(kind), str(status)): int(n) for kind, status, n in rows}


def open_by_school(conn: Connection) -> dict[str, int]:
    """Open items (waiting for a person) per school (index on school, status)."""
    rows = conn.execute(
        sa.select(items.c.school, sa.func.count())
        .where(items.c.status == OPEN)
        .group_by(items.c.school)
    ).all()
    return {str(school): int(n) for school, n in rows}
