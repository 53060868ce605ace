"""W9 from the outside: ``POST /admin/api/refunds`` (and its confirm) and ``schoolsync refunds``,
over a real SQLite file and Redis: the operator token, the request id back, a clear error for an
order with nothing to refund, a confirmation that counts once, and a card number never echoed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.cli import app as cli
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import jobs, outbox, refund_requests
from schoolsync.core.domain import Money
from schoolsync.core.settings import Settings
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores.payments import NewPayment
from tests.conftest import RedisServer

TOKEN = "refund-admin-token"
CARD = "0000 0000 0000 1234"
ORDER = "5001"


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    config = tmp_path / "schoolsync.yaml"
    config.write_text("channels:\n  refunds: -1001000000003\n", encoding="utf-8")
    return Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        config=config,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        admin_token=TOKEN,
        sandbox=False,
    )


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    with runtime.db.write() as conn:
        paid = ledger.record(
            conn,
            "default",
            NewPayment(
                source="card_transfer",
                external_id="tg:1",
                amount=Money(amount=Decimal(2500)),
                payer_name="Иванова Юлия",
                payer_email="yulia@example.org",
            ),
        )
        ledger.set_match(conn, paid.id, order_number=ORDER, state="matched", rule="r", note="n")
    return runtime


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(FastPath(create_app(runtime))) as test_client:
        yield test_client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows(runtime: Runtime, table: sa.Table) -> list[dict[str, object]]:
    with runtime.db.read() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def test_the_api_needs_the_operator_token(client: TestClient, runtime: Runtime) -> None:
    body = {"order": ORDER, "card": CARD}

    assert client.post("/admin/api/refunds", json=body).status_code == 401
    assert client.post("/admin/api/refunds", json=body, headers=auth("wrong")).status_code == 401
    assert client.post("/admin/api/refunds/1/confirm", headers=auth("wrong")).status_code == 401
    assert rows(runtime, refund_requests) == []


def test_the_api_requests_once_confirms_once_and_names_an_unknown_order(
    client: TestClient, runtime: Runtime
) -> None:
    made = client.post(
        "/admin/api/refunds",
        json={"order": ORDER, "card": CARD, "comment": "передумала"},
        headers=auth(),
    )
    again = client.post("/admin/api/refunds", json={"order": ORDER}, headers=auth())
    unknown = client.post("/admin/api/refunds", json={"order": "404404"}, headers=auth())
    bad_card = client.post(
        "/admin/api/refunds", json={"order": ORDER, "card": "1234 5678 9"}, headers=auth()
    )

    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert made.json() == {
        "id": request_id,
        "order": ORDER,
        "status": "requested",
        "state": "requested",
    }
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (
        200,
        request_id,
        "exists",
    )
    assert unknown.status_code == 404
    assert "order 404404 has no payment in the ledger" in unknown.json()["detail"]
    assert bad_card.status_code == 422 and "1234 5678" not in bad_card.text
    (stored,) = rows(runtime, refund_requests)
    assert (stored["card_last4"], stored["requested_by"]) == ("1234", "api")
    (message,) = rows(runtime, outbox)
    assert "карта: **** 1234" in str(message["text"]) and CARD not in str(message["text"])

    first = client.post(f"/admin/api/refunds/{request_id}/confirm", headers=auth())
    second = client.post(f"/admin/api/refunds/{request_id}/confirm", headers=auth())
    missing = client.post("/admin/api/refunds/999/confirm", headers=auth())

    assert (first.status_code, first.json()["status"]) == (200, "confirmed")
    assert (second.status_code, second.json()["status"], second.json()["state"]) == (
        200,
        "already_confirmed",
        "confirmed",
    )
    assert missing.status_code == 404
    assert [j["actor"] for j in rows(runtime, jobs) if j["actor"] == "process_refund"] == [
        "process_refund"
    ]


def test_the_cli_requests_confirms_once_and_never_prints_the_card(
    settings: Settings, runtime: Runtime
) -> None:
    env = {
        "SCHOOLSYNC_CONFIG": str(settings.config),
        "SCHOOLSYNC_DATA_DIR": str(settings.data_dir),
        "SCHOOLSYNC_DATABASE_URL": str(settings.database_url),
        "SCHOOLSYNC_REDIS_URL": str(settings.redis_url),
        "SCHOOLSYNC_SANDBOX": "false",
        "SCHOOLSYNC_LOG_FORMAT": "console",
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["refunds", *args], env=env)
        return result.exit_code, result.output

    code, out = run("request", "--order", ORDER, "--card", CARD, "--comment", "передумала")
    assert code == 0, out
    assert "refund request 1 for order 5001 posted" in out
    assert run("request", "--order", "404404")[1].count("order 404404 has no payment") == 1
    assert run("request", "--order", "404404")[0] == 1
    code, out = run("request", "--order", ORDER, "--card", "4111 1111")
    assert code == 1 and "--card: a card number is 13 to 19 digits" in out
    assert "4111" not in out

    code, out = run("confirm", "1")
    assert code == 0 and "confirmed; a worker returns the money" in out
    code, out = run("confirm", "1")
    assert code == 0 and "was confirmed before (it is confirmed); nothing done" in out
    code, out = run("confirm", "77")
    assert code == 1 and "there is no refund request 77" in out
    code, out = run("list")
    assert code == 0 and "**** 1234" in out and "cli:" in out

    everything = "".join(repr(rows(runtime, t)) for t in (refund_requests, outbox, jobs))
    assert CARD not in everything and CARD.replace(" ", "") not in everything
    assert len([j for j in rows(runtime, jobs) if j["actor"] == "process_refund"]) == 1
