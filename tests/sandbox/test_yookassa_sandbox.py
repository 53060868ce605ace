"""The YooKassa sandbox answers as YooKassa's API does for what our connector relies on: Basic
auth, Idempotence-Key, cursor lists, refunds, notifications from this process, faults, 429."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.sandbox.server import create_app as create_server
from schoolsync.sandbox.yookassa import YooKassaSandboxConfig, create_app

AUTH = ("100500", "test_sandbox_secret")
API = "/yookassa/v3"
CONTROL = "/yookassa/_sandbox"


def make_client(**settings: Any) -> TestClient:
    app = Starlette(routes=[Mount("/yookassa", app=create_app(YooKassaSandboxConfig(**settings)))])
    return TestClient(app)


def post(client: TestClient, path: str, body: Any, key: str | None = "key-1", **kw: Any) -> Any:
    headers = {"Idempotence-Key": key} if key is not None else {}
    return client.post(f"{API}{path}", json=body, headers=headers, auth=kw.pop("auth", AUTH), **kw)


def new_payment(client: TestClient, **spec: Any) -> dict[str, Any]:
    response = client.post(f"{CONTROL}/payments", json={"amount": "2500.00", **spec})
    assert response.status_code == 200, response.text
    return dict(response.json())


def state(client: TestClient) -> dict[str, Any]:
    return dict(client.get(f"{CONTROL}/state").json())


def assert_error(response: Any, status: int, code: str, parameter: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["code"] == code
    assert isinstance(body["id"], str) and body["description"]
    assert body.get("parameter") == parameter


# -- auth and the Idempotence-Key -----------------------------------------------------------


@pytest.mark.parametrize("auth", [None, ("100500", "wrong"), ("999", "test_sandbox_secret")])
def test_basic_auth_is_required(auth: tuple[str, str] | None) -> None:
    with make_client() as client:
        response = client.get(f"{API}/me", auth=auth)
        assert_error(response, 401, "invalid_credentials")
        assert "test_sandbox_secret" not in response.text


def test_me_names_the_shop() -> None:
    with make_client() as client:
        me = client.get(f"{API}/me", auth=AUTH).json()
        assert (me["account_id"], me["test"], me["status"]) == ("100500", True, "enabled")


def test_a_post_needs_a_valid_idempotence_key_and_json() -> None:
    amount = {"amount": {"value": "10.00", "currency": "RUB"}}
    with make_client() as client:
        assert_error(
            post(client, "/payments", amount, key=None), 400, "invalid_request", "Idempotence-Key"
        )
        for bad in ("has:colon", "x" * 65, "with space", "ключ".encode()):
            response = client.post(
                f"{API}/payments", json=amount, headers={"Idempotence-Key": bad}, auth=AUTH
            )
            assert_error(response, 400, "invalid_request", "Idempotence-Key")
        text = client.post(
            f"{API}/payments",
            content=b"amount=10",
            auth=AUTH,
            headers={"Idempotence-Key": "k", "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert text.status_code == 415
        assert state(client)["payments"] == 0


def test_same_key_same_body_is_the_same_payment_another_body_is_refused() -> None:
    body = {
        "amount": {"value": "2500.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": "https://school.example/thanks"},
        "description": "Заказ №72",
        "metadata": {"order_id": "72"},
    }
    with make_client() as client:
        first = post(client, "/payments", body, key="order-72.pay.1").json()
        assert first["status"] == "pending" and first["paid"] is False
        assert first["amount"] == {"value": "2500.00", "currency": "RUB"}
        assert first["recipient"] == {"account_id": "100500", "gateway_id": "100700"}
        assert first["confirmation"]["confirmation_url"].endswith(first["id"])
        assert len(first["id"]) == 36 and first["created_at"].endswith("Z")
        reordered = dict(reversed(list(body.items())))
        assert post(client, "/payments", reordered, key="order-72.pay.1").json() == first
        other = post(
            client, "/payments", {**body, "description": "Заказ №73"}, key="order-72.pay.1"
        )
        assert_error(other, 400, "invalid_request", "Idempotence-Key")
        assert other.json()["description"] == "Idempotence key duplicated"
        # a key is one operation: the same key on another path is another operation
        refund = post(
            client,
            "/refunds",
            {"payment_id": first["id"], "amount": body["amount"]},
            key="order-72.pay.1",
        )
        assert refund.json()["description"] == "Idempotence key duplicated"
        assert (state(client)["payments"], state(client)["idempotent_replays"]) == (1, 1)


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({}, "amount"),
        ({"amount": {"value": "10,00", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": 10.5, "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "10.001", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "0.00", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "10.00", "currency": "XYZ"}}, "amount.currency"),
        ({"amount": {"value": "1.00", "currency": "RUB"}, "description": "x" * 129}, "description"),
        ({"amount": {"value": "1.00", "currency": "RUB"}, "metadata": {"k": 1}}, "metadata"),
    ],
)
def test_payment_bodies_are_checked(body: dict[str, Any], parameter: str) -> None:
    with make_client() as client:
        assert_error(post(client, "/payments", body), 400, "invalid_request", parameter)
        assert state(client)["payments"] == 0


def test_unknown_payment_is_404() -> None:
    with make_client() as client:
        response = client.get(f"{API}/payments/22d6d597-000f-5000-9000-145f6df21d6f", auth=AUTH)
        assert_error(response, 404, "not_found", "payment_id")


# -- lists ----------------------------------------------------------------------------------


def test_list_is_newest_first_with_a_cursor_until_the_end() -> None:
    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    with make_client() as client:
        made = [
            new_payment(
                client,
                created_at=(start + timedelta(minutes=i)).isoformat(),
                status="succeeded" if i % 2 else "pending",
                notify=False,
            )
            for i in range(25)
        ]
        ids: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
            page = client.get(f"{API}/payments", params=params, auth=AUTH).json()
            pages += 1
            assert page["type"] == "list"
            ids += [p["id"] for p in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert pages == 3 and ids == [p["id"] for p in reversed(made)]

        succeeded = client.get(
            f"{API}/payments",
            params={
                "status": "succeeded",
                "created_at.gte": "2024-03-01T09:20:00.000Z",
                "limit": "100",
            },
            auth=AUTH,
        ).json()
        assert [p["created_at"] for p in succeeded["items"]] == [
            "2024-03-01T09:23:00.000Z",
            "2024-03-01T09:21:00.000Z",
        ]
        assert "next_cursor" not in succeeded
        default = client.get(f"{API}/payments", auth=AUTH).json()
        assert len(default["items"]) == 10


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"created_at.gte": "yesterday"}, "created_at.gte"),
        ({"status": "paid"}, "status"),
    ],
)
def test_list_parameters_are_checked(params: dict[str, str], parameter: str) -> None:
    with make_client() as client:
        assert_error(
            client.get(f"{API}/payments", params=params, auth=AUTH),
            400,
            "invalid_request",
            parameter,
        )


# -- refunds --------------------------------------------------------------------------------


def test_refund_once_per_key_and_within_what_is_left() -> None:
    with make_client() as client:
        paid = new_payment(client, status="succeeded", notify=False)
        body = {"payment_id": paid["id"], "amount": {"value": "1000.00", "currency": "RUB"}}
        first = post(client, "/refunds", body, key="refund.72.1").json()
        assert first["status"] == "succeeded" and first["payment_id"] == paid["id"]
        assert post(client, "/refunds", body, key="refund.72.1").json() == first
        assert len(client.get(f"{CONTROL}/refunds").json()["refunds"]) == 1
        assert client.get(f"{API}/refunds/{first['id']}", auth=AUTH).json() == first

        payment = client.get(f"{API}/payments/{paid['id']}", auth=AUTH).json()
        assert payment["refunded_amount"] == {"value": "1000.00", "currency": "RUB"}
        assert payment["refundable"] is True
        too_much = {**body, "amount": {"value": "1500.01", "currency": "RUB"}}
        assert_error(
            post(client, "/refunds", too_much, key="refund.72.2"),
            400,
            "invalid_request",
            "amount.value",
        )
        rest = {**body, "amount": {"value": "1500.00", "currency": "RUB"}}
        assert post(client, "/refunds", rest, key="refund.72.3").status_code == 200
        assert client.get(f"{API}/payments/{paid['id']}", auth=AUTH).json()["refundable"] is False

        usd = {**body, "amount": {"value": "1.00", "currency": "USD"}}
        assert_error(
            post(client, "/refunds", usd, key="refund.72.4"),
            400,
            "invalid_request",
            "amount.currency",
        )
        pending = new_payment(client)
        unpaid = {"payment_id": pending["id"], "amount": {"value": "1.00", "currency": "RUB"}}
        assert_error(
            post(client, "/refunds", unpaid, key="refund.73.1"),
            400,
            "invalid_request",
            "payment_id",
        )
        missing = {"payment_id": "nope", "amount": {"value": "1.00", "currency": "RUB"}}
        assert_error(
            post(client, "/refunds", missing, key="refund.74.1"),
            400,
            "invalid_request",
            "payment_id",
        )
        assert_error(client.get(f"{API}/refunds/nope", auth=AUTH), 404, "not_found", "refund_id")


# -- notifications --------------------------------------------------------------------------


@dataclass
class NotificationReceiver:
    """A local HTTP server standing in for /webhooks/yookassa; records what arrives and from
    which address, and answers ``status``."""

    status: int = 200
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def wait_for(
        self, count: int, timeout_s: float = 5.0
    ) -> list[tuple[str, dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} notifications, got {len(self.received)}")


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    box = NotificationReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with box.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                box.received.append((self.client_address[0], headers, body))
                status = box.status
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/yookassa"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def test_moves_are_notified_as_yookassa_notifies(receiver: NotificationReceiver) -> None:
    with make_client(webhook_url=receiver.url) as client:
        created = new_payment(client, metadata={"order_id": "72"})
        waiting = client.post(f"{CONTROL}/payments/{created['id']}/wait").json()
        assert waiting["status"] == "waiting_for_capture" and waiting["paid"] is True
        done = client.post(f"{CONTROL}/payments/{created['id']}/succeed").json()
        assert done["status"] == "succeeded" and done["income_amount"]["value"] == "2412.50"
        assert done["payment_method"]["title"] == "Bank card *4444" and "captured_at" in done
        assert client.post(f"{CONTROL}/payments/{created['id']}/cancel").status_code == 409

        arrived = receiver.wait_for(2)
        sources = {source for source, _, _ in arrived}
        assert sources == {"127.0.0.1"}
        bodies = [json.loads(body) for _, _, body in arrived]
        assert [b["event"] for b in bodies] == ["payment.waiting_for_capture", "payment.succeeded"]
        assert all(
            b["type"] == "notification" and b["object"]["id"] == created["id"] for b in bodies
        )
        assert bodies[1]["object"] == done
        assert arrived[0][1]["content-type"] == "application/json"

        again = client.post(f"{CONTROL}/payments/{created['id']}/notify").json()
        assert again == {"event": "payment.succeeded", "object_id": created["id"]}
        assert json.loads(receiver.wait_for(3)[2][2])["object"] == done

        canceled = new_payment(client, notify=False)
        gone = client.post(
            f"{CONTROL}/payments/{canceled['id']}/cancel",
            json={"reason": "insufficient_funds", "party": "payment_network"},
        ).json()
        assert gone["cancellation_details"] == {
            "party": "payment_network",
            "reason": "insufficient_funds",
        }
        assert json.loads(receiver.wait_for(4)[3][2])["event"] == "payment.canceled"


def test_refunds_and_created_payments_are_notified(receiver: NotificationReceiver) -> None:
    with make_client() as client:
        assert client.post(f"{CONTROL}/webhook", json={"url": receiver.url}).json() == {
            "webhook_set": True
        }
        paid = new_payment(client, status="succeeded")
        post(
            client,
            "/refunds",
            {"payment_id": paid["id"], "amount": {"value": "100.00", "currency": "RUB"}},
        )
        events = [json.loads(body)["event"] for _, _, body in receiver.wait_for(2)]
        assert events == ["payment.succeeded", "refund.succeeded"]


def test_a_notification_is_redelivered_until_200(receiver: NotificationReceiver) -> None:
    receiver.status = 500
    with make_client(
        webhook_url=receiver.url, webhook_retries=2, webhook_retry_delay_s=0.01
    ) as client:
        new_payment(client, status="succeeded")
        assert len(receiver.wait_for(3)) == 3
        deadline = time.monotonic() + 5
        while state(client)["notifications"]["failed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state(client)["notifications"] == {
            "pending": 0,
            "delivered": 0,
            "failed": 1,
            "attempts": 3,
        }
        log = client.get(f"{CONTROL}/notifications").json()["notifications"]
        assert log[0]["last_status"] == 500 and log[0]["event"] == "payment.succeeded"
        assert receiver.url not in json.dumps(log)


# -- faults, limits, reset ------------------------------------------------------------------


def test_an_error_fault_hits_only_its_path() -> None:
    with make_client() as client:
        paid = new_payment(client, status="succeeded", notify=False)
        client.post(
            f"{CONTROL}/faults", json={"path": "POST /v3/refunds", "error_rate": 1, "status": 500}
        )
        refund = {"payment_id": paid["id"], "amount": {"value": "1.00", "currency": "RUB"}}
        assert_error(post(client, "/refunds", refund), 500, "internal_server_error")
        assert client.get(f"{API}/payments/{paid['id']}", auth=AUTH).status_code == 200
        assert state(client)["refunds"] == 0
        client.delete(f"{CONTROL}/faults")
        assert post(client, "/refunds", refund).status_code == 200


def test_processing_then_the_same_request_gets_the_result() -> None:
    with make_client() as client:
        paid = new_payment(client, status="succeeded", notify=False)
        client.post(
            f"{CONTROL}/faults",
            json={"path": "/v3/refunds", "processing_rate": 1, "retry_after_ms": 25, "times": 1},
        )
        refund = {"payment_id": paid["id"], "amount": {"value": "1.00", "currency": "RUB"}}
        first = post(client, "/refunds", refund, key="r-1")
        assert first.status_code == 202
        assert first.json() | {"description": ""} == {
            "type": "processing",
            "retry_after": 25,
            "description": "",
        }
        second = post(client, "/refunds", refund, key="r-1")
        assert second.status_code == 200 and second.json()["status"] == "succeeded"
        assert state(client)["refunds"] == 1


def test_a_timeout_applied_makes_the_refund_but_answers_500() -> None:
    with make_client() as client:
        paid = new_payment(client, status="succeeded", notify=False)
        client.post(
            f"{CONTROL}/faults",
            json={
                "path": "POST /v3/refunds",
                "timeout_rate": 1,
                "timeout_s": 0.05,
                "apply_on_timeout": True,
                "times": 1,
            },
        )
        refund = {"payment_id": paid["id"], "amount": {"value": "1.00", "currency": "RUB"}}
        assert_error(post(client, "/refunds", refund, key="r-2"), 500, "internal_server_error")
        assert state(client)["refunds"] == 1
        repeat = post(client, "/refunds", refund, key="r-2")
        assert repeat.status_code == 200 and state(client)["refunds"] == 1


def test_seeded_faults_repeat() -> None:
    def run() -> list[int]:
        with make_client() as client:
            client.post(f"{CONTROL}/faults", json={"error_rate": 0.5, "status": 503, "seed": 7})
            return [client.get(f"{API}/me", auth=AUTH).status_code for _ in range(12)]

    first = run()
    assert first == run() and {200, 503} == set(first)


def test_too_many_requests_is_429_with_retry_after() -> None:
    with make_client(rate_per_s=2) as client:
        codes = [client.get(f"{API}/me", auth=AUTH) for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert_error(codes[2], 429, "too_many_requests")
        assert 0 < codes[2].json()["retry_after"] <= 1000
        assert state(client)["rate_limited"] == 1
        client.post(f"{CONTROL}/limits", json={"rate_per_s": 1000})
        assert client.get(f"{API}/me", auth=AUTH).status_code == 200


def test_reset_clears_everything_but_the_credentials() -> None:
    with make_client() as client:
        new_payment(client)
        client.post(f"{CONTROL}/faults", json={"error_rate": 1})
        client.post(f"{CONTROL}/webhook", json={"url": "http://127.0.0.1:9/x"})
        assert client.post(f"{CONTROL}/reset").json() == {"reset": True}
        after = state(client)
        assert (after["payments"], after["fault_rules"], after["webhook_set"]) == (0, [], False)
        assert client.get(f"{API}/me", auth=AUTH).status_code == 200


def test_control_refuses_bad_input() -> None:
    with make_client() as client:
        assert client.post(f"{CONTROL}/payments", json={"amount": "2 500"}).status_code == 400
        assert (
            client.post(f"{CONTROL}/payments", json={"amount": "1", "status": "paid"}).status_code
            == 400
        )
        assert client.post(f"{CONTROL}/payments/nope/succeed").status_code == 404
        created = new_payment(client)
        assert client.post(f"{CONTROL}/payments/{created['id']}/explode").status_code == 404
        assert client.post(f"{CONTROL}/payments/{created['id']}/notify").status_code == 409
        assert client.post(f"{CONTROL}/webhook", json={"url": "ftp://x"}).status_code == 400
        assert client.post(f"{CONTROL}/faults", json={"status": 200}).status_code == 400


def test_mounted_in_the_sandbox_server() -> None:
    with TestClient(create_server()) as client:
        index = client.get("/").json()
        assert index["sandboxes"]["yookassa"] == "/yookassa"
        assert "/yookassa/_sandbox/state" in index["control"]
        assert client.get("/yookassa/v3/me", auth=AUTH).json()["account_id"] == "100500"
