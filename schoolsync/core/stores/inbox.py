"""The inbox: every inbound webhook, stored before it is acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import inbox
from schoolsync.core.db.upsert import insert_many_ignore

RECEIVED, PROCESSED, REJECTED = "received", "processed", "rejected"


@dataclass(frozen=True)
class InboxRecord:
    """One inbound request as it arrived (raw bytes kept: signatures are over bytes)."""

    school: str
    source: str
    dedup_key: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    remote_addr: str | None = None
    status: str = RECEIVED
    reject_reason: str | None = None


def insert(conn: Connection, record: InboxRecord, *, now: datetime | None = None) -> int | None:
    """Store ``record``; ``None`` if the same (school, source, dedup key) is already stored."""
    return insert_many(conn, [record], now=now)[0]


def insert_many(
    conn: Connection, records: list[InboxRecord], *, now: datetime | None = None
) -> list[int | None]:
    """Store ``records`` in one statement; ``None`` for each one already stored."""
    now = now or utcnow()
    return insert_many_ignore(
        conn, inbox, [_values(r, now) for r in records], conflict=("school", "source", "dedup_key")
    )


def _values(record: InboxRecord, now: datetime) -> dict[str, Any]:
    return {
        "school": record.school,
        "source": record.source,
        "dedup_key": record.dedup_key,
        "status": record.status,
        "reject_reason": record.reject_reason,
        "headers": record.headers,
        "query": record.query,
        "body": record.body,
        "remote_addr": record.remote_addr,
        "received_at": now,
    }


def get(conn: Connection, inbox_id: int) -> RowMapping | None:
    return conn.execute(sa.select(inbox).where(inbox.c.id == inbox_id)).mappings().first()


def mark_processed(conn: Connection, inbox_id: int) -> None:
    conn.execute(
        sa.update(inbox)
        .where(inbox.c.id == inbox_id)
        .values(status=PROCESSED, processed_at=utcnow())
    )


def count_by_status(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        sa.select(inbox.c.source, inbox.c.status, sa.func.count()).group_by(
            inbox.c.source, inbox.c.status
        )
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def mark_received(conn: Connection, inbox_id: int) -> None:
    """Make a processed event due for processing again (a replay)."""
    conn.execute(
        sa.update(inbox)
        .where(inbox.c.id == inbox_id, inbox.c.status != REJECTED)
        .values(status=RECEIVED, processed_at=None)
    )


def get_many(conn: Connection, inbox_ids: Sequence[int]) -> list[RowMapping]:
    """The rows with these ids, oldest first."""
    if not inbox_ids:
        return []
    stmt = sa.select(inbox).where(inbox.c.id.in_(list(inbox_ids))).order_by(inbox.c.id)
    return list(conn.execute(stmt).mappings())


def listing(conn: Connection, *, limit: int = 1000) -> list[RowMapping]:
    """The newest events first (for the CLI, the admin pages and tests)."""
    return list(conn.execute(sa.select(inbox).order_by(inbox.c.id.desc()).limit(limit)).mappings())


def search(
    conn: Connection,
    *,
    school: str | None = None,
    source: str | None = None,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[RowMapping], int | None]:
    """One page of events, newest first, without their bodies, and the ``before_id`` of the
    next page (``None`` after the last). ``status`` is received (not processed yet),
    processed or rejected (failed verification or parsing: never processed)."""
    c = inbox.c
    query = sa.select(*(col for col in inbox.c if col.name != "body"))
    if school:
        query = query.where(c.school == school)
    if source:
        query = query.where(c.source == source)
    if status:
        query = query.where(c.status == status)
    if before_id is not None:
        query = query.where(c.id < before_id)
    rows = list(conn.execute(query.order_by(c.id.desc()).limit(limit + 1)).mappings())
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], int(rows[limit - 1]["id"])


def count_since(conn: Connection, since: datetime, *, school: str | None = None) -> dict[str, int]:
    """Events received since ``since``, by status."""
    query = (
        sa.select(inbox.c.status, sa.func.count())
        .where(inbox.c.received_at >= since)
        .group_by(inbox.c.status)
    )
    if school:
        query = query.where(inbox.c.school == school)
    return {str(s): int(n) for s, n in conn.execute(query)}


# what a rejection's reason starts with ("<prefix>: <detail>", written by the webhook endpoint)
# -> its category in metrics; anything else is "other"
REJECT_CATEGORIES = {
    "signature": "signature",  # forged or missing signature / secret
    "source": "ip",  # sent from an address the platform does not send from
    "ip": "ip",
    "malformed": "malformed",  # not parseable, or names an unknown school
    "too_large": "too_large",
    "content_type": "content_type",
    "replay": "replay",
}


def rejected_by_category(conn: Connection) -> dict[tuple[str, str], int]:
    """Rejected rows by (source, category of the reason): see ``REJECT_CATEGORIES``. One
    query over the rejected rows (status index); the reasons' details are never read out."""
    reason = inbox.c.reject_reason

    def inline(value: str | int) -> sa.ColumnElement[Any]:
        # constants rendered into the SQL: PostgreSQL groups by an expression only when the
        # one in GROUP BY is the same text as the one selected (bound parameters differ)
        return sa.literal(value, literal_execute=True)

    category = sa.case(
        *(
            (
                sa.or_(
                    reason == inline(prefix),
                    sa.func.substr(reason, inline(1), inline(len(prefix) + 1))
                    == inline(prefix + ":"),
                ),
                inline(name),
            )
            for prefix, name in REJECT_CATEGORIES.items()
        ),
        else_=inline("other"),
    )
    rows = conn.execute(
        sa.select(inbox.c.source, category, sa.func.count())
        .where(inbox.c.status == REJECTED)
        .group_by(inbox.c.source, category)
    )
    counts: dict[tuple[str, str], int] = {}
    for source, name, count in rows:
        counts[(str(source), str(name))] = counts.get((str(source), str(name)), 0) + int(count)
    return counts


def oldest_received_at(conn: Connection) -> datetime | None:
    """When the oldest row not yet processed (nor rejected) arrived (status index)."""
    found = conn.execute(
        sa.select(sa.func.min(inbox.c.received_at)).where(inbox.c.status == RECEIVED)
    ).scalar()
    return None if found is None else as_utc(found)
