"""YooKassaClient against YooKassa's answers, with respx: auth, paging, refunds with an
Idempotence-Key, the 202/500 repeats, and how each error status is reported."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.yookassa import YooKassaClient, amount_value, idempotence_key
from schoolsync.core.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UnavailableError,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "yookassa"
BASE = "https://api.yookassa.ru/v3"
SHOP = "100500"
SECRET = "live_Sup3rSecretKeyValue"
PAYMENT_ID = "23d93cac-000f-5000-8000-126628f15141"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def payment(number: int, **extra: Any) -> dict[str, Any]:
    return {
        **fixture("payment_pending.json"),
        "id": f"00000000-000f-5000-8000-{number:012d}",
        **extra,
    }


def error(status: int, code: str, description: str, **extra: Any) -> httpx.Response:
    body = {"type": "error", "id": "ab5a11cd-13cc-4e33-af8b-75a74e18dd09", "code": code}
    body |= {"description": description, **extra}
    return httpx.Response(status, json=body)


class FakePacer:
    def __init__(self) -> None:
        self.acquired = 0
        self.penalties: list[float] = []

    def acquire(self, *, max_wait: float) -> None:
        self.acquired += 1

    def penalize(self, retry_after: float) -> None:
        self.penalties.append(retry_after)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def pacer() -> FakePacer:
    return FakePacer()


@pytest.fixture
def client(sleeps: list[float], pacer: FakePacer) -> YooKassaClient:
    return YooKassaClient(
        build_client(BASE), Endpoint("yookassa", SHOP), SHOP, SECRET, pacer, sleep=sleeps.append
    )


def test_get_payment_with_basic_auth(api: respx.MockRouter, client: YooKassaClient) -> None:
    route = api.get(f"/payments/{PAYMENT_ID}").respond(json=fixture("payment_pending.json"))
    found = client.get_payment(PAYMENT_ID)
    assert found.id == PAYMENT_ID and found.amount.value == Decimal("100.00")
    sent = route.calls.last.request
    assert sent.url == f"{BASE}/payments/{PAYMENT_ID}"
    expected = base64.b64encode(f"{SHOP}:{SECRET}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert "Idempotence-Key" not in sent.headers
    assert SECRET not in repr(client)


def test_ids_are_one_path_segment(api: respx.MockRouter, client: YooKassaClient) -> None:
    route = api.get(url__regex=r".*/payments/.*").respond(404, json={})
    with pytest.raises(NotFoundError):
        client.get_payment("../me")
    assert route.calls.last.request.url.raw_path == b"/v3/payments/..%2Fme"


def test_list_follows_next_cursor_newest_first(
    api: respx.MockRouter, client: YooKassaClient, pacer: FakePacer
) -> None:
    pages = [
        {"type": "list", "items": [payment(3), payment(2)], "next_cursor": "c1"},
        {"type": "list", "items": [payment(1)], "next_cursor": "c2"},
        {"type": "list", "items": []},
    ]
    route = api.get("/payments").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    since = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    found = list(client.list_payments(created_gte=since, status="succeeded", page_size=2))
    assert [p.id[-1] for p in found] == ["3", "2", "1"]
    queries = [dict(call.request.url.params) for call in route.calls]
    assert queries[0] == {
        "limit": "2",
        "created_at.gte": "2024-05-01T09:00:00.000Z",
        "status": "succeeded",
    }
    assert queries[1]["cursor"] == "c1" and queries[2]["cursor"] == "c2"
    assert queries[1]["created_at.gte"] == queries[0]["created_at.gte"]
    assert pacer.acquired == 3


def test_list_is_lazy_and_refuses_naive_times(
    api: respx.MockRouter, client: YooKassaClient
) -> None:
    route = api.get("/payments").respond(
        json={"type": "list", "items": [payment(1)], "next_cursor": "x"}
    )
    iterator = client.list_payments()
    assert route.call_count == 0
    next(iterator)
    assert route.call_count == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        next(client.list_payments(created_gte=datetime(2024, 1, 1)))  # noqa: DTZ001


def test_a_repeating_cursor_stops_the_listing(
    api: respx.MockRouter, client: YooKassaClient
) -> None:
    api.get("/payments").respond(json={"type": "list", "items": [], "next_cursor": "same"})
    with pytest.raises(RejectedError, match="repeats"):
        list(client.list_payments())


def test_create_refund_sends_the_callers_key(api: respx.MockRouter, client: YooKassaClient) -> None:
    refund = {
        "id": "216749f7-0016-50be-b000-078d43a63ae4",
        "payment_id": PAYMENT_ID,
        "status": "succeeded",
        "amount": {"value": "1500.50", "currency": "RUB"},
        "created_at": "2017-10-04T19:27:51.407Z",
    }
    route = api.post("/refunds").respond(json=refund)
    made = client.create_refund(
        PAYMENT_ID, Decimal("1500.5"), "RUB", "refund.gc-order-12345.1", description="Возврат"
    )
    assert made.amount.value == Decimal("1500.50") and made.status == "succeeded"
    sent = route.calls.last.request
    assert sent.headers["Idempotence-Key"] == "refund.gc-order-12345.1"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {
        "payment_id": PAYMENT_ID,
        "amount": {"value": "1500.50", "currency": "RUB"},
        "description": "Возврат",
    }


@pytest.mark.parametrize(
    ("amount", "currency", "key", "message"),
    [
        (Decimal("10"), "RUB", "has:colon", "Idempotence-Key"),
        (Decimal("10"), "RUB", "x" * 65, "Idempotence-Key"),
        (Decimal("10"), "RUB", "", "Idempotence-Key"),
        (Decimal("10.005"), "RUB", "k", "two decimals"),
        (Decimal("0"), "RUB", "k", "positive"),
        (Decimal("-5"), "RUB", "k", "positive"),
        (Decimal("NaN"), "RUB", "k", "positive"),
        (Decimal("10"), "rub", "k", "currency"),
    ],
)
def test_refund_arguments_are_checked_before_sending(
    api: respx.MockRouter,
    client: YooKassaClient,
    amount: Decimal,
    currency: str,
    key: str,
    message: str,
) -> None:
    route = api.post("/refunds").respond(json={})
    with pytest.raises(ValueError, match=message):
        client.create_refund(PAYMENT_ID, amount, currency, key)
    assert route.call_count == 0


def test_idempotence_key_and_amount_helpers() -> None:
    assert idempotence_key("refund.gc-order-1.1") == "refund.gc-order-1.1"
    derived = idempotence_key("yookassa:refund:gc-order:12345")
    assert derived == idempotence_key("yookassa:refund:gc-order:12345")
    assert len(derived) == 64 and derived.isalnum()
    assert derived != idempotence_key("yookassa:refund:gc-order:12346")
    assert amount_value(Decimal("2500")) == "2500.00"
    assert amount_value(Decimal("0.5")) == "0.50"


def test_202_repeats_the_same_request_with_the_same_key(
    api: respx.MockRouter, client: YooKassaClient, sleeps: list[float], pacer: FakePacer
) -> None:
    processing = httpx.Response(
        202, json={"type": "processing", "description": "wait", "retry_after": 1200}
    )
    refund = {
        "id": "r1",
        "payment_id": PAYMENT_ID,
        "status": "succeeded",
        "amount": {"value": "10.00", "currency": "RUB"},
        "created_at": "2024-01-01T00:00:00.000Z",
    }
    route = api.post("/refunds").mock(
        side_effect=[processing, processing, httpx.Response(200, json=refund)]
    )
    assert client.create_refund(PAYMENT_ID, Decimal(10), "RUB", "same-key").id == "r1"
    assert sleeps == [1.2, 1.2]
    bodies = {call.request.content for call in route.calls}
    keys = {call.request.headers["Idempotence-Key"] for call in route.calls}
    assert len(bodies) == 1 and keys == {"same-key"} and route.call_count == 3
    assert pacer.acquired == 3


def test_500_is_repeated_three_times_then_unavailable(
    api: respx.MockRouter, client: YooKassaClient, sleeps: list[float]
) -> None:
    route = api.get(f"/payments/{PAYMENT_ID}").respond(
        500, json={"type": "error", "id": "e-500", "code": "internal_server_error"}
    )
    with pytest.raises(UnavailableError) as raised:
        client.get_payment(PAYMENT_ID)
    assert route.call_count == 4
    assert sleeps == [1.8, 1.8, 1.8]  # YooKassa's default retry_after, 1800 ms
    assert raised.value.status == 500 and raised.value.retry_after == 1.8
    assert raised.value.request_id == "e-500"


def test_202_forever_is_unavailable(
    api: respx.MockRouter, client: YooKassaClient, sleeps: list[float]
) -> None:
    api.get("/me").respond(202, json={"type": "processing"})
    with pytest.raises(UnavailableError, match="still processing"):
        client.get_me()
    assert len(sleeps) == 3


def test_a_long_retry_after_is_left_to_the_job(
    api: respx.MockRouter, client: YooKassaClient, sleeps: list[float]
) -> None:
    api.get("/me").respond(202, json={"type": "processing", "retry_after": 60_000})
    with pytest.raises(UnavailableError) as raised:
        client.get_me()
    assert sleeps == [] and raised.value.retry_after == 60.0


def test_429_is_rate_limited_and_penalizes(
    api: respx.MockRouter, client: YooKassaClient, pacer: FakePacer
) -> None:
    api.get("/me").respond(
        429,
        json={"type": "error", "id": "e1", "code": "too_many_requests", "retry_after": 3000},
    )
    with pytest.raises(RateLimitedError) as raised:
        client.get_me()
    assert raised.value.retry_after == 3.0 and pacer.penalties == [3.0]
    assert raised.value.status == 429


def test_429_prefers_retry_after_header(
    api: respx.MockRouter, client: YooKassaClient, pacer: FakePacer
) -> None:
    api.get("/me").respond(429, headers={"Retry-After": "7"}, json={"type": "error"})
    with pytest.raises(RateLimitedError) as raised:
        client.get_me()
    assert raised.value.retry_after == 7.0 and pacer.penalties == [7.0]


def test_401_is_auth_without_the_key(api: respx.MockRouter, client: YooKassaClient) -> None:
    api.get("/me").mock(
        return_value=error(
            401,
            "invalid_credentials",
            f"Error in shopId or secret key {SECRET}",
            parameter="Authorization",
        )
    )
    with pytest.raises(AuthError) as raised:
        client.get_me()
    text = str(raised.value)
    assert raised.value.status == 401
    assert "invalid_credentials" in text
    assert SECRET not in text and "secret key ***" in text
    basic = base64.b64encode(f"{SHOP}:{SECRET}".encode()).decode()
    assert basic not in text


def test_404_is_not_found(api: respx.MockRouter, client: YooKassaClient) -> None:
    api.get("/refunds/nope").mock(return_value=error(404, "not_found", "Refund not found"))
    with pytest.raises(NotFoundError, match="Refund not found"):
        client.get_refund("nope")


def test_400_carries_description_and_parameter_masked(
    api: respx.MockRouter, client: YooKassaClient
) -> None:
    api.post("/refunds").mock(
        return_value=error(
            400,
            "invalid_request",
            "Receipt email ivan.petrov@example.com is invalid, phone +7 923 123-45-67",
            parameter="receipt.customer.email",
        )
    )
    with pytest.raises(RejectedError) as raised:
        client.create_refund(PAYMENT_ID, Decimal(1), "RUB", "k1")
    text = str(raised.value)
    assert "receipt.customer.email" in text and "invalid_request" in text
    assert "ivan.petrov@example.com" not in text and "123-45-67" not in text
    assert raised.value.request_id == "ab5a11cd-13cc-4e33-af8b-75a74e18dd09"


def test_duplicated_key_is_rejected(api: respx.MockRouter, client: YooKassaClient) -> None:
    api.post("/refunds").respond(400, json=fixture("error_400_idempotence_key_duplicated.json"))
    with pytest.raises(RejectedError, match="Idempotence key duplicated"):
        client.create_refund(PAYMENT_ID, Decimal(1), "RUB", "k1")


def test_timeouts_and_unparseable_answers(api: respx.MockRouter, client: YooKassaClient) -> None:
    api.get("/me").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UnavailableError, match="timed out"):
        client.get_me()
    api.get(f"/payments/{PAYMENT_ID}").respond(200, content=b"<html>")
    with pytest.raises(RejectedError, match="not JSON"):
        client.get_payment(PAYMENT_ID)
    api.get("/refunds/r").respond(200, json={"id": "r"})
    with pytest.raises(RejectedError, match="Refund not understood"):
        client.get_refund("r")


def test_constructor_checks() -> None:
    http = build_client(BASE)
    with pytest.raises(ValueError):
        YooKassaClient(http, Endpoint("yookassa", "s"), "", SECRET)
    with pytest.raises(ValueError):
        YooKassaClient(http, Endpoint("yookassa", "s"), "1:2", SECRET)
    with pytest.raises(ValueError):
        YooKassaClient(http, Endpoint("yookassa", "s"), SHOP, "")
