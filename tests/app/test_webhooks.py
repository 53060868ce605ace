from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from schoolsync.app.bootstrap import build_runtime
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.connectors.generic.webhooks import sign
from schoolsync.core.db.tables import inbox, jobs
from schoolsync.core.settings import Settings
from tests.conftest import RedisServer

SECRET = b"test-secret"


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    return Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        generic_secret=SECRET.decode(),
        config=tmp_path / "missing.yaml",
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from schoolsync.core.db.migrate import upgrade

    runtime = build_runtime(settings)
    upgrade(runtime.db)
    # what `schoolsync web` serves: /webhooks/* on the plain router, the rest on FastAPI
    with TestClient(FastPath(create_app(runtime))) as test_client:
        test_client.runtime = runtime  # type: ignore[attr-defined]
        yield test_client


def post(client: TestClient, body: bytes, signature: str | None = None, source: str = "generic"):
    headers = {"X-Signature": signature if signature is not None else sign(SECRET, body)}
    return client.post(f"/webhooks/{source}", content=body, headers=headers)


def rows(client: TestClient, table: sa.Table) -> list[dict]:
    with client.runtime.db.read() as conn:  # type: ignore[attr-defined]
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def test_signed_event_is_stored_with_its_job_and_enqueued(client: TestClient) -> None:
    body = json.dumps({"id": "evt-1", "type": "order.created"}).encode()
    response = post(client, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    stored = rows(client, inbox)
    assert [(r["source"], r["dedup_key"], r["status"], r["body"]) for r in stored] == [
        ("generic", "evt-1", "received", body)
    ]
    (job,) = rows(client, jobs)
    assert job["actor"] == "process_inbox_event"
    assert job["args"] == {"inbox_id": stored[0]["id"]}
    # the enqueue time is written by the writer's next transaction, or within 0.2 s when idle
    deadline = time.monotonic() + 5
    while rows(client, jobs)[0]["enqueued_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(client, jobs)[0]["enqueued_at"] is not None
    broker = client.runtime.broker  # type: ignore[attr-defined]
    assert broker.client.llen("schoolsync:default") == 1


def test_duplicate_delivery_is_answered_200_without_a_second_row(client: TestClient) -> None:
    body = json.dumps({"id": 42, "type": "x"}).encode()
    assert post(client, body).json()["status"] == "accepted"
    second = post(client, body)
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert len(rows(client, inbox)) == 1
    assert len(rows(client, jobs)) == 1


def test_forged_signature_is_401_and_kept_as_rejected(client: TestClient) -> None:
    body = json.dumps({"id": "evt-2", "type": "x"}).encode()
    response = post(client, body, signature=sign(b"wrong", body))
    assert response.status_code == 401
    assert "does not match" in response.json()["error"]
    (row,) = rows(client, inbox)
    assert row["status"] == "rejected"
    assert row["reject_reason"].startswith("signature:")
    assert rows(client, jobs) == []


def test_missing_signature_is_401(client: TestClient) -> None:
    response = client.post("/webhooks/generic", content=b'{"id": "1", "type": "x"}')
    assert response.status_code == 401
    assert "missing X-Signature" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"id": "1", "type": ', "not valid JSON at line 1 column 21"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"type": "x"}', "field 'id': Field required"),
    ],
)
def test_malformed_body_is_400_naming_the_problem(
    client: TestClient, body: bytes, problem: str
) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert problem in response.json()["error"]
    (row,) = rows(client, inbox)
    assert row["status"] == "rejected"
    assert problem in row["reject_reason"]
    assert rows(client, jobs) == []


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    body = json.dumps({"id": "big", "type": "x", "data": {"blob": "a" * 1_100_000}}).encode()
    assert post(client, body).status_code == 413
    assert rows(client, inbox) == []


def test_unknown_source_is_404(client: TestClient) -> None:
    assert post(client, b"{}", source="nosuch").status_code == 404


def test_generic_source_is_off_without_its_secret(settings: Settings) -> None:
    runtime = build_runtime(settings.model_copy(update={"generic_secret": None}))
    with TestClient(create_app(runtime)) as off:
        assert off.post("/webhooks/generic", content=b"{}").status_code == 404


def test_database_unavailable_is_503_so_the_sender_retries(settings: Settings) -> None:
    from schoolsync.core.db.migrate import upgrade

    runtime = build_runtime(settings)
    upgrade(runtime.db)
    runtime.db.engine.dispose()
    # another process holds the write lock longer than the busy timeout
    import sqlite3

    locker = sqlite3.connect(str(settings.data_dir / "state.db"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    from schoolsync.core.db import Database

    runtime.db = Database(settings.effective_database_url, busy_timeout_ms=200)
    runtime.queue.db = runtime.db
    try:
        with TestClient(FastPath(create_app(runtime))) as test_client:
            body = json.dumps({"id": "evt-3", "type": "x"}).encode()
            response = post(test_client, body)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert response.status_code == 503
    assert "retry later" in response.json()["error"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readiness_fails_when_redis_is_down(client: TestClient, redis_server: RedisServer) -> None:
    redis_server.stop()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable")


def test_metrics_count_webhooks_by_outcome(client: TestClient) -> None:
    body = json.dumps({"id": "m1", "type": "x"}).encode()
    post(client, body)
    post(client, body)
    post(client, body, signature="00")
    text = client.get("/metrics").text
    assert 'schoolsync_webhooks_total{outcome="accepted",source="generic"} 1.0' in text
    assert 'schoolsync_webhooks_total{outcome="duplicate",source="generic"} 1.0' in text
    assert 'schoolsync_webhooks_total{outcome="rejected_signature",source="generic"} 1.0' in text
    assert "schoolsync_queue_depth 1.0" in text


def test_concurrent_deliveries_of_one_event_store_it_once(client: TestClient) -> None:
    body = json.dumps({"id": "race", "type": "x"}).encode()
    results: list[int] = []

    def deliver() -> None:
        results.append(post(client, body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    assert len(rows(client, inbox)) == 1
    assert len(rows(client, jobs)) == 1
