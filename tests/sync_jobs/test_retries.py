"""Retry decisions by error class, on a real Redis broker with an in-process worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db import Database
from schoolsync.core.errors import RateLimitedError, RejectedError
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import failures, jobs
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.middleware import JobLedger
from schoolsync.sync_jobs.queue import JobQueue
from tests.conftest import RedisServer

SETTINGS = JobSettings(max_retries=2, min_backoff_ms=200, max_backoff_ms=1000)


@pytest.fixture
def setup(
    redis_server: RedisServer, sqlite_db: Database
) -> Iterator[tuple[Any, JobQueue, dict[str, Any]]]:
    broker = build_broker(redis_server.url, broker=BrokerSettings(namespace="t"), jobs=SETTINGS)
    broker.add_middleware(JobLedger(sqlite_db, SETTINGS), before=dramatiq.middleware.Retries)
    calls: dict[str, Any] = {"n": 0, "raise": None}

    def flaky() -> None:
        calls["n"] += 1
        exc = calls["raise"]
        if exc is not None and (calls.get("until") is None or calls["n"] < calls["until"]):
            raise exc

    def honouring() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise dramatiq.Retry(delay=1500) from RateLimitedError("429", retry_after=1.5)

    dramatiq.actor(actor_name="flaky", broker=broker)(flaky)
    dramatiq.actor(actor_name="honouring", broker=broker)(honouring)
    worker = Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    yield broker, JobQueue(sqlite_db, broker), calls
    worker.stop()
    broker.close()


def run(queue: JobQueue, actor: str, *, wait_s: float = 5) -> int:
    import time

    with queue.db.write() as conn:
        ref = jobs.add(conn, school="default", actor=actor, args={})
    assert ref is not None
    queue.send([ref])
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with queue.db.read() as conn:
            row = jobs.get(conn, ref.id)
        if row is not None and row["status"] in jobs.FINISHED:
            break
        time.sleep(0.05)
    return ref.id


def test_permanent_error_fails_at_once_with_one_failure_row(setup: Any) -> None:
    _broker, queue, calls = setup
    calls["raise"] = RejectedError("422: unknown field", platform="amocrm")
    job_id = run(queue, "flaky")
    with queue.db.read() as conn:
        row = jobs.get(conn, job_id)
        failure = failures.for_job(conn, job_id)
    assert calls["n"] == 1
    assert row is not None and row["status"] == "failed"
    assert failure is not None and failure["error_class"] == "RejectedError"
    assert "422: unknown field (platform=amocrm)" in failure["error_message"]


def test_unexpected_errors_are_retried_a_bounded_number_of_times(setup: Any) -> None:
    _broker, queue, calls = setup
    calls["raise"] = RuntimeError("boom")
    job_id = run(queue, "flaky", wait_s=10)
    with queue.db.read() as conn:
        row = jobs.get(conn, job_id)
        outcomes = [a["outcome"] for a in jobs.attempts(conn, job_id)]
    assert calls["n"] == 3  # first try + max_retries=2
    assert row is not None and row["status"] == "failed"
    assert outcomes == ["retry", "retry", "failed"]


def test_transient_error_then_success_leaves_no_failure(setup: Any) -> None:
    _broker, queue, calls = setup
    calls["raise"], calls["until"] = ConnectionError("reset"), 2
    job_id = run(queue, "flaky", wait_s=10)
    with queue.db.read() as conn:
        row = jobs.get(conn, job_id)
        assert failures.for_job(conn, job_id) is None
    assert row is not None and row["status"] == "done" and calls["n"] == 2


def test_retry_after_is_honoured_and_recorded(setup: Any) -> None:
    _broker, queue, _calls = setup
    before = utcnow()
    job_id = run(queue, "honouring", wait_s=10)
    with queue.db.read() as conn:
        (first, second) = jobs.attempts(conn, job_id)
    assert first["error_class"] == "RateLimitedError"
    assert (as_utc(second["started_at"]) - before).total_seconds() >= 1.4
