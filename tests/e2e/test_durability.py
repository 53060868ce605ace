"""The promises, proven on the running service: nothing lost, nothing twice, failures replayable."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_150_events_and_50_redeliveries_are_processed_exactly_once(service_factory: Any) -> None:
    service: Service = service_factory()
    events = [{"id": f"evt-{n}", "type": "order.created", "data": {"n": n}} for n in range(150)]
    deliveries = events + events[::3]  # 50 duplicates of delivered events
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(service.post, deliveries))
    assert [a.status_code for a in answers] == [200] * 200
    assert sorted(a.json()["status"] for a in answers).count("duplicate") == 50
    forged = service.post({"id": "forged-1", "type": "x"}, secret=b"not-the-secret")
    assert forged.status_code == 401

    service.wait_for(lambda: len(service.effects()) == 150, timeout=90, what="150 effects")
    time.sleep(3)  # anything processed twice would show up now
    effects = service.effects()
    assert set(effects) == {e["id"] for e in events}
    assert max(effects.values()) == 1
    assert service.query("select status, count(*) as n from inbox group by status") == [
        {"status": "processed", "n": 150},
        {"status": "rejected", "n": 1},
    ]
    job_states = service.query(
        "select status, count(*) as n from jobs where actor = 'process_inbox_event' group by status"
    )
    assert job_states == [{"status": "done", "n": 150}]
    assert service.query("select count(*) as n from failures") == [{"n": 0}]


def test_killed_worker_comes_back_and_every_event_completes_once(service_factory: Any) -> None:
    service: Service = service_factory()
    slow = [{"id": f"slow-{n}", "type": "test.sleep", "data": {"seconds": 6}} for n in range(12)]
    for event in slow:
        assert service.post(event).status_code == 200
    service.wait_for(
        lambda: (
            service.query("select count(*) as n from jobs where status = 'running'")[0]["n"] >= 8
        ),
        timeout=30,
        what="slow jobs to start",
    )
    victims = service.worker_processes()
    killed_at = time.monotonic()
    for process in victims:
        os.kill(process.pid, signal.SIGKILL)
    took = service.wait_for(
        lambda: len(service.effects()) == len(slow),
        timeout=240,
        what="every slow event after kill -9",
    )
    print(f"\nkill -9 -> all {len(slow)} events done in {took:.1f}s")
    time.sleep(3)
    assert service.effects() == {e["id"]: 1 for e in slow}
    crashed = service.query("select count(*) as n from job_attempts where outcome = 'crashed'")[0][
        "n"
    ]
    assert crashed >= 8, "the killed attempts are recorded as crashed"
    assert time.monotonic() - killed_at < 180, "killed messages come back within about a minute"


def test_job_that_kills_its_worker_every_time_becomes_a_failure(service_factory: Any) -> None:
    service: Service = service_factory(
        SCHOOLSYNC_BROKER__HEARTBEAT_TIMEOUT_MS="5000",
        SCHOOLSYNC_BROKER__MAINTENANCE_CHANCE="300000",
        SCHOOLSYNC_JOBS__MAX_CRASHES="3",
        SCHOOLSYNC_WORKER__PROCESSES="1",
    )
    assert service.post({"id": "poison", "type": "test.crash"}).status_code == 200
    service.wait_for(
        lambda: bool(service.query("select id from failures where error_class = 'PoisonJob'")),
        timeout=180,
        what="the poison job to become a failure",
    )
    (job,) = service.query("select * from jobs where actor = 'process_inbox_event'")
    assert job["status"] == "dead"
    assert job["starts"] == 3
    assert service.post({"id": "healthy", "type": "x"}).status_code == 200
    service.wait_for(
        lambda: "healthy" in service.effects(), timeout=60, what="a healthy event after the poison"
    )
    time.sleep(8)
    assert service.query("select starts from jobs where id = :id", id=job["id"]) == [{"starts": 3}]
    assert "poison" not in service.effects()


def test_webhooks_are_stored_while_redis_is_down_and_complete_after(
    service_factory: Any, redis_server: RedisServer
) -> None:
    service: Service = service_factory(SCHOOLSYNC_REDIS_URL=redis_server.url)
    assert service.post({"id": "before", "type": "x"}).status_code == 200
    service.wait_for(lambda: "before" in service.effects(), timeout=30, what="the first event")

    redis_server.stop()
    answers = [service.post({"id": f"outage-{n}", "type": "x"}) for n in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    stored = service.query("select count(*) as n from inbox where dedup_key like 'outage-%'")
    assert stored == [{"n": 20}]

    redis_server.start()
    service.wait_for(lambda: len(service.effects()) == 21, timeout=120, what="the outage events")
    assert max(service.effects().values()) == 1


def test_permanent_error_fails_once_and_replay_completes_it(
    service_factory: Any, tmp_path: Path
) -> None:
    service: Service = service_factory()
    fixed = tmp_path / "fixed"
    event = {"id": "needs-fix", "type": "test.fail", "data": {"until_file": str(fixed)}}
    assert service.post(event).status_code == 200
    service.wait_for(
        lambda: bool(service.query("select id from failures where status = 'open'")),
        timeout=30,
        what="the failure row",
    )
    (failure,) = service.query("select * from failures")
    assert failure["error_class"] == "UnmappableError"
    assert failure["attempts"] == 1, "a permanent error is not retried"

    listed = service.cli("failures", "list")
    assert listed.returncode == 0 and "UnmappableError" in listed.stdout
    shown = service.cli("failures", "show", str(failure["id"]))
    assert shown.returncode == 0 and "needs-fix" in shown.stdout

    fixed.touch()
    replayed = service.cli("failures", "replay", str(failure["id"]), "--who", "ops@school")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "outcome: succeeded" in replayed.stdout
    assert service.effects() == {"needs-fix": 1}
    (audit,) = service.query("select * from audit")
    assert (audit["who"], audit["action"], audit["outcome"]) == (
        "ops@school",
        "replay",
        "succeeded",
    )
    assert service.query("select status from failures") == [{"status": "resolved"}]
    again = service.cli("failures", "replay", str(failure["id"]))
    assert again.returncode == 1 and "resolved, not open" in again.stderr
