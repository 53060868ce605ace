"""Final failures: one row per job that could not be done, with its attempt history.

The admin console's queries live here too: filters (``FailureFilter``), cursor pages
(``search``), root-cause groups (``groups``), the last day at a glance (``overview``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import failures, inbox
from schoolsync.core.pii import EMAIL, mask_text

OPEN, REPLAYING, RESOLVED, IGNORED = "open", "replaying", "resolved", "ignored"


def record(
    conn: Connection, job: RowMapping, *, error_class: str, error: str, now: datetime
) -> None:
    """Create the job's failure row, or reopen and update it after a failed replay."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(failures).values(
        school=job["school"],
        job_id=job["id"],
        actor=job["actor"],
        args=job["args"],
        error_class=error_class,
        error_message=error,
        attempts=job["starts"],
        status=OPEN,
        first_failed_at=now,
        last_failed_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id"],
        set_={
            "error_class": stmt.excluded.error_class,
            "error_message": stmt.excluded.error_message,
            "attempts": stmt.excluded.attempts,
            "status": OPEN,
            "last_failed_at": stmt.excluded.last_failed_at,
            "resolved_at": None,
        },
    )
    conn.execute(stmt)


def resolve_for_job(conn: Connection, job_id: int, *, now: datetime | None = None) -> None:
    conn.execute(
        sa.update(failures)
        .where(failures.c.job_id == job_id, failures.c.status.in_((OPEN, REPLAYING)))
        .values(status=RESOLVED, resolved_at=now or utcnow())
    )


def get(conn: Connection, failure_id: int) -> RowMapping | None:
    return conn.execute(sa.select(failures).where(failures.c.id == failure_id)).mappings().first()


