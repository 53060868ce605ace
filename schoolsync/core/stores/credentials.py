"""Credentials a platform hands us at run time (OAuth token pairs), with compare-and-set writes.

A refresh token is single-use: two workers that refresh at once must not both store their pair.
Every write bumps ``version``; a writer that read version N writes only if the row is still at N
(``expect_version=N``) and learns otherwise from the return value. The caller owns the
transaction. The data holds secrets: never log it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import credentials


@dataclass(frozen=True)
class Credential:
    """The stored data and the version to pass back as ``expect_version``."""

    data: dict[str, Any] = field(repr=False)  # secrets: kept out of reprs and tracebacks
    version: int
    updated_at: datetime


def get(conn: Connection, school: str, platform: str, account: str) -> Credential | None:
    row = (
        conn.execute(
            sa.select(credentials.c.data, credentials.c.version, credentials.c.updated_at).where(
                credentials.c.school == school,
                credentials.c.platform == platform,
                credentials.c.account == account,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Credential(
        data=dict(row["data"]), version=int(row["version"]), updated_at=as_utc(row["updated_at"])
    )


def put(
    conn: Connection,
    school: str,
    platform: str,
    account: str,
    data: dict[str, Any],
    *,
    expect_version: int | None,
) -> bool:
    """Store ``data``; ``False`` (nothing written) when the row is no longer at ``expect_version``.

    ``expect_version=None`` writes unconditionally (insert, or replace whatever is there): for a
    fresh authorization that supersedes any stored pair. After a successful write the version
    is the previous one plus one (1 for a new row).
    """
    now = utcnow()
    if expect_version is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(credentials).values(
            school=school, platform=platform, account=account, data=data, version=1, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["school", "platform", "account"],
            set_={
                "data": stmt.excluded.data,
                "version": credentials.c.version + 1,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        conn.execute(stmt)
        return True
    result = conn.execute(
        sa.update(credentials)
        .where(
            credentials.c.school == school,
            credentials.c.platform == platform,
            credentials.c.account == account,
            credentials.c.version == expect_version,
        )
        .values(data=data, version=expect_version + 1, updated_at=now)
    )
    return result.rowcount == 1
