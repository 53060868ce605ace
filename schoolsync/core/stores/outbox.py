"""The notifications outbox: every message to a channel or a client, delivered once.

A message is a row before anything is sent: a deterministic ``key`` (the same notice asked for
twice is one row), its channel or chat, its text already split into the parts Telegram takes,
and a ``not_before`` (quiet hours). The sender records the message id of each part as it is
posted; ``inflight_at`` says a part was handed over and no answer came (it may be in the chat).

``state``: ``pending`` -> ``sent``, or ``failed`` (Telegram refused this very message), or
``cancelled``. A channel that cannot be posted to at all (bot removed, chat gone) keeps its
messages ``pending``; the lane waits for a person (see ``sync_jobs.services.outbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import outbox
from schoolsync.core.db.upsert import insert_ignore

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
INTERNAL, CLIENT = "internal", "client"


@dataclass(frozen=True)
class NewMessage:
    key: str
    kind: str
    lane: str
    text: str
    parts: list[str]
    not_before: datetime
    audience: str = INTERNAL
    channel: str | None = None
    chat_id: str | None = None


@dataclass(frozen=True)
class OutMessage:
    id: int
    school: str
    key: str
    kind: str
    lane: str
    channel: str | None
    chat_id: str | None
    audience: str
    parts: list[str]
    sent_ids: list[int]
    inflight_at: datetime | None
    not_before: datetime

    @property
    def next_part(self) -> int:
        return len(self.sent_ids)


def _out(row: RowMapping) -> OutMessage:
    inflight = row["inflight_at"]
    return OutMessage(
        id=int(row["id"]),
        school=str(row["school"]),
        key=str(row["key"]),
        kind=str(row["kind"]),
        lane=str(row["lane"]),
        channel=row["channel"],
        chat_id=row["chat_id"],
        audience=str(row["audience"]),
        parts=list(row["parts"]),
        sent_ids=[int(i) for i in row["sent_ids"]],
        inflight_at=as_utc(inflight) if inflight is not None else None,
        not_before=as_utc(row["not_before"]),
    )


def add(conn: Connection, school: str, message: NewMessage) -> int | None:
    """Store a message; ``None`` when one with the same key exists (nothing changes then)."""
    if not message.parts:
        raise ValueError(f"outbox message {message.key!r} has no text")
    return insert_ignore(
        conn,
        outbox,
        {
            "school": school,
            "key": message.key,
            "kind": message.kind,
            "channel": message.channel,
            "chat_id": message.chat_id,
            "audience": message.audience,
            "lane": message.lane,
            "text": "\n".join(message.parts),
            "parts": message.parts,
            "sent_ids": [],
            "state": PENDING,
            "not_before": message.not_before,
            "created_at": utcnow(),
        },
        conflict=("school", "key"),
    )


def get(conn: Connection, school: str, key: str) -> RowMapping | None:
    return (
        conn.execute(sa.select(outbox).where(outbox.c.school == school, outbox.c.key == key))
        .mappings()
        .first()
    )


def next_due(conn: Connection, school: str, lane: str, now: datetime) -> OutMessage | None:
    """The oldest pending message of a lane, if it is due (a later one never overtakes it)."""
    row = (
        conn.execute(
            sa.select(outbox)
            .where(outbox.c.school == school, outbox.c.lane == lane, outbox.c.state == PENDING)
            .order_by(outbox.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None or as_utc(row["not_before"]) > now:
        return None
    return _out(row)


def due_lanes(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    """``(school, lane)`` of every lane with a pending message due by ``now``."""
    rows = conn.execute(
        sa.select(outbox.c.school, outbox.c.lane)
        .where(outbox.c.state == PENDING, outbox.c.not_before <= now)
        .group_by(outbox.c.school, outbox.c.lane)
    ).all()
    return [(str(school), str(lane)) for school, lane in rows]


def mark_inflight(conn: Connection, message_id: int, *, at: datetime) -> bool:
    """About to hand the next part over; ``False`` if the message is no longer pending."""
    result = conn.execute(
        sa.update(outbox)
        .where(
            outbox.c.id == message_id,
            outbox.c.state == PENDING,
        )
        .values(inflight_at=at, attempts=outbox.c.attempts + 1)
    )
    return bool(result.rowcount)


def mark_part_sent(conn: Connection, message: OutMessage, telegram_id: int) -> list[int]:
    """Part ``message.next_part`` is in the chat as ``telegram_id``; the row is ``sent`` when it
    was the last part. Returns the ids recorded so far."""
    ids = [*message.sent_ids, telegram_id]
    values: dict[str, Any] = {"sent_ids": ids, "inflight_at": None, "error": None}
    if len(ids) >= len(message.parts):
        values.update(state=SENT, sent_at=utcnow())
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == message.id, outbox.c.state == PENDING)
        .values(**values)
    )
    return ids


def clear_inflight(conn: Connection, message_id: int) -> None:
    """The part handed over is known not to be in the chat."""
    conn.execute(sa.update(outbox).where(outbox.c.id == message_id).values(inflight_at=None))


def note_error(conn: Connection, message_id: int, error: str) -> None:
    conn.execute(sa.update(outbox).where(outbox.c.id == message_id).values(error=error))


def mark_failed(conn: Connection, message_id: int, error: str) -> None:
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == message_id, outbox.c.state == PENDING)
        .values(state=FAILED, error=error, inflight_at=None)
    )


def cancel_lane(conn: Connection, school: str, lane: str, reason: str) -> int:
    """Cancel every pending message of a lane; returns how many."""
    result = conn.execute(
        sa.update(outbox)
        .where(outbox.c.school == school, outbox.c.lane == lane, outbox.c.state == PENDING)
        .values(state=CANCELLED, error=reason, inflight_at=None)
    )
    return int(result.rowcount or 0)


def requeue(conn: Connection, school: str, key: str) -> RowMapping | None:
    """A failed message, pending again (a replay after a fix); its row, if it exists."""
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.school == school, outbox.c.key == key, outbox.c.state == FAILED)
        .values(state=PENDING, error=None)
    )
    return get(conn, school, key)


def sent_as(
    conn: Connection, school: str, lanes: Sequence[str], kinds: Sequence[str], message_id: int
) -> tuple[str, str] | None:
    """``(kind, key)`` of the recent message of ``kinds`` that became Telegram message
    ``message_id`` in one of ``lanes``."""
    rows = conn.execute(
        sa.select(outbox.c.kind, outbox.c.key, outbox.c.sent_ids)
        .where(
            outbox.c.school == school,
            outbox.c.lane.in_(list(lanes)),
            outbox.c.kind.in_(list(kinds)),
        )
        .order_by(outbox.c.id.desc())
        .limit(500)
    ).all()
    for kind, key, sent_ids in rows:
        if message_id in [int(i) for i in sent_ids or []]:
            return str(kind), str(key)
    return None


def inflight_in(conn: Connection, school: str, lanes: Sequence[str]) -> bool:
    """Whether a part handed over in one of ``lanes`` still waits for its answer."""
    found = conn.execute(
        sa.select(outbox.c.id).where(
            outbox.c.school == school,
            outbox.c.lane.in_(list(lanes)),
            outbox.c.inflight_at.is_not(None),
        )
    ).first()
    return found is not None


def listing(
    conn: Connection, school: str, *, lane: str | None = None, states: Sequence[str] = ()
) -> list[RowMapping]:
    stmt = sa.select(outbox).where(outbox.c.school == school).order_by(outbox.c.id)
    if lane is not None:
        stmt = stmt.where(outbox.c.lane == lane)
    if states:
        stmt = stmt.where(outbox.c.state.in_(list(states)))
    return list(conn.execute(stmt).mappings())
