"""The job ledger (the outbox): every job is a row before it is a Redis message.

Life of a row::

    queued ──claim──> running ──ok──> done
       ^                 │──retryable──> retrying ──claim──> running ...
       │                 │──final error──> failed (+ failures row)
    replay               └──worker died N times──> dead (+ failures row)

``starts`` counts claims and ``ends`` counts attempts that returned (with any outcome), so
``starts - ends`` is the number of starts whose worker died before finishing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import job_attempts, jobs
from schoolsync.core.db.upsert import insert_ignore, insert_many_ignore
from schoolsync.core.stores import failures

QUEUED, RUNNING, RETRYING, DONE, FAILED, DEAD = (
    "queued",
    "running",
    "retrying",
    "done",
    "failed",
    "dead",
)
FINISHED = (DONE, FAILED, DEAD)


@dataclass(frozen=True)
class JobRef:
    """What the broker needs to send a job: messages carry ids, never objects."""

    id: int
    actor: str
    queue: str
    args: dict[str, Any]


def add(
    conn: Connection,
    *,
    school: str,
    actor: str,
    args: dict[str, Any],
    dedup_key: str | None = None,
    queue: str = "default",
) -> JobRef | None:
    """Create a queued job in the caller's transaction; ``None`` if ``dedup_key`` exists."""
    values = {
        "school": school,
        "actor": actor,
        "queue": queue,
        "args": args,
        "dedup_key": dedup_key,
        "status": QUEUED,
        "created_at": utcnow(),
    }
    if dedup_key is None:
        job_id = int(conn.execute(sa.insert(jobs).values(**values).returning(jobs.c.id)).one()[0])
    else:
        inserted = insert_ignore(conn, jobs, values, conflict=("dedup_key",))
        if inserted is None:
            return None
        job_id = inserted
    return JobRef(job_id, actor, queue, args)


def add_many(
    conn: Connection, *, school_actor_args_keys: list[tuple[str, str, dict[str, Any], str]]
) -> list[JobRef]:
    """Create several queued jobs with dedup keys in one statement; existing keys are skipped."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "school": school,
            "actor": actor,
            "queue": "default",
            "args": args,
            "dedup_key": key,
            "status": QUEUED,
            "created_at": now,
        }
        for school, actor, args, key in school_actor_args_keys
    ]
    ids = insert_many_ignore(conn, jobs, rows, conflict=("dedup_key",))
    return [
        JobRef(job_id, row["actor"], row["queue"], row["args"])
        for job_id, row in zip(ids, rows, strict=True)
        if job_id is not None
    ]


def get_by_key(conn: Connection, dedup_key: str) -> RowMapping | None:
    return conn.execute(sa.select(jobs).where(jobs.c.dedup_key == dedup_key)).mappings().first()


def find_waiting(
    conn: Connection, *, actor: str, dedup_prefix: str, retrying: bool = True
) -> int | None:
    """A job of ``actor`` (dedup key starting with ``dedup_prefix``) that will start (again):
    not started yet, or (with ``retrying``) waiting for its next retry (it sees everything
    committed before then).

    On PostgreSQL the row is locked until the caller commits, so it cannot be claimed (and
    start) before the caller's changes are visible to it.
    """
    stmt = (
        sa.select(jobs.c.id)
        .where(
            jobs.c.status.in_((QUEUED, RETRYING) if retrying else (QUEUED,)),
            jobs.c.actor == actor,
            jobs.c.dedup_key.startswith(dedup_prefix, autoescape=True),
        )
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def ref(row: RowMapping) -> JobRef:
    return JobRef(int(row["id"]), str(row["actor"]), str(row["queue"]), dict(row["args"]))


def get(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()


def mark_enqueued(conn: Connection, job_ids: Sequence[int], *, at: datetime | None = None) -> None:
    if job_ids:
        conn.execute(
            sa.update(jobs).where(jobs.c.id.in_(job_ids)).values(enqueued_at=at or utcnow())
        )


class Claim(Enum):
    RUN = "run"  # this worker owns the attempt now
    FINISHED = "finished"  # already done/failed/dead: a duplicate delivery
    BUSY = "busy"  # another live worker is running it
    POISON = "poison"  # its worker died too often: now dead, with a failures row
    MISSING = "missing"  # no such job row


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    attempt: int = 0
    row: RowMapping | None = None


def claim(
    conn: Connection,
    job_id: int,
    *,
    owner: str,
    owner_alive: Callable[[str], bool],
    max_crashes: int,
    stale_after: timedelta,
    now: datetime | None = None,
) -> ClaimResult:
    """Take the job for one attempt (compare-and-set on status and starts).

    A job still marked running is taken over only when its owner is gone (heartbeat expired) or
    it has run longer than ``stale_after``; the unfinished attempt is recorded as crashed.
    """
    now = now or utcnow()
    row = get(conn, job_id)
    if row is None:
        return ClaimResult(Claim.MISSING)
    status = row["status"]
    if status in FINISHED:
        return ClaimResult(Claim.FINISHED, row=row)
    if status == RUNNING:
        started = as_utc(row["started_at"]) if row["started_at"] else now
        if row["owner"] and owner_alive(row["owner"]) and now - started < stale_after:
            return ClaimResult(Claim.BUSY, row=row)
        conn.execute(
            sa.update(job_attempts)
            .where(job_attempts.c.job_id == job_id, job_attempts.c.finished_at.is_(None))
            .values(
                finished_at=now,
                outcome="crashed",
                error_class="WorkerDied",
                error_message=f"worker {row['owner']} stopped without finishing this attempt",
            )
        )
    crashes = int(row["starts"]) - int(row["ends"])
    if crashes >= max_crashes:
        message = (
            f"the job started {row['starts']} times and its worker died {crashes} times "
            "before finishing; it is not retried again"
        )
        finish(
            conn, row, attempt=None, status=DEAD, error_class="PoisonJob", error=message, now=now
        )
        return ClaimResult(Claim.POISON, row=row)
    updated = conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == status, jobs.c.starts == row["starts"])
        .values(status=RUNNING, starts=jobs.c.starts + 1, owner=owner, started_at=now)
    )
    if updated.rowcount != 1:
        return ClaimResult(Claim.BUSY, row=row)
    attempt = int(row["starts"]) + 1
    conn.execute(
        sa.insert(job_attempts).values(
            school=row["school"], job_id=job_id, attempt=attempt, worker=owner, started_at=now
        )
    )
    return ClaimResult(Claim.RUN, attempt=attempt, row=row)


def finish(
    conn: Connection,
    row: RowMapping,
    *,
    attempt: int | None,
    status: str,
    error_class: str | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Close an attempt with ``status`` (done, retrying, failed or dead); failed and dead rows
    get (or update) their ``failures`` row."""
    now = now or utcnow()
    job_id = int(row["id"])
    values: dict[str, Any] = {
        "status": status,
        "last_error_class": error_class,
        "last_error": error,
        "next_attempt_at": next_attempt_at,
    }
    if attempt is not None:
        values["ends"] = jobs.c.ends + 1
    if status in FINISHED:
        values["finished_at"] = now
    conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))
    if attempt is not None:
        outcome = {DONE: "ok", RETRYING: "retry"}.get(status, "failed")
        started = row["started_at"]
        duration_ms = int((now - as_utc(started)).total_seconds() * 1000) if started else None
        conn.execute(
            sa.update(job_attempts)
            .where(job_attempts.c.job_id == job_id, job_attempts.c.attempt == attempt)
            .values(
                finished_at=now,
                outcome=outcome,
                error_class=error_class,
                error_message=error,
                duration_ms=duration_ms,
            )
        )
    if status in (FAILED, DEAD):
        fresh = get(conn, job_id)
        assert fresh is not None
        failures.record(conn, fresh, error_class=error_class or "Error", error=error or "", now=now)
    elif status == DONE:
        failures.resolve_for_job(conn, job_id, now=now)


