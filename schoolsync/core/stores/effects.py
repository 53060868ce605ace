"""The effects ledger: every write to a platform under a deterministic key, at most once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import effects
from schoolsync.core.db.upsert import insert_ignore


def exists(conn: Connection, key: str) -> bool:
    return conn.execute(sa.select(effects.c.id).where(effects.c.key == key)).first() is not None


def record(
    conn: Connection, *, school: str, key: str, job_id: int | None, detail: dict[str, Any]
) -> bool:
    """Record that the effect ``key`` happened; ``False`` if it was already recorded."""
    values = {
        "school": school,
        "key": key,
        "job_id": job_id,
        "detail": detail,
        "created_at": utcnow(),
    }
    return insert_ignore(conn, effects, values, conflict=("key",)) is not None
