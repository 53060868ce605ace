"""Job ids in log lines: the broker as the app builds it, a real Redis, one worker thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import structlog
from dramatiq import Worker
from dramatiq.middleware import Retries

from schoolsync.core.db import Database
from schoolsync.core.errors import RateLimitedError
from schoolsync.core.logging import get_logger
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import jobs
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.log_context import LogContext
from schoolsync.sync_jobs.middleware import JobLedger
from schoolsync.sync_jobs.queue import JobQueue
from tests.conftest import RedisServer
from tests.core.test_logging import capture_json_logs

SETTINGS = JobSettings(max_retries=2, min_backoff_ms=200, max_backoff_ms=1000)
Lines = Callable[[], list[dict[str, Any]]]
log = get_logger("tests.actors")


@pytest.fixture
def lines() -> Lines:
    structlog.contextvars.clear_contextvars()
    return capture_json_logs()


@pytest.fixture
def setup(
    redis_server: RedisServer, sqlite_db: Database, lines: Lines
) -> Iterator[tuple[dramatiq.Broker, JobQueue, dict[str, int]]]:
    broker = build_broker(redis_server.url, broker=BrokerSettings(namespace="t"), jobs=SETTINGS)
    broker.add_middleware(JobLedger(sqlite_db, SETTINGS), before=Retries)  # as bootstrap does
    calls: dict[str, int] = {"flaky": 0}

    def speak(word: str) -> None:
        log.info("inside", word=word)
        # bound in one message, seen in none after it
        structlog.contextvars.bind_contextvars(stray=word)

    def flaky() -> None:
        calls["flaky"] += 1
        log.info("trying")
        if calls["flaky"] == 1:
            raise RateLimitedError("429", retry_after=0.05)

    dramatiq.actor(actor_name="speak", broker=broker)(speak)
    dramatiq.actor(actor_name="flaky", broker=broker)(flaky)
    worker = Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    yield broker, JobQueue(sqlite_db, broker), calls
    worker.stop()
    broker.close()


def send_job(queue: JobQueue, actor: str, args: dict[str, Any]) -> int:
    with queue.db.write() as conn:
        ref = jobs.add(conn, school="default", actor=actor, args=args)
    assert ref is not None
    queue.send([ref])
    return ref.id


def wait_for(lines: Lines, count: int, event: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [x for x in lines() if x["event"] == event]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} {event!r} lines")


def test_registered_first_so_the_ledger_lines_carry_the_ids(setup: Any) -> None:
    broker, _queue, _calls = setup
    kinds = [type(m) for m in broker.middleware]
    assert kinds.index(LogContext) < kinds.index(JobLedger) < kinds.index(Retries)
    assert kinds.index(LogContext) == 0


def test_lines_inside_an_actor_carry_job_id_and_actor_and_none_leak_to_the_next(
    setup: Any, lines: Lines
) -> None:
    broker, queue, _calls = setup
    job_id = send_job(queue, "speak", {"word": "first"})
    [first] = wait_for(lines, 1, "inside")
    # the next message on the same (only) worker thread: not a ledgered job
    broker.get_actor("speak").send("second")
    first, second = wait_for(lines, 2, "inside")
    # the same ledgered job again: the ledger skips it (done), then one more plain message
    broker.enqueue(
        dramatiq.Message(
            queue_name="default",
            actor_name="speak",
            args=(),
            kwargs={"word": "again"},
            options={"job_id": job_id},
        )
    )
    wait_for(lines, 1, "job not run")
    broker.get_actor("speak").send("third")
    *_, third = wait_for(lines, 3, "inside")
    logged = lines()

    assert first["job_id"] == job_id and first["actor"] == "speak" and first["attempt"] == 1
    assert first["word"] == "first" and first["message_id"]
    started = [x for x in logged if x["event"] == "job started"]
    done = [x for x in logged if x["event"] == "job done"]
    assert [(x["job_id"], x["message_id"]) for x in started + done] == [
        (job_id, first["message_id"])
    ] * 2
    for later in (second, third):
        assert later["actor"] == "speak" and later["attempt"] == 1
        assert "job_id" not in later and "stray" not in later
    assert len({first["message_id"], second["message_id"], third["message_id"]}) == 3
    [skipped] = [x for x in logged if x["event"] == "job not run"]
    assert skipped["job_id"] == job_id and skipped["message_id"] != first["message_id"]
    assert "stray" not in skipped


def test_a_retry_is_the_next_attempt_of_the_same_job(setup: Any, lines: Lines) -> None:
    _broker, queue, calls = setup
    job_id = send_job(queue, "flaky", {})
    first, second = wait_for(lines, 2, "trying")
    wait_for(lines, 1, "job done")
    logged = lines()
    assert calls["flaky"] == 2
    assert (first["job_id"], second["job_id"]) == (job_id, job_id)
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert first["message_id"] == second["message_id"] and first["actor"] == "flaky"
    # Dramatiq's own lines about the failure and the retry name the job as well
    failed = [x for x in logged if x["event"].startswith("Failed to process message")]
    retrying = [x for x in logged if x["event"].startswith("Retrying message")]
    assert failed and retrying
    assert {x["job_id"] for x in failed + retrying} == {job_id}
