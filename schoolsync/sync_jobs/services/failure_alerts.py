"""W14: a sweep every minute that tells the admin channel of new failure classes and spikes.

``mappings/alerts.py`` decides; this reads the school's recent failures and the alerts already in
the outbox, and queues what is due. One message per class when it first appears, one per spike,
never one per failure. The outbox keys name the class (and the spike's window), so a sweep run
twice, or by two schedulers, posts nothing twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import failures, outbox
from schoolsync.mappings.alerts import (
    TEMPLATE,
    AlertRules,
    FailureAlert,
    FailureClass,
    Posted,
    SeenFailure,
    alert_key,
    alert_rules,
    alerts_due,
    classify,
    group,
    masked,
    new_candidates,
    posted_from,
    where_to_look,
)
from schoolsync.mappings.notifications import render
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

ALERTS_ACTOR = "failure_alerts_sweep"
# older failures of the same actor and error class looked at to tell whether a class is new;
# past this many without a match it is taken as new
_HISTORY_LIMIT = 5000


def failure_alerts_sweep(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> int:
    """Queue the alerts due now; returns how many notices were asked for (new or known)."""
    school = ctx.school(school_id)
    rules = alert_rules(school)
    if not rules.enabled:
        return 0
    now = now or utcnow()
    since = now - rules.look_back
    with ctx.db.read() as conn:
        groups = group(recent_failures(conn, school_id, since=since))
        if not groups:
            return 0
        posted = posted_alerts(conn, school_id)
        seen = {
            cls.id
            for cls in new_candidates(groups, posted)
            if seen_before(conn, school_id, cls, before=since)
        }
    due = alerts_due(groups, posted=posted, seen_before=seen, now=now, rules=rules)
    if not due:
        return 0
    notices = [
        Notice(
            key=alert_key(alert.kind, school_id, alert.cls, alert.window_start),
            kind=TEMPLATE,
            html=alert_html(alert, rules),
            channel=rules.channel,
        )
        for alert in due
    ]
    with ctx.db.write() as conn:
        refs = queue_notices(conn, school, notices, now=now)
    ctx.queue.send(refs)
    return len(notices)


def recent_failures(conn: Connection, school: str, *, since: datetime) -> list[SeenFailure]:
    """Failures of ``school`` that failed (first, or again) at or after ``since``, any status."""
    rows = conn.execute(
        sa.select(
            failures.c.actor,
            failures.c.error_class,
            failures.c.error_message,
            failures.c.first_failed_at,
            failures.c.last_failed_at,
        )
        .where(failures.c.school == school, failures.c.last_failed_at >= since)
        .order_by(failures.c.id)
    )
    return [
        SeenFailure(
            actor=str(actor),
            error_class=str(error_class),
            message=str(message),
            first_failed_at=as_utc(first),
            last_failed_at=as_utc(last),
        )
        for actor, error_class, message, first, last in rows
    ]


def seen_before(conn: Connection, school: str, cls: FailureClass, *, before: datetime) -> bool:
    """Whether a failure of ``cls`` first failed before ``before`` (newest looked at first)."""
    rows = conn.execute(
        sa.select(failures.c.error_message)
        .where(
            failures.c.school == school,
            failures.c.actor == cls.actor,
            failures.c.error_class == cls.error_class,
            failures.c.first_failed_at < before,
        )
        .order_by(failures.c.id.desc())
        .limit(_HISTORY_LIMIT)
    )
    return any(classify(cls.actor, cls.error_class, str(m)) == cls for (m,) in rows)


def posted_alerts(conn: Connection, school: str) -> list[Posted]:
    """The alerts already in the outbox of ``school`` (an internal message's ``not_before`` is
    the time it was asked for)."""
    rows = conn.execute(
        sa.select(outbox.c.key, outbox.c.not_before).where(
            outbox.c.school == school, outbox.c.key.startswith("alert:")
        )
    )
    found = [posted_from(str(key), as_utc(at)) for key, at in rows]
    return [p for p in found if p is not None]


def alert_html(alert: FailureAlert, rules: AlertRules) -> str:
    url, command = where_to_look(rules, alert.cls)
    return render(
        TEMPLATE,
        new=alert.new,
        spike=alert.spike,
        count=alert.count,
        window_min=rules.spike_window_min,
        actor=alert.cls.actor,
        error_class=alert.cls.error_class,
        message=masked(alert.cls.message),
        example=alert.example,
        url=url,
        command=command,
    )
