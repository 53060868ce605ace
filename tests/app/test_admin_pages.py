"""W14 pages: ``/admin/`` over a real SQLite file and Redis, signed in through the form with an
operator and a viewer token: every page renders for both roles, a viewer sees personal data
masked and no action buttons and is refused (403, audited) when posting anyway, a form without
its CSRF field is refused, the UI speaks Russian by default and English on request, and an
operator replays, resolves, dry-runs and bulk-replays from the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.web.admin_i18n import EN, RU, choose
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import audit, bulk_replays, failures
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.settings import AdminToken, Settings
from schoolsync.core.stores import inbox, jobs
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.core.stores.payments import NewPayment
from tests.conftest import RedisServer

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"
EMAIL = "maria.petrova@example.org"
VIP = "order {n}: product 'Пакет VIP' is unknown; add it to schools[default].mappings.amocrm.products in schoolsync.yaml"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture
def runtime(tmp_path: Path, redis_server: RedisServer) -> Runtime:
    config = tmp_path / "schoolsync.yaml"
    config.write_text("channels:\n  refunds: -1001000000003\n", encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        config=config,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        admin_tokens={
            "olga": AdminToken(token=OPERATOR, role="operator"),
            "vera": AdminToken(token=VIEWER, role="viewer"),
        },
        sandbox=False,
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    with runtime.db.write() as conn:
        for n in ("1001", "1002", "1003"):
            _fail(conn, n, VIP.format(n=n), account="gc")
        _fail(conn, "1004", f"order 1004: manager '{EMAIL}' has no amoCRM user", account="gc2")
        inbox.insert(
            conn,
            InboxRecord(
                school="default",
                source="yookassa",
                dedup_key="yk:1",
                body=f'{{"email": "{EMAIL}"}}'.encode(),
                status=inbox.REJECTED,
                reject_reason="bad signature",
            ),
        )
        order_store.upsert_many(
            conn,
            "default",
            [
                Order(
                    platform="getcourse",
                    account="gc",
                    number=number,
                    status=OrderStatus.NEW,
                    product="Пакет Стандарт",
                    cost=Money(amount=Decimal(2500)),
                    customer=Customer(email=EMAIL, first_name="Мария", last_name="Петрова"),
                )
                for number in ("5001", "5002")
            ],
            push=False,
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


def _fail(conn: sa.Connection, number: str, message: str, *, account: str) -> None:
    jobs.fail_as_job(
        conn,
        school="default",
        actor="resend_order_to_crm",
        args={"school": "default", "platform": "getcourse", "account": account, "number": number},
        key=f"crm-order:default:getcourse:{account}:{number}",
        error_class="UnmappableError",
        error=message,
    )


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(FastPath(create_app(runtime)), follow_redirects=False) as test_client:
        yield test_client


def csrf(client: TestClient, path: str = "/admin/login") -> str:
    found = CSRF.search(client.get(path).text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> None:
    answer = client.post("/admin/login", data={"token": token, "csrf": csrf(client)})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/admin/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie


def status_of(runtime: Runtime, failure_id: int) -> str:
    with runtime.db.read() as conn:
        return str(
            conn.execute(sa.select(failures.c.status).where(failures.c.id == failure_id)).scalar()
        )


def test_signing_in_with_a_wrong_token_shows_the_error_and_no_session(client: TestClient) -> None:
    assert client.get("/admin/").status_code == 303  # not signed in: to the sign-in page
    answer = client.post("/admin/login", data={"token": "wrong-token-0123", "csrf": csrf(client)})
    assert answer.status_code == 401
    assert "Неверный токен" in answer.text
    assert client.get("/admin/failures").headers["location"] == "/admin/login"


def test_without_any_token_configured_the_pages_are_off(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"admin_tokens": {}})
    with TestClient(FastPath(create_app(runtime)), follow_redirects=False) as off:
        assert off.get("/admin/").status_code == 404
        assert off.get("/admin/login").status_code == 404


PAGES = [
    "/admin/",
    "/admin/failures",
    "/admin/failures?status=all&platform=getcourse&class=UnmappableError&since=2020-01-01T00:00",
    "/admin/failures?account=gc2&status=all",
    "/admin/failures/4",
    "/admin/inbox",
    "/admin/inbox?status=all",
    "/admin/inbox/1",
    "/admin/reconcile",
    "/admin/reconcile/1",
]


@pytest.mark.parametrize("token", [OPERATOR, VIEWER])
def test_every_page_renders_for_both_roles(client: TestClient, token: str) -> None:
    sign_in(client, token)
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[-500:])
        assert answer.headers["cache-control"] == "no-store"
        assert "script-src" not in answer.headers["content-security-policy"]  # none allowed
    assert client.get("/admin/failures/999").status_code == 404
    assert client.get("/admin/failures?since=yesterday").status_code == 422


def test_the_account_filter_narrows_to_the_jobs_of_that_account(client: TestClient) -> None:
    sign_in(client, OPERATOR)
    listed = client.get("/admin/failures?account=gc2").text
    assert 'href="/admin/failures/4"' in listed and 'href="/admin/failures/1"' not in listed


def test_a_viewer_sees_masked_data_and_no_action_buttons(client: TestClient) -> None:
    sign_in(client, VIEWER)
    seen = "".join(client.get(path).text for path in PAGES)
    assert EMAIL not in seen and "m***@example.org" in seen
    for action in ("/replay", "/resolve", "/ignore", "/bulk/dry-run", 'type="checkbox"'):
        assert action not in seen, action
    assert 'name="choice"' not in seen

    sign_in(client, OPERATOR)
    seen = "".join(client.get(path).text for path in PAGES)
    assert EMAIL in seen and 'action="/admin/failures/4/replay"' in seen


def test_the_reconciliation_item_shows_its_candidate_orders_side_by_side(
    client: TestClient,
) -> None:
    sign_in(client, OPERATOR)
    page = client.get("/admin/reconcile/1").text
    assert page.count('class="card order"') == 2
    assert 'value="order:5001"' in page and 'value="order:5002"' in page
    assert 'value="not_ours"' in page


def test_a_viewer_posting_anyway_is_refused_and_audited(
    client: TestClient, runtime: Runtime
) -> None:
    sign_in(client, VIEWER)
    token = csrf(client, "/admin/failures")
    for path, data in [
        ("/admin/failures/1/replay", {}),
        ("/admin/failures/1/resolve", {"comment": "by hand"}),
        ("/admin/failures/1/ignore", {}),
        ("/admin/bulk/dry-run", {"scope": "filter"}),
        ("/admin/bulk/confirm", {"scope": "filter"}),
        ("/admin/inbox/1/replay", {}),
        ("/admin/reconcile/1/resolve", {"choice": "not_ours"}),
    ]:
        answer = client.post(path, data={**data, "csrf": token})
        assert answer.status_code == 403, (path, answer.text[-300:])
    with runtime.db.read() as conn:
        refused = conn.execute(sa.select(audit.c.action).where(audit.c.who == "api:vera")).all()
    assert len(refused) == 7
    assert status_of(runtime, 1) == "open"


def test_a_post_without_its_csrf_token_is_refused(client: TestClient, runtime: Runtime) -> None:
    sign_in(client, OPERATOR)
    assert client.post("/admin/failures/1/replay").status_code == 403
    assert client.post("/admin/failures/1/replay", data={"csrf": "0" * 64}).status_code == 403
    assert client.post("/admin/login", data={"token": OPERATOR}).status_code == 403
    too_big = client.post("/admin/failures/1/resolve", data={"comment": "x" * 70_000})
    assert too_big.status_code == 413
    assert status_of(runtime, 1) == "open"


def test_the_language_is_russian_by_default_english_on_request_and_remembered(
    client: TestClient,
) -> None:
    sign_in(client, OPERATOR)
    assert "Сбои" in client.get("/admin/failures").text
    english = client.get("/admin/failures?lang=en")
    assert "Failures" in english.text and "Сбои" not in english.text
    assert "Replay checked" in english.text
    assert "Failures" in client.get("/admin/").text  # remembered in the cookie
    client.cookies.delete("ssa_lang", path="/admin")
    assert "Overview" in client.get("/admin/", headers={"Accept-Language": "en-GB,en;q=0.9"}).text


def test_the_catalogues_say_the_same_things() -> None:
    assert RU.keys() == EN.keys()
    assert choose(None, None, "de-DE,en;q=0.5,ru;q=0.4") == "en"
    assert choose(None, None, "") == "ru"
    assert choose("en", "ru", "ru") == "en" and choose("xx", "en", None) == "en"


def test_an_operator_replays_resolves_and_ignores_from_the_pages(
    client: TestClient, runtime: Runtime
) -> None:
    sign_in(client, OPERATOR)
    token = csrf(client, "/admin/failures/1")
    replayed = client.post("/admin/failures/1/replay", data={"csrf": token})
    assert replayed.status_code == 303 and replayed.headers["location"].endswith("done=replayed")
    assert status_of(runtime, 1) == "replaying"
    again = client.post("/admin/failures/1/replay", data={"csrf": token})
    assert again.status_code == 409 and "not open" in again.text

    closed = client.post("/admin/failures/2/resolve", data={"csrf": token, "comment": "fixed"})
    assert closed.status_code == 303 and status_of(runtime, 2) == "resolved"
    assert "fixed" in client.get("/admin/failures/2").text  # the audit trail shows the comment
    client.post("/admin/failures/3/ignore", data={"csrf": token, "comment": "test order"})
    assert status_of(runtime, 3) == "ignored"

    resolved = client.post(
        "/admin/reconcile/1/resolve", data={"csrf": token, "choice": "not_ours", "comment": "x"}
    )
    assert resolved.status_code == 303
    with runtime.db.read() as conn:
        assert findings.get(conn, 1)["status"] == findings.DISMISSED  # type: ignore[index]

    rejected = client.post("/admin/inbox/1/replay", data={"csrf": token})
    assert rejected.status_code == 409 and "rejected" in rejected.text

    client.post("/admin/logout", data={"csrf": token})
    assert client.get("/admin/").status_code == 303


def test_bulk_replay_by_filter_dry_runs_then_shows_progress(
    client: TestClient, runtime: Runtime
) -> None:
    sign_in(client, OPERATOR)
    token = csrf(client, "/admin/failures")
    fields = {"csrf": token, "scope": "filter", "class": "UnmappableError", "status": "open"}
    dry = client.post("/admin/bulk/dry-run", data=fields)
    assert dry.status_code == 200, dry.text[-500:]
    assert "4 failures: 4 would do nothing" in dry.text  # no amoCRM account in this config
    assert all(status_of(runtime, i) == "open" for i in (1, 2, 3, 4))

    started = client.post("/admin/bulk/confirm", data=fields)
    assert started.status_code == 303 and started.headers["location"].startswith("/admin/bulk/")
    progress = client.get(started.headers["location"])
    assert progress.status_code == 200 and 'http-equiv="refresh"' in progress.text
    with runtime.db.read() as conn:
        assert conn.execute(sa.select(bulk_replays.c.total)).scalar() == 4
    cancelled = client.post(started.headers["location"] + "/cancel", data={"csrf": token})
    assert cancelled.status_code == 303


def test_bulk_replay_of_checked_rows(client: TestClient, runtime: Runtime) -> None:
    sign_in(client, OPERATOR)
    token = csrf(client, "/admin/failures")
    assert (
        client.post("/admin/bulk/dry-run", data={"csrf": token, "scope": "checked"}).status_code
        == 422
    )
    checked = {"csrf": token, "scope": "checked", "id": ["1", "4"]}
    dry = client.post("/admin/bulk/dry-run", data=checked)
    assert "2 failures:" in dry.text and dry.text.count('name="id"') == 2
    done = client.post("/admin/bulk/confirm", data=checked)
    assert done.status_code == 200 and "Поставлено в очередь: 2, пропущено: 0" in done.text
    assert [status_of(runtime, i) for i in (1, 2, 3, 4)] == [
        "replaying",
        "open",
        "open",
        "replaying",
    ]


def test_an_account_that_matches_nothing_replays_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    sign_in(client, OPERATOR)
    token = csrf(client, "/admin/failures")
    fields = {"csrf": token, "scope": "filter", "account": "nosuch", "status": "open"}
    dry = client.post("/admin/bulk/dry-run", data=fields)
    assert dry.status_code == 200 and "nothing would run" in dry.text
    refused = client.post("/admin/bulk/confirm", data=fields)
    assert refused.status_code == 422
    with runtime.db.read() as conn:
        assert conn.execute(sa.select(bulk_replays.c.id)).first() is None
    assert all(status_of(runtime, i) == "open" for i in (1, 2, 3, 4))
