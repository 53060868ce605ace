"""Feedback about clients (W10): stored once per source item, linked to a CRM contact, routed.

``state``: ``unlinked`` (nobody found yet: the service asked in the group) -> ``linking`` (a reply
naming the client is being handled) -> ``routed`` (on the client's CRM card and posted to its
channels). ``key`` is the source's own identity (a Telegram
message, a survey row's content, an API request id): the same item read twice is one row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import utcnow
from schoolsync.core.db.tables import feedback
from schoolsync.core.db.upsert import insert_ignore

UNLINKED, LINKING, ROUTED = "unlinked", "linking", "routed"


def add(conn: Connection, school: str, values: dict[str, Any]) -> RowMapping:
    """Store a piece of feedback unless its ``key`` is known; returns the stored row."""
    insert_ignore(
        conn,
        feedback,
        {**values, "school": school, "state": UNLINKED, "created_at": utcnow()},
        conflict=("school", "key"),
    )
    row = get_by_key(conn, school, str(values["key"]))
    assert row is not None
    return row


def get(conn: Connection, feedback_id: int) -> RowMapping | None:
    return conn.execute(sa.select(feedback).where(feedback.c.id == feedback_id)).mappings().first()


def get_by_key(conn: Connection, school: str, key: str) -> RowMapping | None:
    return (
        conn.execute(sa.select(feedback).where(feedback.c.school == school, feedback.c.key == key))
        .mappings()
        .first()
    )


def link(conn: Connection, feedback_id: int, contact_id: str, subject: str | None) -> None:
    values: dict[str, Any] = {"contact_id": contact_id}
    if subject:
        values["subject"] = subject
    conn.execute(sa.update(feedback).where(feedback.c.id == feedback_id).values(**values))


def claim_for_linking(conn: Connection, feedback_id: int) -> bool:
    """Take unlinked feedback for linking; ``False`` if another reply took it first."""
    result = conn.execute(
        sa.update(feedback)
        .where(feedback.c.id == feedback_id, feedback.c.state == UNLINKED)
        .values(state=LINKING)
    )
    return bool(result.rowcount)


def release_linking(conn: Connection, feedback_id: int) -> None:
    conn.execute(
        sa.update(feedback)
        .where(feedback.c.id == feedback_id, feedback.c.state == LINKING)
        .values(state=UNLINKED)
    )


def known_keys(conn: Connection, school: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` are stored already."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            str(k)
            for k in conn.execute(
                sa.select(feedback.c.key).where(
                    feedback.c.school == school, feedback.c.key.in_(chunk)
                )
            ).scalars()
        )
    return found


def mark_routed(conn: Connection, feedback_id: int) -> None:
    conn.execute(
        sa.update(feedback)
        .where(feedback.c.id == feedback_id)
        .values(state=ROUTED, routed_at=utcnow())
    )


def first_for_contact(conn: Connection, school: str, contact_id: str) -> RowMapping | None:
    """The earliest feedback about a client (for the second feedback call)."""
    return (
        conn.execute(
            sa.select(feedback)
            .where(feedback.c.school == school, feedback.c.contact_id == contact_id)
            .order_by(feedback.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )


def listing(conn: Connection, school: str) -> list[RowMapping]:
    return list(
        conn.execute(
            sa.select(feedback).where(feedback.c.school == school).order_by(feedback.c.id)
        ).mappings()
    )
