"""Sending ledgered jobs: the database row first, the Redis message after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq
import redis
from sqlalchemy import exc as sa_exc

from schoolsync.core.db import Database
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import jobs
from schoolsync.core.stores.jobs import JobRef
from schoolsync.sync_jobs.broker import LedgerBroker

log = get_logger(__name__)


def to_message(ref: JobRef) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=ref.queue,
        actor_name=ref.actor,
        args=(),
        kwargs=ref.args,
        options={"job_id": ref.id},
    )


class JobQueue:
    """Enqueue committed job rows; a broker outage leaves them to the relay, never lost."""

    def __init__(self, db: Database, broker: LedgerBroker) -> None:
        self.db = db
        self.broker = broker

    def send(self, refs: Sequence[JobRef], *, note: bool = True, delay_ms: int = 0) -> bool:
        """Enqueue ``refs`` (already committed) in one round trip and note when.

        Returns False if the broker could not be reached; the rows stay queued and the relay
        sends them once it can. With ``note=False`` the caller records ``enqueued_at`` itself
        (the webhook writer does it in its next transaction instead of a second one now).
        ``delay_ms`` holds the jobs back that long (Dramatiq's delay queue); the relay sends a
        job again only ``JOBS__REQUEUE_AFTER_S`` after its due time.
        """
        if not refs:
            return True
        try:
            self.broker.enqueue_many([to_message(r) for r in refs], delay_ms=delay_ms)
        except (redis.RedisError, dramatiq.errors.BrokerError, OSError) as exc:
            log.warning(
                "broker unreachable; jobs left for the relay", jobs=len(refs), error=str(exc)
            )
            return False
        if not note:
            return True
        try:
            with self.db.write() as conn:
                jobs.mark_enqueued(conn, [r.id for r in refs])
        except sa_exc.SQLAlchemyError as exc:  # sent anyway; at worst the relay sends a duplicate
            log.warning("could not note enqueue time", jobs=len(refs), error=str(exc))
        return True
