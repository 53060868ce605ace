"""W13: a session reminder to a client by e-mail, sent at most once.

The job is asked for by the sessions sweep under a dedup key naming the session, its start and
the reminder (``sessions.email_effect_key``); the same key in the effects ledger says it was
sent. Before the message is handed to the server a second effect, ``<key>:handed-over``, is
recorded (and committed):

- the server refused, or could not be reached, before taking the message: the marker is
  removed and the error decides (4xx and connection problems are retried, 5xx fails);
- the answer was lost after the message was handed over (timeout, dropped connection, a crash
  of the worker): the marker stays, and every later try fails with ``DeliveryUnknownError``
  instead of sending. We chose **at most once**: a reminder that may be in the client's mailbox
  is not sent again blindly (SMTP has no way to ask a server whether it took a message). The
  failure is listed for admins; to send anyway, remove the ``:handed-over`` effect and replay.

A session cancelled or rescheduled since the job was asked for, or one that already started,
sends nothing.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from schoolsync.connectors.smtp.client import DeliveryUnknownError, SmtpClient, message_id
from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import effects as effects_table
from schoolsync.core.db.tables import sessions as sessions_table
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects
from schoolsync.mappings.notifications import render
from schoolsync.mappings.sessions import (
    REMINDERS,
    ClientContact,
    day_word,
    session_rules,
    shown_time,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.sessions import CLIENT_KIND, SCHEDULED, email_effect_key

log = get_logger(__name__)

HANDED_OVER = ":handed-over"


def send_session_email(
    ctx: JobContext,
    mailers: Mapping[str, SmtpClient],
    school_id: str,
    session: str,
    start: str,
    kind: str,
    *,
    now: datetime | None = None,
) -> bool:
    """Send one reminder e-mail; ``True`` when it was sent by this call.

    Raises:
        ConfigError: the school has no ``accounts.smtp``.
        DeliveryUnknownError: an earlier try's answer was lost (see the module docstring).
        UnavailableError, RejectedError, AuthError: from the server; nothing was sent.
    """
    school = ctx.school(school_id)
    mailer = mailers.get(school_id)
    if mailer is None:
        raise ConfigError(
            f"school {school_id!r} e-mails session reminders but has no accounts.smtp"
        )
    when = as_utc(datetime.fromisoformat(start))
    now = now or utcnow()
    key = email_effect_key(school_id, session, when, kind)
    with ctx.db.write() as conn:
        row = (
            conn.execute(
                sa.select(sessions_table).where(
                    sessions_table.c.school == school_id, sessions_table.c.key == session
                )
            )
            .mappings()
            .first()
        )
        current = (
            row is not None
            and row["status"] == SCHEDULED
            and as_utc(row["start_at"]) == when
            and now < when
        )
        email = ClientContact.from_json(row["contact"]).email if row is not None else None
        if not current or email is None or effects.exists(conn, key):
            log.info("session e-mail not needed (any more)", school=school_id, appointment=session)
            return False
        if effects.exists(conn, key + HANDED_OVER):
            raise DeliveryUnknownError(
                f"session reminder {key!r}: an earlier try handed the e-mail over and its answer "
                "was lost; it is not sent again automatically",
                platform="smtp",
                account=mailer.account.account,
            )
        effects.record(conn, school=school_id, key=key + HANDED_OVER, job_id=None, detail={})
        assert row is not None
        values = {
            "hours": int(REMINDERS[kind].total_seconds() // 3600),
            "day": day_word(now, when, school.tz),
            "when": shown_time(when, school.tz),
            "link": row["link"],
            "name": row["client"],
            "psychologist": None
            if str(row["psychologist"] or "").isdigit()
            else row["psychologist"],
        }
    try:
        body = render(CLIENT_KIND, **values)
        message = mailer.message(
            to=email,
            subject=session_rules(school).email_subject,
            text=_plain(body),
            html=body.replace("\n", "<br>\n"),
            message_id=message_id(key, mailer.sender),
        )
        mailer.send(message)
    except DeliveryUnknownError:
        raise  # the marker stays: maybe sent
    except Exception:  # refused, unreachable, or the message could not be built: not sent
        with ctx.db.write() as conn:
            conn.execute(sa.delete(effects_table).where(effects_table.c.key == key + HANDED_OVER))
        raise
    with ctx.db.write() as conn:
        effects.record(conn, school=school_id, key=key, job_id=None, detail={"kind": kind})
    log.info("session reminder e-mailed", school=school_id, appointment=session, kind=kind)
    return True


def _plain(body: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", body))
