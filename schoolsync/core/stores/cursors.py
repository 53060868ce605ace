"""Named positions of periodic syncs ("up to when have we looked"), per school."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import cursors
from schoolsync.core.db.upsert import upsert


def get_text(conn: Connection, school: str, name: str) -> str | None:
    value = conn.execute(
        sa.select(cursors.c.value).where(cursors.c.school == school, cursors.c.name == name)
    ).scalar()
    return None if value is None else str(value)


def put_text(conn: Connection, school: str, name: str, value: str) -> None:
    upsert(
        conn,
        cursors,
        {"school": school, "name": name, "value": value, "updated_at": utcnow()},
        conflict=("school", "name"),
        update=("value", "updated_at"),
    )


def get(conn: Connection, school: str, name: str) -> datetime | None:
    """A time cursor (stored as ISO 8601, UTC)."""
    text = get_text(conn, school, name)
    return None if text is None else as_utc(datetime.fromisoformat(text))


def put(conn: Connection, school: str, name: str, value: datetime) -> None:
    put_text(conn, school, name, as_utc(value).isoformat())
