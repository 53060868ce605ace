"""Replay a failure: the same job, from the start, with the same arguments and idempotency keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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
        job_id = int(failure["job_id"])
        jobs.reset_for_replay(conn, job_id)
        failures.set_status(conn, failure_id, failures.REPLAYING)
        audit_id = audit.add(
            conn,
            school=failure["school"],
            who=who,
            action="replay",
            target=f"failure:{failure_id}",
            detail={"actor": failure["actor"], "error_class": failure["error_class"]},
            job_id=job_id,
        )
        row = jobs.get(conn, job_id)
        assert row is not None
        ref = jobs.ref(row)
    enqueued = queue.send([ref])
    return ReplayTicket(failure_id, job_id, audit_id, enqueued)


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