def attempts(conn: Connection, job_id: int) -> list[RowMapping]:
    return list(
        conn.execute(
            sa.select(job_attempts)
            .where(job_attempts.c.job_id == job_id)
            .order_by(job_attempts.c.attempt)
        ).mappings()
    )


def stuck(
    conn: Connection,
    *,
    now: datetime,
    enqueue_grace: timedelta,
    requeue_after: timedelta,
    running_stale_after: timedelta,
    limit: int = 1000,
) -> list[RowMapping]:
    """Jobs the broker may have lost: never enqueued, or waiting/running far past any deadline."""
    c = jobs.c
    condition = sa.or_(
        sa.and_(c.status == QUEUED, c.enqueued_at.is_(None), c.created_at < now - enqueue_grace),
        sa.and_(c.status == QUEUED, c.enqueued_at < now - requeue_after),
        sa.and_(c.status == RETRYING, c.next_attempt_at < now - requeue_after),
        sa.and_(c.status == RUNNING, c.started_at < now - running_stale_after),
    )
    return list(
        conn.execute(sa.select(jobs).where(condition).order_by(c.id).limit(limit)).mappings()
    )


def reset_for_replay(conn: Connection, job_id: int) -> None:
    """Queue a finished job again; its crash count starts over, its history stays."""
    conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status=QUEUED,
            starts=jobs.c.ends,
            owner=None,
            enqueued_at=None,
            finished_at=None,
            next_attempt_at=None,
        )
    )


