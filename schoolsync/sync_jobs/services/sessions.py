"""W13: session reminders, a sweep every few minutes (``mappings/sessions.py`` decides when).

Each sweep reads the configured source (:mod:`session_sources`) and brings the ``sessions``
table up to date:

- a new session is stored ``scheduled`` (``cancelled`` if the source says so);
- a session whose start changed (rescheduled) keeps its row with the new start; reminders of
  the old start that have not gone yet are withdrawn (outbox rows cancelled; e-mail jobs find
  the start changed and send nothing);
- a session the source cancels, or no longer lists before its start, is ``cancelled`` and its
  pending reminders are withdrawn.

Then every scheduled session gets the reminders whose time has come, each under a key naming
the session, its start, the reminder (``24h``/``1h``) and the recipient, so a sweep that runs
twice makes each once and a new start makes new ones:

- to the psychologist: a Telegram message to their chat (``rules.sessions.psychologists``);
- to the client: a Telegram message when we know their chat (a numeric chat id as their
  contact, or a ``("telegram", "chat")`` link of their amoCRM contact), else an e-mail (a job
  of :mod:`session_emails`, asked for by the first sweep at or after its time: up to one
  sweep interval late), else nothing (noted once in the log).

Telegram reminders are stored in the notifications outbox up to :data:`LOOKAHEAD` before they
are due, with ``not_before`` at the exact minute (the notifications sweep sends them); not
earlier, because a lane's messages go in order and a far-away reminder would hold back every
other message to that chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from schoolsync.connectors.telegram.text import MESSAGE_LIMIT, split_message
from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import outbox as outbox_table
from schoolsync.core.db.tables import sessions as sessions_table
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects, jobs, links
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.mappings.notifications import notification_rules, render
from schoolsync.mappings.sessions import (
    REMINDERS,
    ClientContact,
    SessionInfo,
    SessionRules,
    day_word,
    reminder_due,
    session_rules,
    shown_time,
    still_useful,
    time_tag,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import schedule_delivery
from schoolsync.sync_jobs.services.session_sources import read_sessions

log = get_logger(__name__)

SESSIONS_ACTOR = "sessions_sweep"
EMAIL_ACTOR = "send_session_email"
CLIENT_KIND = "session_reminder_client"
PSYCHOLOGIST_KIND = "session_reminder_psychologist"
SCHEDULED, CANCELLED = "scheduled", "cancelled"
LOOKAHEAD = timedelta(minutes=10)
_CANCELLED, _MOVED, _GONE = "session cancelled", "session rescheduled", "session no longer listed"
CONTACT = ("amocrm", "contact")
CHAT = ("telegram", "chat")


def reminder_key(session: str, start: datetime, kind: str, recipient: str) -> str:
    """The outbox key of one reminder (also the stem of the e-mail's effect key)."""
    return f"session:{session}:{time_tag(start)}:{kind}:{recipient}"


def email_effect_key(school: str, session: str, start: datetime, kind: str) -> str:
    return f"smtp:{school}:{reminder_key(session, start, kind, 'client')}"


def sessions_sweep(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> int:
    """Bring the sessions up to date and make the reminders due now; returns how many
    reminders were made (messages stored and e-mails asked for)."""
    school = ctx.school(school_id)
    rules = session_rules(school)
    if not rules.enabled:
        return 0
    now = now or utcnow()
    with ctx.db.read() as conn:
        known = _known_clients(conn, school_id)
    found = read_sessions(ctx, school, rules, known)
    with ctx.db.write() as conn:
        withdrawn = _store(conn, school_id, found, now)
    if withdrawn:
        log.info("session reminders withdrawn", school=school_id, count=withdrawn)
    return _remind(ctx, school, rules, now)


# -- the table ----------------------------------------------------------------------------------


def _known_clients(conn: Any, school: str) -> dict[str, tuple[str | None, ClientContact]]:
    rows = conn.execute(
        sa.select(sessions_table.c.key, sessions_table.c.client, sessions_table.c.contact).where(
            sessions_table.c.school == school
        )
    ).all()
    return {str(k): (c, ClientContact.from_json(data)) for k, c, data in rows if data}


def _store(conn: Any, school: str, found: Sequence[SessionInfo], now: datetime) -> int:
    """Upsert what the source says; returns how many pending reminders were withdrawn."""
    rows = {
        str(r["key"]): r
        for r in conn.execute(
            sa.select(sessions_table).where(sessions_table.c.school == school)
        ).mappings()
    }
    withdrawn = 0
    listed: set[str] = set()
    for info in found:
        if info.key in listed:
            log.warning("a session is listed twice; the first is kept", school=school)
            continue
        listed.add(info.key)
        status = CANCELLED if info.cancelled else SCHEDULED
        values = {
            "start_at": info.start,
            "client": info.client,
            "contact": info.contact.to_json(),
            "psychologist": info.psychologist,
            "link": info.link,
            "status": status,
            "updated_at": now,
        }
        row = rows.get(info.key)
        if row is None:
            conn.execute(
                sa.insert(sessions_table).values(
                    school=school, key=info.key, created_at=now, **values
                )
            )
            continue
        moved = as_utc(row["start_at"]) != info.start
        if status == CANCELLED:
            withdrawn += _withdraw(conn, school, info.key, keep=None, reason=_CANCELLED)
        elif moved:
            withdrawn += _withdraw(conn, school, info.key, keep=info.start, reason=_MOVED)
        if status == SCHEDULED and (moved or row["status"] != SCHEDULED):
            _revive(conn, school, info.key, info.start, now)
        conn.execute(
            sa.update(sessions_table).where(sessions_table.c.id == row["id"]).values(**values)
        )
    for key, row in rows.items():
        # gone from the source before it started: cancelled (after its start: it was held)
        if key in listed or row["status"] != SCHEDULED or as_utc(row["start_at"]) <= now:
            continue
        conn.execute(
            sa.update(sessions_table)
            .where(sessions_table.c.id == row["id"])
            .values(status=CANCELLED, updated_at=now)
        )
        withdrawn += _withdraw(conn, school, key, keep=None, reason=_GONE)
    return withdrawn


def _withdraw(conn: Any, school: str, session: str, *, keep: datetime | None, reason: str) -> int:
    """Cancel the session's reminders not sent yet (all, or all but those of ``keep``)."""
    prefix = f"session:{session}:"
    stmt = sa.update(outbox_table).where(
        outbox_table.c.school == school,
        outbox_table.c.key.startswith(prefix, autoescape=True),
        outbox_table.c.state == outbox_store.PENDING,
        outbox_table.c.inflight_at.is_(None),  # a part on its way is not taken back
    )
    if keep is not None:
        stmt = stmt.where(
            sa.not_(outbox_table.c.key.startswith(f"{prefix}{time_tag(keep)}:", autoescape=True))
        )
    result = conn.execute(stmt.values(state=outbox_store.CANCELLED, error=reason))
    return int(result.rowcount or 0)


def _revive(conn: Any, school: str, session: str, start: datetime, now: datetime) -> None:
    """A session back at a start it had before (moved back, or no longer cancelled): the
    reminders of that start we withdrew, and that still make sense, are pending again (their
    keys are the same, so they could not be stored anew)."""
    for kind in REMINDERS:
        if not still_useful(start, kind, now):
            continue
        prefix = reminder_key(session, start, kind, "")
        conn.execute(
            sa.update(outbox_table)
            .where(
                outbox_table.c.school == school,
                outbox_table.c.key.startswith(prefix, autoescape=True),
                outbox_table.c.state == outbox_store.CANCELLED,
                outbox_table.c.error.in_([_CANCELLED, _MOVED, _GONE]),
            )
            .values(state=outbox_store.PENDING, error=None)
        )


# -- reminders ----------------------------------------------------------------------------------


def _remind(ctx: JobContext, school: School, rules: SessionRules, now: datetime) -> int:
    quiet = notification_rules(school).quiet_hours
    tz = notification_rules(school).client_tz(school)
    horizon = now + max(REMINDERS.values()) + LOOKAHEAD  # the 24 h one, never earlier
    made = 0
    with ctx.db.write() as conn:
        rows = list(
            conn.execute(
                sa.select(sessions_table).where(
                    sessions_table.c.school == school.id,
                    sessions_table.c.status == SCHEDULED,
                    sessions_table.c.start_at > now,
                    sessions_table.c.start_at <= horizon,
                )
            ).mappings()
        )
        lanes: set[str] = set()
        asked: list[jobs.JobRef] = []
        for row in rows:
            start = as_utc(row["start_at"])
            for kind in REMINDERS:
                due = reminder_due(start, kind, quiet, tz)
                if due > now + LOOKAHEAD or not still_useful(start, kind, now):
                    continue
                made += _one_reminder(conn, school, rules, row, kind, due, now, lanes, asked)
        refs = schedule_delivery(conn, school.id, lanes)
    ctx.queue.send([*refs, *asked])
    return made


def _one_reminder(
    conn: Any,
    school: School,
    rules: SessionRules,
    row: RowMapping,
    kind: str,
    due: datetime,
    now: datetime,
    lanes: set[str],
    asked: list[jobs.JobRef],
) -> int:
    start = as_utc(row["start_at"])
    session = str(row["key"])
    values = {
        "hours": int(REMINDERS[kind].total_seconds() // 3600),
        "day": day_word(max(due, now), start, school.tz),
        "when": shown_time(start, school.tz),
        "link": row["link"],
    }
    made = 0
    chat = rules.psychologist_chat(row["psychologist"])
    if chat is None:
        _note_once(conn, school.id, f"sessions:{school.id}:no-psychologist-chat:{session}", session)
    else:
        html = render(PSYCHOLOGIST_KIND, client=row["client"], **values)
        key = reminder_key(session, start, kind, "psychologist")
        made += _message(conn, school.id, key, PSYCHOLOGIST_KIND, chat, html, due, now, lanes)
    contact = ClientContact.from_json(row["contact"])
    chat = _client_chat(conn, school.id, contact)
    if chat is not None:
        html = render(
            CLIENT_KIND, name=row["client"], psychologist=_shown_name(row["psychologist"]), **values
        )
        key = reminder_key(session, start, kind, "client")
        made += _message(
            conn, school.id, key, CLIENT_KIND, chat, html, due, now, lanes, client=True
        )
    elif contact.email:
        if due <= now:  # a job has no not_before: asked for once it is due
            ref = jobs.add(
                conn,
                school=school.id,
                actor=EMAIL_ACTOR,
                args={
                    "school": school.id,
                    "session": session,
                    "start": start.isoformat(),
                    "kind": kind,
                },
                dedup_key=email_effect_key(school.id, session, start, kind),
            )
            if ref is not None:
                asked.append(ref)
                made += 1
    else:
        _note_once(conn, school.id, f"sessions:{school.id}:no-client-contact:{session}", session)
    return made


def _message(
    conn: Any,
    school: str,
    key: str,
    kind: str,
    chat: str,
    html: str,
    due: datetime,
    now: datetime,
    lanes: set[str],
    *,
    client: bool = False,
) -> int:
    lane = f"chat:{chat}"
    parts = [p for p in split_message(html, MESSAGE_LIMIT) if p.strip()]
    added = outbox_store.add(
        conn,
        school,
        outbox_store.NewMessage(
            key=key,
            kind=kind,
            lane=lane,
            text=html,
            parts=parts,
            not_before=due,
            audience=outbox_store.CLIENT if client else outbox_store.INTERNAL,
            chat_id=chat,
        ),
    )
    if added is None:
        return 0
    if due <= now:
        lanes.add(lane)
    return 1


def _client_chat(conn: Any, school: str, contact: ClientContact) -> str | None:
    """The client's Telegram chat: given as their contact, or linked to their amoCRM contact."""
    if contact.telegram:
        return contact.telegram
    if contact.amocrm_contact is None:
        return None
    return links.targets(conn, school, CONTACT, [contact.amocrm_contact], CHAT).get(
        contact.amocrm_contact
    )


def _shown_name(psychologist: str | None) -> str | None:
    """A psychologist's name for the client; an amoCRM user id is not one."""
    return None if psychologist is None or psychologist.isdigit() else psychologist


def _note_once(conn: Any, school: str, key: str, session: str) -> None:
    if effects.record(conn, school=school, key=key, job_id=None, detail={}):
        log.warning(
            "session reminder: no way to reach a recipient", school=school, session=session, why=key
        )
