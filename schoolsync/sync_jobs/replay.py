"""Replay a failure: the same job, from the start, with the same arguments and idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass

from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.stores import audit, failures, jobs
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
