"""Which object on one platform is which on another (order 1234 is lead 987)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import contact_index, links
from schoolsync.core.db.upsert import upsert_many

_LINK_KEY = (
    "school",
    "source_platform",
    "source_kind",
    "source_id",
    "target_platform",
    "target_kind",
)


def put_many(
    conn: Connection,
    school: str,
    pairs: Sequence[tuple[tuple[str, str, str], tuple[str, str, str]]],
) -> None:
    """``put`` for many (source, target) pairs in one batch."""
    now = utcnow()
    upsert_many(
        conn,
        links,
        [
            {
                "school": school,
                "source_platform": sp,
                "source_kind": sk,
                "source_id": sid,
                "target_platform": tp,
                "target_kind": tk,
                "target_id": tid,
                "created_at": now,
            }
            for (sp, sk, sid), (tp, tk, tid) in pairs
        ],
        conflict=_LINK_KEY,
        update=("target_id",),
    )


def targets(
    conn: Connection,
    school: str,
    source: tuple[str, str],
    source_ids: Sequence[str],
    target: tuple[str, str],
) -> dict[str, str]:
    """source id -> target id for those of ``source_ids`` that are linked."""
    if not source_ids:
        return {}
    rows = conn.execute(
        sa.select(links.c.source_id, links.c.target_id).where(
            links.c.school == school,
            links.c.source_platform == source[0],
            links.c.source_kind == source[1],
            links.c.source_id.in_(list(source_ids)),
            links.c.target_platform == target[0],
            links.c.target_kind == target[1],
        )
    ).all()
    return {str(s): str(t) for s, t in rows}


def sources(
    conn: Connection,
    school: str,
    source: tuple[str, str],
    target: tuple[str, str],
    target_id: str,
) -> list[str]:
    """The ``source`` ids linked to ``target_id`` (which orders are lead 987), oldest link first."""
    rows = conn.execute(
        sa.select(links.c.source_id)
        .where(
            links.c.school == school,
            links.c.target_platform == target[0],
            links.c.target_kind == target[1],
            links.c.target_id == target_id,
            links.c.source_platform == source[0],
            links.c.source_kind == source[1],
        )
        .order_by(links.c.id)
    ).scalars()
    return [str(s) for s in rows]


def index_contacts(
    conn: Connection,
    school: str,
    platform: str,
    account: str,
    entries: Iterable[tuple[str, str, str]],
) -> int:
    """Remember (kind, value, contact id) triples: ``("email", "a@b.ru", "77")``."""
    rows = {
        (kind, value): {
            "school": school,
            "platform": platform,
            "account": account,
            "kind": kind,
            "value": value,
            "contact_id": contact_id,
            "updated_at": utcnow(),
        }
        for kind, value, contact_id in entries
    }
    upsert_many(
        conn,
        contact_index,
        list(rows.values()),
        conflict=("school", "platform", "account", "kind", "value"),
        update=("contact_id", "updated_at"),
    )
    return len(rows)


def find_contacts(
    conn: Connection, school: str, platform: str, account: str, kind: str, values: Sequence[str]
) -> dict[str, str]:
    """value -> contact id for the known ones."""
    if not values:
        return {}
    rows = conn.execute(
        sa.select(contact_index.c.value, contact_index.c.contact_id).where(
            contact_index.c.school == school,
            contact_index.c.platform == platform,
            contact_index.c.account == account,
            contact_index.c.kind == kind,
            contact_index.c.value.in_(list(values)),
        )
    ).all()
    return {str(v): str(c) for v, c in rows}
