"""W14 from the outside: ``/admin/api/*`` over a real SQLite file and Redis, with an operator
and a viewer token: every endpoint answers both roles, a wrong token is 401, a viewer acting is
403 (and audited), a viewer sees personal data masked, and schemathesis finds no request that
gets a 500 from the running app."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import audit, failures
from schoolsync.core.domain import Money
from schoolsync.core.settings import AdminToken, Settings
from schoolsync.core.stores import inbox, jobs
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.core.stores.payments import NewPayment
from schoolsync.sync_jobs.services.bulk_replay import run_bulk_replay
from tests.conftest import RedisServer, free_port

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"
LEGACY = "legacy-admin-token-0123"
EMAIL = "maria.petrova@example.org"
VIP = "order {n}: product 'Пакет VIP' is unknown; add it to schools[default].mappings.amocrm.products in schoolsync.yaml"


@pytest.fixture
def app_settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    config = tmp_path / "schoolsync.yaml"
    config.write_text("channels:\n  refunds: -1001000000003\n", encoding="utf-8")
    return Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        config=config,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        admin_token=LEGACY,
        admin_tokens={
            "olga": AdminToken(token=OPERATOR, role="operator"),
            "vera": AdminToken(token=VIEWER, role="viewer"),
        },
        sandbox=False,
    )


def fail(runtime: Runtime, number: str, message: str, *, actor: str = "resend_order_to_crm") -> int:
    """A failure as the CRM push records one (a job of its own, failed)."""
    with runtime.db.write() as conn:
        job_id = jobs.fail_as_job(
            conn,
            school="default",
            actor=actor,
            args={"school": "default", "platform": "getcourse", "account": "gc", "number": number},
            key=f"crm-order:default:getcourse:gc:{number}",
            error_class="UnmappableError",
            error=message,
        )
        return int(
            conn.execute(sa.select(failures.c.id).where(failures.c.job_id == job_id)).scalar_one()
        )


@pytest.fixture
def runtime(app_settings: Settings) -> Runtime:
    runtime = build_runtime(app_settings)
    upgrade(runtime.db)
    for n in ("1001", "1002", "1003"):
        fail(runtime, n, VIP.format(n=n))
    fail(runtime, "1004", f"order 1004: manager '{EMAIL}' has no amoCRM user")
    with runtime.db.write() as conn:
        good = inbox.insert(
            conn,
            InboxRecord(
                school="default",
                source="getcourse",
                dedup_key="gc:1",
                body=f'{{"email": "{EMAIL}", "phone": "+79231234567"}}'.encode(),
                query=f"secret=s3cr3t-value&email={EMAIL}",
                headers={"x-signature": "abcdef", "user-agent": "GetCourse"},
            ),
        )
        inbox.mark_processed(conn, int(good or 0))
        inbox.insert(
            conn,
            InboxRecord(
                school="default",
                source="yookassa",
                dedup_key="yk:1",
                body=b"{}",
                status=inbox.REJECTED,
                reject_reason="bad signature",
            ),
        )
        paid = ledger.record(
            conn,
            "default",
            NewPayment(
                source="card_transfer",
                external_id="tg:1",
                amount=Money(amount=Decimal(2500)),
                payer_name="Петрова Мария",
                payer_email=EMAIL,
            ),
        )
        findings.record_run(
            conn,
            "default",
            [
                findings.Finding(
                    subject=f"payment:{paid.id}",
                    kind="ambiguous",
                    rule="name",
                    score=0.8,
                    explanation=f"two orders of {EMAIL}",
                    payment_ids=(paid.id,),
                    order_ids=(),
                    candidates=("5001", "5002"),
                    status="open",
                )
            ],
        )
    return runtime


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(FastPath(create_app(runtime))) as test_client:
        yield test_client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


READS = [
    "/admin/api/overview",
    "/admin/api/failures",
    "/admin/api/failures?status=open&class=UnmappableError&platform=amocrm",
    "/admin/api/failures/groups",
    "/admin/api/failures/1",
    "/admin/api/bulk-replays",
    "/admin/api/inbox",
    "/admin/api/inbox/1",
    "/admin/api/reconcile",
    "/admin/api/reconcile/1",
    "/admin/api/audit",
]


@pytest.mark.parametrize("path", READS)
def test_every_read_answers_both_roles_and_refuses_a_wrong_token(
    client: TestClient, path: str
) -> None:
    assert client.get(path, headers=auth(OPERATOR)).status_code == 200
    assert client.get(path, headers=auth(VIEWER)).status_code == 200
    assert client.get(path, headers=auth(LEGACY)).status_code == 200  # the single token still works
    assert client.get(path).status_code == 401
    assert client.get(path, headers=auth("wrong-token-0123456789")).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {OPERATOR}"}).status_code == 401


def test_without_any_token_configured_the_admin_api_is_off(
    runtime: Runtime, app_settings: Settings
) -> None:
    runtime.settings = app_settings.model_copy(update={"admin_token": None, "admin_tokens": {}})
    with TestClient(FastPath(create_app(runtime))) as off:
        assert off.get("/admin/api/failures", headers=auth(OPERATOR)).status_code == 404


ACTIONS: list[tuple[str, dict[str, Any] | None]] = [
    ("/admin/api/failures/1/replay", None),
    ("/admin/api/failures/1/resolve", {"comment": "done by hand"}),
    ("/admin/api/failures/1/ignore", {"comment": "test order"}),
    ("/admin/api/failures/bulk-replay", {"dry_run": False}),
    ("/admin/api/bulk-replays/1/cancel", None),
    ("/admin/api/inbox/1/replay", None),
    ("/admin/api/reconcile/1/resolve", {"not_ours": True}),
    ("/admin/api/feedback", {"text": "хорошо"}),
]


def test_a_viewer_cannot_act_and_the_refusal_is_audited(
    client: TestClient, runtime: Runtime
) -> None:
    operator_bulk = client.post(
        "/admin/api/failures/bulk-replay",
        json={"dry_run": False, "entity": "no-such-order"},
        headers=auth(OPERATOR),
    )
    assert operator_bulk.status_code == 202  # so that bulk replay 1 exists

    for path, body in ACTIONS:
        answer = client.post(path, json=body, headers=auth(VIEWER))
        assert answer.status_code == 403, (path, answer.text)
        assert client.post(path, json=body).status_code == 401

    with runtime.db.read() as conn:
        refused = conn.execute(
            sa.select(audit.c.who, audit.c.action, audit.c.outcome).where(audit.c.who == "api:vera")
        ).all()
        statuses = set(conn.execute(sa.select(failures.c.status)).scalars())
    assert {r.action for r in refused} == {
        "replay",
        "resolve",
        "ignore",
        "bulk_replay",
        "cancel",
        "reconcile_resolve",
    }
    assert {r.outcome for r in refused} == {"failed"}
    assert statuses == {"open"}


def test_a_viewer_sees_personal_data_masked_an_operator_sees_it(client: TestClient) -> None:
    def texts(token: str) -> str:
        return "".join(
            client.get(path, headers=auth(token)).text
            for path in (
                "/admin/api/failures",
                "/admin/api/failures/4",
                "/admin/api/failures/groups",
                "/admin/api/overview",
                "/admin/api/inbox/1",
                "/admin/api/reconcile",
                "/admin/api/reconcile/1",
            )
        )

    seen_by_viewer = texts(VIEWER)
    seen_by_operator = texts(OPERATOR)
    assert EMAIL not in seen_by_viewer and "m***@example.org" in seen_by_viewer
    assert "+79231234567" not in seen_by_viewer
    assert EMAIL in seen_by_operator
    for seen in (seen_by_viewer, seen_by_operator):  # secrets: nobody
        assert "s3cr3t-value" not in seen and "abcdef" not in seen


def test_filters_and_cursor_pages(client: TestClient) -> None:
    def ids(query: str, token: str = VIEWER) -> list[int]:
        answer = client.get(f"/admin/api/failures?{query}", headers=auth(token))
        assert answer.status_code == 200, answer.text
        return [f["id"] for f in answer.json()["items"]]

    assert ids("") == [4, 3, 2, 1]
    assert ids("entity=1002") == [2]
    assert ids(f"entity={EMAIL}", OPERATOR) == [4]
    # a viewer searching by a (partial) email would learn what the masking hides
    for probe in (EMAIL, "iv***@mail.ru", "mail.ru"):
        refused = client.get(f"/admin/api/failures?entity={probe}", headers=auth(VIEWER))
        assert refused.status_code == 422 and "order number" in refused.text
    assert ids("actor=resend_order_to_crm&platform=amocrm&status=open") == [4, 3, 2, 1]
    assert ids("platform=getcourse") == []
    assert ids("class=AuthError") == []
    assert ids("since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00") == [4, 3, 2, 1]
    assert ids("since=2100-01-01T00:00:00Z") == []

    pages: list[list[int]] = []
    cursor = ""
    while True:
        answer = client.get(f"/admin/api/failures?limit=3{cursor}", headers=auth(VIEWER)).json()
        pages.append([f["id"] for f in answer["items"]])
        if answer["next_cursor"] is None:
            break
        cursor = f"&cursor={answer['next_cursor']}"
    assert pages == [[4, 3, 2], [1]]
    assert (
        client.get("/admin/api/failures?cursor=nonsense", headers=auth(VIEWER)).status_code == 422
    )


def test_groups_by_root_cause_and_a_group_filter(client: TestClient) -> None:
    groups = client.get("/admin/api/failures/groups", headers=auth(OPERATOR)).json()
    assert [(g["count"], g["error_class"]) for g in groups] == [
        (3, "UnmappableError"),
        (1, "UnmappableError"),
    ]
    assert "product 'Пакет VIP' is unknown" in groups[0]["pattern"]
    assert "1001" not in groups[0]["pattern"]
    in_group = client.get(
        f"/admin/api/failures?group={groups[0]['key']}", headers=auth(OPERATOR)
    ).json()
    assert [f["id"] for f in in_group["items"]] == [3, 2, 1]

    overview = client.get("/admin/api/overview", headers=auth(VIEWER)).json()
    assert overview["total"] == 4 and overview["open_total"] == 4
    assert overview["by_platform"] == {"amocrm": 4}
    assert overview["by_actor"] == {"resend_order_to_crm": 4}
    assert overview["inbox"] == {"processed": 1, "rejected": 1}
    assert overview["reconcile_open"] == 1
    assert overview["top_groups"][0]["count"] == 3


def test_an_operator_replays_resolves_and_ignores_once_each_with_the_audit_trail(
    client: TestClient, runtime: Runtime
) -> None:
    replay = client.post("/admin/api/failures/1/replay", headers=auth(OPERATOR))
    again = client.post("/admin/api/failures/1/replay", headers=auth(OPERATOR))
    resolve = client.post(
        "/admin/api/failures/2/resolve", json={"comment": "fixed by hand"}, headers=auth(OPERATOR)
    )
    ignore = client.post("/admin/api/failures/3/ignore", json={}, headers=auth(OPERATOR))
    ignore_again = client.post("/admin/api/failures/3/ignore", json={}, headers=auth(OPERATOR))
    missing = client.post("/admin/api/failures/99/replay", headers=auth(OPERATOR))

    assert replay.status_code == 202, replay.text
    assert again.status_code == 409 and "replaying, not open" in again.json()["detail"]
    assert resolve.json()["status"] == "resolved" and ignore.json()["status"] == "ignored"
    assert ignore_again.status_code == 409
    assert missing.status_code == 404
    statuses = {
        f["id"]: f["status"]
        for f in client.get("/admin/api/failures", headers=auth(VIEWER)).json()["items"]
    }
    assert statuses == {1: "replaying", 2: "resolved", 3: "ignored", 4: "open"}

    detail = client.get("/admin/api/failures/2", headers=auth(VIEWER)).json()
    assert [(a["who"], a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("api:olga", "resolve", "succeeded")
    ]
    assert detail["audit"][0]["detail"]["comment"] == "fixed by hand"
    assert detail["args"]["number"] == "1002"
    trail = client.get("/admin/api/audit?target=failure:", headers=auth(VIEWER)).json()["items"]
    assert [(e["target"], e["action"], e["outcome"]) for e in trail] == [
        ("failure:3", "ignore", "failed"),
        ("failure:3", "ignore", "succeeded"),
        ("failure:2", "resolve", "succeeded"),
        ("failure:1", "replay", "failed"),
        ("failure:1", "replay", "pending"),  # settled by the job's outcome
    ]


def test_bulk_replay_dry_run_then_the_job_then_nothing_left(
    client: TestClient, runtime: Runtime
) -> None:
    body = {"actor": "resend_order_to_crm", "class": "UnmappableError"}
    body = {"actor": "resend_order_to_crm", "error_class": "UnmappableError"}
    dry = client.post("/admin/api/failures/bulk-replay", json=body, headers=auth(VIEWER))
    assert dry.status_code == 200, dry.text
    assert dry.json()["total"] == 4
    # no amoCRM account here: the CRM pre-check says so
    assert dry.json()["summary"] == (
        "4 failures: 4 would do nothing: the school has no amoCRM account or mapping"
    )

    started = client.post(
        "/admin/api/failures/bulk-replay", json={**body, "dry_run": False}, headers=auth(OPERATOR)
    )
    assert started.status_code == 202, started.text
    bulk = started.json()
    assert (bulk["status"], bulk["total"], bulk["done"], bulk["who"]) == (
        "queued",
        4,
        0,
        "api:olga",
    )
    run_bulk_replay(runtime.context, bulk["id"])  # what the worker does
    status = client.get(f"/admin/api/bulk-replays/{bulk['id']}", headers=auth(VIEWER)).json()
    assert (status["status"], status["done"], status["skipped"]) == ("done", 4, 0)
    cancel = client.post(f"/admin/api/bulk-replays/{bulk['id']}/cancel", headers=auth(OPERATOR))
    assert cancel.status_code == 200 and cancel.json()["status"] == "done"

    second = client.post(
        "/admin/api/failures/bulk-replay", json={**body, "dry_run": False}, headers=auth(OPERATOR)
    ).json()
    assert (second["status"], second["total"], second["job_id"]) == ("done", 0, None)
    listed = client.get("/admin/api/bulk-replays", headers=auth(VIEWER)).json()
    assert [b["id"] for b in listed] == [second["id"], bulk["id"]]
    assert client.get("/admin/api/bulk-replays/999", headers=auth(VIEWER)).status_code == 404


def test_inbox_browser_and_replay(client: TestClient) -> None:
    rejected = client.get("/admin/api/inbox?status=rejected", headers=auth(VIEWER)).json()
    assert [(e["source"], e["reject_reason"]) for e in rejected["items"]] == [
        ("yookassa", "bad signature")
    ]
    detail = client.get("/admin/api/inbox/1", headers=auth(OPERATOR)).json()
    assert detail["headers"]["x-signature"] == "***"
    assert detail["query"].startswith("secret=***")
    assert client.post("/admin/api/inbox/2/replay", headers=auth(OPERATOR)).status_code == 409
    assert client.post("/admin/api/inbox/1/replay", headers=auth(OPERATOR)).status_code == 202
    assert client.post("/admin/api/inbox/9/replay", headers=auth(OPERATOR)).status_code == 404
    assert client.get("/admin/api/inbox/9", headers=auth(OPERATOR)).status_code == 404


def test_reconciliation_queue_side_by_side_and_resolve_once(client: TestClient) -> None:
    (item,) = client.get("/admin/api/reconcile", headers=auth(VIEWER)).json()
    assert item["candidates"] == ["5001", "5002"]
    detail = client.get(f"/admin/api/reconcile/{item['id']}", headers=auth(VIEWER)).json()
    assert detail["payments"][0]["amount"] == "2500.00"
    assert detail["payments"][0]["payer_email"] == "m***@example.org"

    bad = client.post(f"/admin/api/reconcile/{item['id']}/resolve", json={}, headers=auth(OPERATOR))
    done = client.post(
        f"/admin/api/reconcile/{item['id']}/resolve",
        json={"not_ours": True, "comment": "a refund from a shop"},
        headers=auth(OPERATOR),
    )
    again = client.post(
        f"/admin/api/reconcile/{item['id']}/resolve",
        json={"not_ours": True},
        headers=auth(OPERATOR),
    )
    assert bad.status_code == 422
    assert done.status_code == 200 and "marked not ours" in done.json()["message"]
    assert again.status_code == 409
    assert client.get("/admin/api/reconcile", headers=auth(VIEWER)).json() == []
    trail = client.get(
        f"/admin/api/audit?target=reconcile:{item['id']}", headers=auth(VIEWER)
    ).json()["items"]
    assert [(e["who"], e["outcome"]) for e in trail] == [
        ("api:olga", "failed"),
        ("api:olga", "succeeded"),
    ]


# --- schemathesis against the running app --------------------------------------------------


@contextlib.contextmanager
def running(runtime: Runtime) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            FastPath(create_app(runtime)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(runtime: Runtime) -> Iterator[str]:
    with running(runtime) as base_url:
        yield base_url


def test_no_request_gets_a_server_error(served: str) -> None:
    """Every operation of the OpenAPI document, valid and invalid input, with both roles."""
    api = schemathesis.openapi.from_url(f"{served}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=8,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                for token in (OPERATOR, VIEWER):
                    response = case.call(base_url=served, headers=auth(token))
                    assert response.status_code < 500, (
                        case.method,
                        case.formatted_path,
                        response.text[:500],
                    )

            try:
                check()
            except Unsatisfiable:  # nothing to get wrong (an operation with no parameters)
                assert mode is GenerationMode.NEGATIVE, operation.label


def test_the_openapi_document_lists_the_console(served: str) -> None:
    paths = httpx.get(f"{served}/openapi.json").json()["paths"]
    for path in (
        "/admin/api/overview",
        "/admin/api/failures",
        "/admin/api/failures/{failure_id}/replay",
        "/admin/api/failures/bulk-replay",
        "/admin/api/bulk-replays/{bulk_id}/cancel",
        "/admin/api/inbox/{inbox_id}/replay",
        "/admin/api/reconcile/{item_id}/resolve",
        "/admin/api/audit",
    ):
        assert path in paths
