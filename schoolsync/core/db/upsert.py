"""Dialect-specific ``INSERT ... ON CONFLICT``: there is no portable construct."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignore(
    conn: Connection,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
) -> int | None:
    """Insert a row unless one with the same ``conflict`` columns exists.

    Returns the new row's ``id``, or ``None`` when the row was already there.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c.id)
    )
    row = conn.execute(stmt).first()
    return None if row is None else int(row[0])


def insert_many_ignore(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
) -> list[int | None]:
    """``insert_ignore`` for many rows in one statement (one round trip, one plan).

    Returns, per input row, the new id or ``None`` where the row existed already (including an
    earlier row of the same batch with the same ``conflict`` values).
    """
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values([dict(r) for r in rows])
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c.id, *(table.c[name] for name in conflict))
    )
    created = {tuple(r[1:]): int(r[0]) for r in conn.execute(stmt)}
    out: list[int | None] = []
    for row in rows:
        key = tuple(row[name] for name in conflict)
        out.append(created.pop(key, None))
    return out