def attempt_stats(conn: Connection) -> list[tuple[str, str, int, int]]:
    """(actor, outcome, attempts, total milliseconds) over every finished attempt."""
    a = job_attempts.c
    rows = conn.execute(
        sa.select(
            jobs.c.actor,
            a.outcome,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(a.duration_ms), 0),
        )
        .join(jobs, jobs.c.id == a.job_id)
        .where(a.outcome.is_not(None))
        .group_by(jobs.c.actor, a.outcome)
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def count_by_status(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        sa.select(jobs.c.actor, jobs.c.status, sa.func.count()).group_by(
            jobs.c.actor, jobs.c.status
        )
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def fail_as_job(
    conn: Connection,
    *,
    school: str,
    actor: str,
    args: dict[str, Any],
    key: str,
    error_class: str,
    error: str,
) -> int:
    """Record a failure an admin sees and replays, for work done outside a job of its own.

    The failure belongs to a job of ``actor`` with ``args`` (what a replay runs) under the
    dedup ``key``: the same thing failing again reopens the same failure, unless a replay of it
    is queued or running, in which case this is a new failure. Returns the job id.
    """
    row = get_by_key(conn, key)
    if row is not None and row["status"] not in FINISHED:
        key = f"{key}:{utcnow().strftime('%Y%m%d%H%M%S%f')}"
        row = None
    if row is None:
        add(conn, school=school, actor=actor, args=args, dedup_key=key)
        row = get_by_key(conn, key)
    assert row is not None
    finish(conn, row, attempt=None, status=FAILED, error_class=error_class, error=error)
    return int(row["id"])


@dataclass(frozen=True)
class AttemptTotals:
    """Finished attempts of one actor with one outcome (ok, retry, failed, crashed).

    ``timed`` of them have a duration (a crashed attempt has none), ``duration_ms`` is its sum
    and ``le_counts[i]`` how many took at most ``bounds_ms[i]``: cumulative, as a histogram's
    buckets are.
    """

    actor: str
    outcome: str
    count: int
    timed: int
    duration_ms: int
    le_counts: tuple[int, ...]

    def plus(self, other: AttemptTotals) -> AttemptTotals:
        return AttemptTotals(
            self.actor,
            self.outcome,
            self.count + other.count,
            self.timed + other.timed,
            self.duration_ms + other.duration_ms,
            tuple(a + b for a, b in zip(self.le_counts, other.le_counts, strict=True)),
        )


def attempt_totals(
    conn: Connection,
    *,
    bounds_ms: Sequence[int],
    after_id: int = 0,
    upto_id: int | None = None,
) -> list[AttemptTotals]:
    """Finished attempts with ids in (``after_id``, ``upto_id``], per actor and outcome, with
    their histogram bucket counts, in one query (the attempts' primary key bounds the scan)."""
    a = job_attempts.c
    buckets = [sa.func.sum(sa.case((a.duration_ms <= bound, 1), else_=0)) for bound in bounds_ms]
    stmt = (
        sa.select(
            jobs.c.actor,
            a.outcome,
            sa.func.count(),
            sa.func.count(a.duration_ms),
            sa.func.coalesce(sa.func.sum(a.duration_ms), 0),
            *buckets,
        )
        .join(jobs, jobs.c.id == a.job_id)
        .where(a.outcome.is_not(None), a.id > after_id)
        .group_by(jobs.c.actor, a.outcome)
    )
    if upto_id is not None:
        stmt = stmt.where(a.id <= upto_id)
    return [
        AttemptTotals(
            str(r[0]),
            str(r[1]),
            int(r[2]),
            int(r[3]),
            int(r[4]),
            tuple(int(n or 0) for n in r[5:]),
        )
        for r in conn.execute(stmt)
    ]


def attempts_settled_upto(conn: Connection, *, after_id: int, started_before: datetime) -> int:
    """The highest attempt id ``u`` such that every attempt in (``after_id``, ``u``] is finished
    and started before ``started_before``: those rows do not change any more (and on
    PostgreSQL no transaction still to commit holds an id below ``u``, given a margin longer
    than any claim's transaction). Less than ``after_id`` when the table's ids went back (a
    store restored from an older backup): start over from 0.

    Scans only the attempts after ``after_id``, by primary key.
    """
    a = job_attempts.c
    last = conn.execute(sa.select(sa.func.max(a.id))).scalar()
    if last is None:
        return 0
    if int(last) <= after_id:
        return int(last)
    blocker = conn.execute(
        sa.select(sa.func.min(a.id)).where(
            a.id > after_id, sa.or_(a.outcome.is_(None), a.started_at >= started_before)
        )
    ).scalar()
    return int(last) if blocker is None else int(blocker) - 1


def outbox_oldest(
    conn: Connection,
    *,
    now: datetime,
    requeue_after: timedelta,
    running_stale_after: timedelta,
) -> datetime | None:
    """Since when the longest-waiting job that should be in Redis and is not has been due
    there, or ``None``: a queued job never enqueued (since it was written), or one the relay
    counts as lost (as :func:`stuck`): queued and enqueued more than ``requeue_after`` ago,
    retrying and due more than ``requeue_after`` ago, running past ``running_stale_after``
    (since it was enqueued, due, started). Reads only unfinished rows (status index)."""
    c = jobs.c
    oldest = [
        sa.select(sa.func.min(column)).where(*where).scalar_subquery()
        for column, where in (
            (c.created_at, (c.status == QUEUED, c.enqueued_at.is_(None))),
            (c.enqueued_at, (c.status == QUEUED, c.enqueued_at < now - requeue_after)),
            (c.next_attempt_at, (c.status == RETRYING, c.next_attempt_at < now - requeue_after)),
            (c.started_at, (c.status == RUNNING, c.started_at < now - running_stale_after)),
        )
    ]
    found = [as_utc(t) for t in conn.execute(sa.select(*oldest)).one() if t is not None]
    return min(found, default=None)
