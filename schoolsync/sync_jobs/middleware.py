"""``JobLedger``: claims each ledgered job before it runs and records how every attempt ended.

Added *before* ``Retries`` so that its ``after_*`` hooks (run in reverse order) see the
decision Retries made: ``message.failed`` means final, otherwise a retry was scheduled.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from schoolsync.core.db import Database
from schoolsync.core.logging import get_logger
from schoolsync.core.sentry import tag_failure
from schoolsync.core.settings import JobSettings
from schoolsync.core.stores import audit, failures, jobs
from schoolsync.core.stores.jobs import Claim
from schoolsync.sync_jobs.broker import LedgerBroker

log = get_logger(__name__)
_TIME_LIMIT_MARGIN = timedelta(seconds=60)


class JobLedger(Middleware):
    def __init__(self, db: Database, settings: JobSettings) -> None:
        self.db = db
        self.settings = settings
        self._local = threading.local()

    # -- before ------------------------------------------------------------------------------
    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._local.attempt = None
        self._local.retry_eta = None
        job_id = message.options.get("job_id")
        if job_id is None:
            return
        structlog.contextvars.bind_contextvars(
            actor=message.actor_name, message_id=message.message_id, job_id=job_id, **message.kwargs
        )
        assert isinstance(broker, LedgerBroker)
        with self.db.write() as conn:
            result = jobs.claim(
                conn,
                int(job_id),
                owner=broker.broker_id,
                owner_alive=broker.is_alive,
                max_crashes=self.settings.max_crashes,
                stale_after=timedelta(milliseconds=self.settings.time_limit_ms)
                + _TIME_LIMIT_MARGIN,
            )
            if result.claim is Claim.POISON:
                audit.settle_for_job(conn, int(job_id), audit.FAILED)
        if result.claim is not Claim.RUN:
            log.info("job not run", outcome=result.claim.value)
            raise SkipMessage(result.claim.value)
        self._local.attempt = (int(job_id), result.attempt)
        log.info("job started", attempt=result.attempt)

    # -- after -------------------------------------------------------------------------------
    def after_enqueue(
        self, broker: Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        if delay is not None and "eta" in message.options:
            self._local.retry_eta = datetime.fromtimestamp(message.options["eta"] / 1000, UTC)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        claimed = getattr(self._local, "attempt", None)
        if claimed is None:
            return
        job_id, attempt = claimed
        self._local.attempt = None
        cause = (
            exception.__cause__
            if isinstance(exception, dramatiq.Retry) and exception.__cause__
            else exception
        )
        error_class = type(cause).__name__ if cause is not None else None
        error = str(cause) if cause is not None else None
        if exception is None:
            status = jobs.DONE
        elif message.failed:
            status = jobs.FAILED
        else:
            status = jobs.RETRYING
        with self.db.write() as conn:
            row = jobs.get(conn, job_id)
            if row is None:
                return
            jobs.finish(
                conn,
                row,
                attempt=attempt,
                status=status,
                error_class=error_class,
                error=error,
                next_attempt_at=getattr(self._local, "retry_eta", None)
                if status == jobs.RETRYING
                else None,
            )
            if status == jobs.FAILED and (failure := failures.for_job(conn, job_id)) is not None:
                tag_failure(failure["id"])  # the Sentry event of this final attempt -> its replay
            if status in (jobs.DONE, jobs.FAILED):
                audit.settle_for_job(
                    conn, job_id, audit.SUCCEEDED if status == jobs.DONE else audit.FAILED
                )
        log.log(
            20 if status == jobs.DONE else 30,
            f"job {status}",
            attempt=attempt,
            error_class=error_class,
            error=error,
        )
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
