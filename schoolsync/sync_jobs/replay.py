"""Replay a failure: the same job, from the start, with the same arguments and idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.stores import audit, failures, inbox, jobs
from schoolsync.sync_jobs.names import PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.queue import JobQueue


@dataclass(frozen=True)
class ReplayTicket:
    failure_id: int
    job_id: int
    audit_id: int
    enqueued: bool


def replay_failure(db: Database, queue: JobQueue, failure_id: int, *, who: str) -> ReplayTicket:
    """Queue the failed job again and open an audit entry that the job's outcome will settle.

    Raises:
        ConfigError: no such failure, or it is resolved, ignored or already replaying.
    """
    with db.write() as conn:
        failure = failures.get(conn, failure_id)
        if failure is None:
            raise ConfigError(f"failure {failure_id} does not exist")
        if failure["status"] != failures.OPEN:
            raise ConfigError(f"failure {failure_id} is {failure['status']}, not open")
        ref, audit_id = _queue_again(conn, failure, who=who, detail={})
    enqueued = queue.send([ref])
    return ReplayTicket(failure_id, ref.id, audit_id, enqueued)


def _queue_again(
    conn: Connection, failure: RowMapping, *, who: str, detail: dict[str, Any]
) -> tuple[jobs.JobRef, int]:
    """The failed job queued again from the start (same row, same arguments, so the same
    idempotency keys), the failure replaying, and an audit entry its job's outcome settles."""
    job_id = int(failure["job_id"])
    jobs.reset_for_replay(conn, job_id)
    failures.set_status(conn, int(failure["id"]), failures.REPLAYING)
    audit_id = audit.add(
        conn,
        school=failure["school"],
        who=who,
        action="replay",
        target=f"failure:{failure['id']}",
        detail={"actor": failure["actor"], "error_class": failure["error_class"], **detail},
        job_id=job_id,
    )
    row = jobs.get(conn, job_id)
    assert row is not None
    return jobs.ref(row), audit_id


@dataclass(frozen=True)
class InboxReplayTicket:
    inbox_id: int
    job_id: int
    audit_id: int
    enqueued: bool


def replay_inbox_event(
    db: Database, queue: JobQueue, inbox_id: int, *, who: str
) -> InboxReplayTicket:
    """Process a stored webhook again from the start (after a config fix, or to re-sync).

    Processing is idempotent: an order already in the CRM is updated, never created twice.

    Raises:
        ConfigError: no such event, or it was rejected (forged or malformed: never processed).
    """
    with db.write() as conn:
        row = inbox.get(conn, inbox_id)
        if row is None:
            raise ConfigError(f"inbox event {inbox_id} does not exist")
        if row["status"] == inbox.REJECTED:
            raise ConfigError(
                f"inbox event {inbox_id} was rejected ({row['reject_reason']}); it is never processed"
            )
        inbox.mark_received(conn, inbox_id)
        ref = jobs.add(
            conn,
            school=row["school"],
            actor=PROCESS_INBOX_EVENT,
            args={"inbox_id": inbox_id},
            dedup_key=f"inbox:{inbox_id}:replay:{uuid.uuid4().hex}",
        )
        assert ref is not None
        audit_id = audit.add(
            conn,
            school=row["school"],
            who=who,
            action="replay",
            target=f"inbox:{inbox_id}",
            detail={"source": row["source"]},
            job_id=ref.id,
        )
    enqueued = queue.send([ref])
    return InboxReplayTicket(inbox_id, ref.id, audit_id, enqueued)


def close_failure(
    db: Database, failure_id: int, *, status: str, who: str, comment: str = ""
) -> int:
    """Resolve (someone fixed it by hand) or ignore (nothing to do) an open failure, with a
    comment for the record; returns the audit entry's id.

    Raises:
        ConfigError: no such failure, or it is not open (replaying, resolved or ignored).
    """
    action = {failures.RESOLVED: "resolve", failures.IGNORED: "ignore"}.get(status)
    if action is None:
        raise ValueError(f"a failure is closed as resolved or ignored, not {status}")
    with db.write() as conn:
        failure = failures.get(conn, failure_id)
        if failure is None:
            raise ConfigError(f"failure {failure_id} does not exist")
        if not failures.close(conn, failure_id, status):
            raise ConfigError(f"failure {failure_id} is {failure['status']}, not open")
        return audit.add(
            conn,
            school=failure["school"],
            who=who,
            action=action,
            target=f"failure:{failure_id}",
            detail={"comment": comment[:2000], "error_class": failure["error_class"]},
            outcome=audit.SUCCEEDED,
        )


@dataclass(frozen=True)
class ManyReplayed:
    refs: list[jobs.JobRef]  # committed: send them
    replayed: list[int]  # failure ids queued again
    skipped: list[int]  # no longer open (replayed, resolved or ignored meanwhile)


def replay_many(
    conn: Connection, failure_ids: Sequence[int], *, who: str, detail: dict[str, Any]
) -> ManyReplayed:
    """``replay_failure`` for several failures in the caller's transaction; the caller sends
    ``refs`` after the commit. Each replay gets its own audit entry (settled by its job)."""
    refs: list[jobs.JobRef] = []
    replayed: list[int] = []
    skipped: list[int] = []
    for failure_id in failure_ids:
        failure = failures.get(conn, failure_id)
        if failure is None or failure["status"] != failures.OPEN:
            skipped.append(failure_id)
            continue
        refs.append(_queue_again(conn, failure, who=who, detail=detail)[0])
        replayed.append(failure_id)
    return ManyReplayed(refs, replayed, skipped)
