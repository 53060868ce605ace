"""``/metrics``: what an operator reads after a known set of rows and actions, parsed as
Prometheus parses it. The store on SQLite and PostgreSQL, a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.app.web.metrics import AttemptCounters, build_registry
from schoolsync.connectors.generic.webhooks import sign
from schoolsync.connectors.pacing import Pacer
from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import jobs as jobs_table
from schoolsync.core.settings import BrokerSettings, JobSettings, Settings
from schoolsync.core.stores import inbox, jobs, reconcile
from schoolsync.core.stores.jobs import Claim
from schoolsync.sync_jobs.broker import LedgerBroker, build_broker
from tests.conftest import RedisServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_text(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    return scrape_text(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples, prefix: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (name, labels), v in samples.items() if name == prefix}


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[LedgerBroker]:
    broker = build_broker(redis_server.url, broker=BrokerSettings(), jobs=JobSettings())
    yield broker
    broker.close()


@pytest.fixture
def registry(any_db: Database, broker: LedgerBroker) -> CollectorRegistry:
    return build_registry(any_db, broker)[0]


def attempt(
    db: Database, job_id: int, *, at: datetime, seconds: float | None, status: str = jobs.DONE
) -> None:
    """One claim of ``job_id`` at ``at``, finished ``seconds`` later (``None``: left running)."""
    with db.write() as conn:
        claimed = jobs.claim(
            conn,
            job_id,
            owner="worker-1",
            owner_alive=lambda _: False,
            max_crashes=10,
            stale_after=timedelta(hours=1),
            now=at,
        )
        assert claimed.claim is Claim.RUN
        if seconds is None:
            return
        row = jobs.get(conn, job_id)
        assert row is not None
        jobs.finish(
            conn, row, attempt=claimed.attempt, status=status, now=at + timedelta(seconds=seconds)
        )


def new_job(db: Database, actor: str, key: str) -> int:
    with db.write() as conn:
        ref = jobs.add(conn, school="s1", actor=actor, args={}, dedup_key=key)
    assert ref is not None
    return ref.id


# --- job attempts: histogram, retries, attempts ---------------------------------------------


def test_durations_become_a_histogram_and_retries_a_counter(
    any_db: Database, registry: CollectorRegistry
) -> None:
    hour_ago = utcnow() - timedelta(hours=1)
    push = new_job(any_db, "push_order", "a")
    attempt(any_db, push, at=hour_ago, seconds=0.2, status=jobs.RETRYING)
    attempt(any_db, push, at=hour_ago + timedelta(minutes=1), seconds=0.2, status=jobs.RETRYING)
    attempt(any_db, push, at=hour_ago + timedelta(minutes=2), seconds=0.2)
    # a recent attempt: not settled yet, counted all the same
    attempt(any_db, new_job(any_db, "push_order", "b"), at=utcnow(), seconds=3, status=jobs.FAILED)
    attempt(any_db, new_job(any_db, "send_message", "c"), at=hour_ago, seconds=0.04)

    samples = scrape(registry)

    buckets = {
        dict(labels)["le"]: v
        for labels, v in names(samples, "schoolsync_job_duration_seconds_bucket").items()
        if ("actor", "push_order") in labels
    }
    assert buckets == {
        "0.05": 0,
        "0.1": 0,
        "0.25": 3,
        "0.5": 3,
        "1.0": 3,
        "2.5": 3,
        "5.0": 4,
        "10.0": 4,
        "30.0": 4,
        "60.0": 4,
        "120.0": 4,
        "+Inf": 4,
    }
    assert value(samples, "schoolsync_job_duration_seconds_count", actor="push_order") == 4
    assert value(samples, "schoolsync_job_duration_seconds_sum", actor="push_order") == (
        pytest.approx(3.6)
    )
    assert (
        value(samples, "schoolsync_job_duration_seconds_bucket", actor="send_message", le="0.05")
        == 1
    )
    assert value(samples, "schoolsync_job_retries_total", actor="push_order") == 2
    assert value(samples, "schoolsync_job_retries_total", actor="send_message") == 0
    attempts = names(samples, "schoolsync_job_attempts_total")
    assert {tuple(sorted(labels)): v for labels, v in attempts.items()} == {
        (("actor", "push_order"), ("outcome", "failed")): 1,
        (("actor", "push_order"), ("outcome", "ok")): 1,
        (("actor", "push_order"), ("outcome", "retry")): 2,
        (("actor", "send_message"), ("outcome", "ok")): 1,
    }
    # the next scrape adds what finished since, and counts nothing twice
    attempt(any_db, new_job(any_db, "push_order", "d"), at=hour_ago, seconds=0.7)
    again = scrape(registry)
    assert value(again, "schoolsync_job_duration_seconds_count", actor="push_order") == 5
    assert value(again, "schoolsync_job_duration_seconds_bucket", actor="push_order", le="1.0") == 4
    assert value(again, "schoolsync_job_attempts_total", actor="push_order", outcome="ok") == 2


def test_running_totals_wait_for_unfinished_attempts_and_match_a_fresh_count(
    any_db: Database,
) -> None:
    hour_ago = utcnow() - timedelta(hours=1)
    running = new_job(any_db, "sync", "a")
    attempt(any_db, running, at=hour_ago, seconds=None)  # the lowest id, still running
    attempt(any_db, new_job(any_db, "sync", "b"), at=hour_ago, seconds=0.2)
    attempt(any_db, new_job(any_db, "sync", "c"), at=hour_ago, seconds=0.3)
    counters = AttemptCounters()

    def ok_count(c: AttemptCounters) -> tuple[int, int]:
        with any_db.read() as conn:
            (row,) = [r for r in c.read(conn, now=utcnow()) if r.outcome == "ok"]
        return row.count, row.duration_ms

    assert ok_count(counters) == (2, 500)
    assert ok_count(counters) == (2, 500)  # read again: nothing counted twice
    with any_db.write() as conn:  # the running attempt ends: now every one is settled
        row = jobs.get(conn, running)
        assert row is not None
        jobs.finish(conn, row, attempt=1, status=jobs.DONE, now=hour_ago + timedelta(seconds=1))
    assert ok_count(counters) == (3, 1500)
    assert ok_count(counters) == (3, 1500)
    assert ok_count(AttemptCounters()) == (3, 1500)  # a new process counts the same


def test_running_totals_start_over_when_the_store_goes_back(
    any_db: Database, tmp_path: Path
) -> None:
    hour_ago = utcnow() - timedelta(hours=1)
    for key in "abc":
        attempt(any_db, new_job(any_db, "sync", key), at=hour_ago, seconds=0.1)
    counters = AttemptCounters()
    with any_db.read() as conn:
        assert [r.count for r in counters.read(conn, now=utcnow())] == [3]
    restored = Database(f"sqlite:///{tmp_path / 'restored.db'}")
    upgrade(restored)
    attempt(restored, new_job(restored, "sync", "a"), at=hour_ago, seconds=0.1)

    with restored.read() as conn:
        assert [r.count for r in counters.read(conn, now=utcnow())] == [1]
    restored.dispose()


# --- inbox --------------------------------------------------------------------------------


def record(source: str, key: str, **kw: Any) -> inbox.InboxRecord:
    return inbox.InboxRecord(school="s1", source=source, dedup_key=key, body=b"{}", **kw)


def test_rejected_rows_are_counted_by_reason_category(
    any_db: Database, registry: CollectorRegistry
) -> None:
    reasons = {
        "r1": "signature: X-Signature does not match the body",
        "r2": "signature: missing X-Signature header",
        "r3": "source: 10.0.0.1 is not in YooKassa's networks",
        "r4": "malformed: body must be a JSON object",
        "r5": "replay",
        "r6": "something new: detail",
    }
    with any_db.write() as conn:
        for key, reason in reasons.items():
            source = "yookassa" if key == "r3" else "generic"
            inbox.insert(conn, record(source, key, status=inbox.REJECTED, reject_reason=reason))
        inbox.insert(conn, record("generic", "ok"))  # received: not a rejection

    rejected = {
        tuple(sorted(labels)): v
        for labels, v in names(scrape(registry), "schoolsync_inbox_rejected").items()
    }

    assert rejected == {
        (("reason", "signature"), ("source", "generic")): 2,
        (("reason", "ip"), ("source", "yookassa")): 1,
        (("reason", "malformed"), ("source", "generic")): 1,
        (("reason", "replay"), ("source", "generic")): 1,
        (("reason", "other"), ("source", "generic")): 1,
    }


def test_oldest_unprocessed_inbox_row_age(any_db: Database, registry: CollectorRegistry) -> None:
    assert value(scrape(registry), "schoolsync_inbox_unprocessed_oldest_seconds") == 0
    now = utcnow()
    with any_db.write() as conn:
        done = inbox.insert(conn, record("generic", "old"), now=now - timedelta(hours=2))
        assert done is not None
        inbox.mark_processed(conn, done)
        inbox.insert(
            conn,
            record("generic", "bad", status=inbox.REJECTED, reject_reason="signature: x"),
            now=now - timedelta(hours=1),
        )
        inbox.insert(conn, record("generic", "waiting"), now=now - timedelta(minutes=10))
        inbox.insert(conn, record("generic", "new"), now=now)

    age = value(scrape(registry), "schoolsync_inbox_unprocessed_oldest_seconds")

    assert age == pytest.approx(600, abs=5)


# --- reconciliation and the outbox ---------------------------------------------------------


def finding(subject: str) -> reconcile.Finding:
    return reconcile.Finding(
        subject=subject,
        kind="unmatched",
        rule="none",
        score=0.0,
        explanation="no order",
        payment_ids=(1,),
        order_ids=(),
        candidates=(),
        status=reconcile.OPEN,
    )


def test_reconcile_queue_counts_open_items_per_school(
    any_db: Database, registry: CollectorRegistry
) -> None:
    with any_db.write() as conn:
        reconcile.record_run(conn, "north", [finding("p:1"), finding("p:2")])
        reconcile.record_run(conn, "south", [finding("p:3")])
        (item,) = reconcile.listing(conn, "south")
        assert reconcile.settle(conn, item["id"], status=reconcile.RESOLVED, who="ann", choice={})

    queue = names(scrape(registry), "schoolsync_reconcile_queue")

    assert queue == {frozenset({("school", "north")}): 2}


def test_outbox_lag_is_the_age_of_the_oldest_job_missing_from_redis(
    any_db: Database, registry: CollectorRegistry
) -> None:
    now = utcnow()

    def job(key: str, **values: Any) -> None:
        job_id = new_job(any_db, "sync", key)
        with any_db.write() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job_id).values(**values))

    job("sent", created_at=now - timedelta(hours=3), enqueued_at=now - timedelta(minutes=5))
    job("done", created_at=now - timedelta(hours=4), status=jobs.DONE)
    assert value(scrape(registry), "schoolsync_outbox_lag_seconds") == 0

    job("unsent", created_at=now - timedelta(minutes=5))  # written, never enqueued
    assert value(scrape(registry), "schoolsync_outbox_lag_seconds") == pytest.approx(300, abs=5)

    # a retry due 20 min ago that never came back (past the relay's 10 min)
    job("lost", status=jobs.RETRYING, next_attempt_at=now - timedelta(minutes=20))
    assert value(scrape(registry), "schoolsync_outbox_lag_seconds") == pytest.approx(1200, abs=5)


# --- the whole web role -------------------------------------------------------------------

SECRET = b"test-secret"


@pytest.fixture
def web(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        generic_secret=SECRET.decode(),
        config=tmp_path / "missing.yaml",
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    with TestClient(FastPath(create_app(runtime))) as test_client:
        yield test_client, runtime


CONTRACT = {
    "schoolsync_webhooks_total": {"source", "outcome"},
    "schoolsync_inbox_events": {"source", "status"},
    "schoolsync_inbox_rejected": {"source", "reason"},
    "schoolsync_inbox_unprocessed_oldest_seconds": set(),
    "schoolsync_jobs": {"actor", "status"},
    "schoolsync_job_attempts_total": {"actor", "outcome"},
    "schoolsync_job_duration_seconds_bucket": {"actor", "le"},
    "schoolsync_job_duration_seconds_sum": {"actor"},
    "schoolsync_job_duration_seconds_count": {"actor"},
    "schoolsync_job_retries_total": {"actor"},
    "schoolsync_pacing_waits_total": {"platform"},
    "schoolsync_pacing_wait_seconds_total": {"platform"},
    "schoolsync_platform_429_total": {"platform"},
    "schoolsync_failures_open": {"error_class"},
    "schoolsync_reconcile_queue": {"school"},
    "schoolsync_outbox_lag_seconds": set(),
    "schoolsync_queue_depth": set(),
}


def test_the_web_role_serves_every_metric_of_the_contract(
    web: tuple[TestClient, Runtime],
) -> None:
    client, runtime = web
    body = json.dumps({"id": "evt-1", "type": "x"}).encode()
    assert (
        client.post("/webhooks/generic", content=body, headers={"X-Signature": "00"}).status_code
        == 401
    )
    good = json.dumps({"id": "evt-2", "type": "x"}).encode()
    client.post("/webhooks/generic", content=good, headers={"X-Signature": sign(SECRET, good)})
    # a worker elsewhere: its pacer shares the deployment's Redis and namespace
    pacer = Pacer(
        runtime.broker.client, "amocrm", "school", rate=50, namespace=runtime.broker.namespace
    )
    pacer.acquire(max_wait=5)
    pacer.acquire(max_wait=5)
    pacer.penalize(0)
    job_id = new_job(runtime.db, "push_order", "x")
    attempt(runtime.db, job_id, at=utcnow(), seconds=1.5, status=jobs.FAILED)
    with runtime.db.write() as conn:
        reconcile.record_run(conn, "default", [finding("p:1")])

    response = client.get("/metrics")
    samples = scrape_text(response.text)

    assert response.status_code == 200
    assert value(samples, "schoolsync_inbox_rejected", source="generic", reason="signature") == 1
    assert value(samples, "schoolsync_pacing_waits_total", platform="amocrm") == 1
    assert (
        0 < (value(samples, "schoolsync_pacing_wait_seconds_total", platform="amocrm") or 0) < 0.1
    )
    assert value(samples, "schoolsync_platform_429_total", platform="amocrm") == 1
    assert (
        value(samples, "schoolsync_job_duration_seconds_bucket", actor="push_order", le="2.5") == 1
    )
    assert (
        value(samples, "schoolsync_job_duration_seconds_bucket", actor="push_order", le="1.0") == 0
    )
    assert value(samples, "schoolsync_reconcile_queue", school="default") == 1
    served: dict[str, set[str]] = {}
    for name, labels in samples:
        served.setdefault(name, set()).update(k for k, _ in labels)
    for name, label_names in CONTRACT.items():
        assert name in served, name
        assert served[name] == label_names, name
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families["schoolsync_job_duration_seconds"] == "histogram"
    for counter in ("schoolsync_job_retries", "schoolsync_pacing_waits", "schoolsync_platform_429"):
        assert families[counter] == "counter"
