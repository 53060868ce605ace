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