def for_job(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(sa.select(failures).where(failures.c.job_id == job_id)).mappings().first()


def listing(
    conn: Connection, *, status: str | None = OPEN, school: str | None = None, limit: int = 50
) -> list[RowMapping]:
    query = (
        sa.select(failures)
        .order_by(failures.c.last_failed_at.desc(), failures.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(failures.c.status == status)
    if school:
        query = query.where(failures.c.school == school)
    return list(conn.execute(query).mappings())


def set_status(conn: Connection, failure_id: int, status: str) -> None:
    conn.execute(sa.update(failures).where(failures.c.id == failure_id).values(status=status))


def count_open_by_class(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(failures.c.error_class, sa.func.count())
        .where(failures.c.status == OPEN)
        .group_by(failures.c.error_class)
    )
    return {r[0]: int(r[1]) for r in rows}


# --- the admin console's queries (W14) ------------------------------------------------------

# Which platform a failure belongs to, from its actor (the job's name). Jobs that process a
# stored webhook belong to the platform that sent it (the inbox row's source); the two API
# sources (feedback, payments sent to /admin/api) are "api". Anything else is "other".
PLATFORM_BY_ACTOR: dict[str, str] = {
    "push_orders_to_crm": "amocrm",
    "resend_order_to_crm": "amocrm",
    "sla_sweep": "amocrm",
    "followups_sweep": "amocrm",
    "duplicates_sweep": "amocrm",
    "status_sync_settle": "getcourse",
    "getcourse_export_sync": "getcourse",
    "settle_payment": "getcourse",
    "reconcile_school": "getcourse",
    "process_inbox_batch": "getcourse",  # the only source stored in batches
    "process_refund": "yookassa",
    "feedback_survey_poll": "sheets",
    "feedback_survey_row": "sheets",
    "telegram_poll_updates": "telegram",
    "deliver_notifications": "telegram",
    "resend_notification": "telegram",
    "notifications_sweep": "telegram",
    "failure_alerts_sweep": "telegram",
    "relay_jobs": "internal",
    "bulk_replay": "internal",
}
INBOX_ACTOR = "process_inbox_event"  # args {"inbox_id": N}: the platform is the row's source
API_SOURCES = ("feedback-api", "payments-api")
PLATFORMS = (
    "getcourse",
    "amocrm",
    "yookassa",
    "robokassa",
    "paypal",
    "telegram",
    "sheets",
    "generic",
    "api",
    "internal",
    "other",
)
STATUSES = (OPEN, REPLAYING, RESOLVED, IGNORED)


def platform_expr() -> sa.ColumnElement[str]:
    """SQL for a failure's platform (see ``PLATFORM_BY_ACTOR``)."""
    source = (
        sa.select(inbox.c.source)
        .where(inbox.c.id == failures.c.args["inbox_id"].as_integer())
        .scalar_subquery()
    )
    from_inbox = sa.case(
        (source.in_(API_SOURCES), sa.literal("api")),
        else_=sa.func.coalesce(source, sa.literal("other")),
    )
    whens = [(failures.c.actor == actor, sa.literal(p)) for actor, p in PLATFORM_BY_ACTOR.items()]
    return sa.case(*whens, (failures.c.actor == INBOX_ACTOR, from_inbox), else_=sa.literal("other"))


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|«[^»]*»")
_UUIDISH = re.compile(r"\b[0-9a-fA-F]{16,}\b|\b[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(message: str) -> str:
    """The root cause in a message: numbers, ids and emails replaced, quoted values kept.

    ``order 1042: product 'Пакет VIP' is unknown`` and ``order 7: product 'Пакет VIP' is
    unknown`` are one cause (one missing product), ``... 'Пакет Эконом' ...`` another: each
    quoted value usually names what to add to the config. A quoted email or number is still
    replaced (it names a person or a record, not a config key).
    """
    text = EMAIL.sub("<email>", message)
    parts: list[str] = []
    position = 0
    for match in _QUOTED.finditer(text):
        parts.append(_plain(text[position : match.start()]))
        quoted = match.group(0)
        inner = quoted[1:-1]
        parts.append("<n>" if _NUMBER.fullmatch(inner.strip()) else quoted)
        position = match.end()
    parts.append(_plain(text[position:]))
    return " ".join("".join(parts).split())[:300]


def _plain(text: str) -> str:
    return _NUMBER.sub("N", _UUIDISH.sub("<id>", text))


def group_key(actor: str, error_class: str, message: str) -> str:
    """A short stable id of a root cause (actor, error class, normalised message)."""
    raw = "\x1f".join((actor, error_class, normalise(message)))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FailureFilter:
    """What an admin narrows the failures to; ``None`` means any. ``entity`` is an order number
    or an email found in the job's arguments or its error (also in its masked form, as errors
    show it); ``group`` a ``group_key``."""

    school: str | None = None
    platform: str | None = None
    actor: str | None = None
    error_class: str | None = None
    entity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    group: str | None = None

    def to_json(self) -> dict[str, Any]:
        found = {k: v for k, v in asdict(self).items() if v is not None}
        for key in ("since", "until"):
            if key in found:
                found[key] = as_utc(found[key]).isoformat()
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureFilter:
        values = dict(data)
        for key in ("since", "until"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    def with_status(self, status: str | None) -> FailureFilter:
        return replace(self, status=status)


def _conditions(filt: FailureFilter) -> list[sa.ColumnElement[bool]]:
    c = failures.c
    found: list[sa.ColumnElement[bool]] = []
    if filt.school:
        found.append(c.school == filt.school)
    if filt.actor:
        found.append(c.actor == filt.actor)
    if filt.error_class:
        found.append(c.error_class == filt.error_class)
    if filt.status:
        found.append(c.status == filt.status)
    if filt.since:  # in UTC: SQLite compares the stored text
        found.append(c.last_failed_at >= as_utc(filt.since))
    if filt.until:
        found.append(c.last_failed_at < as_utc(filt.until))
    if filt.platform:
        found.append(platform_expr() == filt.platform)
    if filt.entity and filt.entity.strip():
        entity = filt.entity.strip()
        patterns = {_like(entity), _like(mask_text(entity))}
        args_text = sa.cast(c.args, sa.Text)
        found.append(
            sa.or_(
                *(c.error_message.like(p, escape="\\") for p in patterns),
                *(args_text.like(p, escape="\\") for p in patterns),
            )
        )
    return found


def _like(entity: str) -> str:
    """A LIKE pattern finding ``entity`` anywhere; the ``***`` of a masked value (as a viewer
    sees it: ``m***@example.org``) stands for any characters."""
    escaped = entity.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("***", "%") + "%"


def _with_platform() -> sa.Select[Any]:
    return sa.select(failures, platform_expr().label("platform"))


@dataclass(frozen=True)
class FailurePage:
    rows: list[RowMapping]  # failures columns plus "platform"
    next_cursor: str | None  # None: this was the last page


def encode_cursor(last_failed_at: datetime, failure_id: int) -> str:
    raw = json.dumps([as_utc(last_failed_at).isoformat(), failure_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises ``ValueError`` for anything ``encode_cursor`` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, failure_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(when)), int(failure_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor this API gave out") from exc


def search(
    conn: Connection, filt: FailureFilter, *, cursor: str | None = None, limit: int = 50
) -> FailurePage:
    """One page of failures matching ``filt``, newest first (by last failure, then id).

    ``cursor`` is the page's ``next_cursor`` from before; it stays valid while failures come
    and go (it is a position, not an offset). Raises ``ValueError`` for a bad cursor.
    """
    query = _with_platform().where(*_conditions(filt))
    if cursor:
        when, last_id = decode_cursor(cursor)
        c = failures.c
        query = query.where(
            sa.or_(c.last_failed_at < when, sa.and_(c.last_failed_at == when, c.id < last_id))
        )
    query = query.order_by(failures.c.last_failed_at.desc(), failures.c.id.desc())
    rows: list[RowMapping] = []
    for row in _scan(conn, query, filt.group):
        rows.append(row)
        if len(rows) > limit:
            break
    if len(rows) <= limit:
        return FailurePage(rows, None)
    last = rows[limit - 1]
    return FailurePage(rows[:limit], encode_cursor(last["last_failed_at"], int(last["id"])))


def _scan(
    conn: Connection, query: sa.Select[Any], group: str | None, *, chunk: int = 500
) -> Iterator[RowMapping]:
    """Rows of ``query``; with ``group``, only those of that root cause (matched here: the
    normalised message is not a column), read ``chunk`` at a time."""
    if not group:
        yield from conn.execute(query).mappings()
        return
    offset = 0
    while True:
        rows = list(conn.execute(query.limit(chunk).offset(offset)).mappings())
        for row in rows:
            if group_key(row["actor"], row["error_class"], row["error_message"]) == group:
                yield row
        if len(rows) < chunk:
            return
        offset += chunk


def matching_ids(
    conn: Connection,
    filt: FailureFilter,
    *,
    after_id: int = 0,
    up_to_id: int | None = None,
    limit: int | None = None,
) -> list[int]:
    """Ids of the failures matching ``filt`` above ``after_id`` (and up to ``up_to_id``),
    oldest first, at most ``limit``."""
    query = sa.select(
        failures.c.id, failures.c.actor, failures.c.error_class, failures.c.error_message
    ).where(*_conditions(filt), failures.c.id > after_id)
    if up_to_id is not None:
        query = query.where(failures.c.id <= up_to_id)
    found: list[int] = []
    for row in _scan(conn, query.order_by(failures.c.id), filt.group):
        found.append(int(row["id"]))
        if limit is not None and len(found) >= limit:
            break
    return found


def matching(conn: Connection, filt: FailureFilter) -> list[RowMapping]:
    """Every failure matching ``filt`` (with its platform), oldest first (for dry runs)."""
    query = _with_platform().where(*_conditions(filt)).order_by(failures.c.id)
    return list(_scan(conn, query, filt.group))


@dataclass(frozen=True)
class FailureGroup:
    """Failures with one root cause: the same actor, error class and normalised message."""

    key: str
    actor: str
    error_class: str
    pattern: str  # the normalised message (may still name a person: mask it for viewers)
    count: int
    statuses: dict[str, int]
    platform: str
    first_failed_at: datetime
    last_failed_at: datetime
    example_id: int
    example_message: str


def groups(conn: Connection, filt: FailureFilter) -> list[FailureGroup]:
    """The failures matching ``filt`` grouped by root cause, the biggest group first."""
    query = sa.select(
        failures.c.id,
        failures.c.actor,
        failures.c.error_class,
        failures.c.error_message,
        failures.c.status,
        failures.c.first_failed_at,
        failures.c.last_failed_at,
        platform_expr().label("platform"),
    ).where(*_conditions(filt))
    found: dict[str, dict[str, Any]] = {}
    for row in _scan(conn, query.order_by(failures.c.id.desc()), filt.group):
        key = group_key(row["actor"], row["error_class"], row["error_message"])
        group = found.get(key)
        if group is None:
            found[key] = group = {
                "key": key,
                "actor": row["actor"],
                "error_class": row["error_class"],
                "pattern": normalise(row["error_message"]),
                "count": 0,
                "statuses": Counter[str](),
                "platform": row["platform"],
                "first_failed_at": as_utc(row["first_failed_at"]),
                "last_failed_at": as_utc(row["last_failed_at"]),
                "example_id": int(row["id"]),
                "example_message": row["error_message"],
            }
        group["count"] += 1
        group["statuses"][row["status"]] += 1
        group["first_failed_at"] = min(group["first_failed_at"], as_utc(row["first_failed_at"]))
        group["last_failed_at"] = max(group["last_failed_at"], as_utc(row["last_failed_at"]))
    made = [FailureGroup(**{**g, "statuses": dict(g["statuses"])}) for g in found.values()]
    return sorted(made, key=lambda g: (-g.count, g.key))


@dataclass(frozen=True)
class Overview:
    """Failures that failed (last) since ``since``, counted three ways, and what is open."""

    since: datetime
    total: int
    by_platform: dict[str, int]
    by_actor: dict[str, int]
    by_error_class: dict[str, int]
    by_status: dict[str, int]
    open_total: int  # open now, whenever they failed


def overview(
    conn: Connection, *, now: datetime, hours: int = 24, school: str | None = None
) -> Overview:
    since = now - timedelta(hours=hours)
    base = [failures.c.last_failed_at >= since]
    if school:
        base.append(failures.c.school == school)

    def counted(column: sa.ColumnElement[Any]) -> dict[str, int]:
        rows = conn.execute(
            sa.select(column.label("k"), sa.func.count()).where(*base).group_by(column)
        )
        return {str(k): int(n) for k, n in rows}

    by_status = counted(failures.c.status)
    open_query = sa.select(sa.func.count()).where(failures.c.status == OPEN)
    if school:
        open_query = open_query.where(failures.c.school == school)
    return Overview(
        since=since,
        total=sum(by_status.values()),
        by_platform=counted(platform_expr()),
        by_actor=counted(failures.c.actor),
        by_error_class=counted(failures.c.error_class),
        by_status=by_status,
        open_total=int(conn.execute(open_query).scalar_one()),
    )


def close(conn: Connection, failure_id: int, status: str, *, now: datetime | None = None) -> bool:
    """Mark an open failure resolved or ignored by a person; ``False`` if it is not open."""
    if status not in (RESOLVED, IGNORED):
        raise ValueError(f"a failure is closed as resolved or ignored, not {status}")
    result = conn.execute(
        sa.update(failures)
        .where(failures.c.id == failure_id, failures.c.status == OPEN)
        .values(status=status, resolved_at=now or utcnow())
    )
    return bool(result.rowcount)


def get_with_platform(conn: Connection, failure_id: int) -> RowMapping | None:
    return conn.execute(_with_platform().where(failures.c.id == failure_id)).mappings().first()
