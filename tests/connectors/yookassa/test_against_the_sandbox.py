"""The YooKassa client and notification source against the YooKassa sandbox (written
separately, from YooKassa's docs): the two must agree on auth, paging, Idempotence-Key, the 202
repeats, 429, and what a notification looks like and where it comes from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from schoolsync.connectors.http import build_client
from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.yookassa import (
    Payment,
    YooKassaAccount,
    YooKassaClient,
    YooKassaNotifications,
    YooKassaRoute,
)
from schoolsync.core.errors import AuthError, ForbiddenSourceError, RateLimitedError
from schoolsync.sandbox.yookassa import YooKassaSandboxConfig, create_app
from tests.conftest import serving
from tests.sandbox.test_yookassa_sandbox import NotificationReceiver
from tests.sandbox.test_yookassa_sandbox import receiver as receiver

SHOP, SECRET = "100500", "test_sandbox_secret"


class Pacer:
    def __init__(self) -> None:
        self.penalties: list[float] = []

    def acquire(self, *, max_wait: float) -> None:
        pass

    def penalize(self, retry_after: float) -> None:
        self.penalties.append(retry_after)


def make_client(base_url: str, secret: str = SECRET, pacer: Pacer | None = None) -> YooKassaClient:
    account = YooKassaAccount(
        shop_id=SHOP, secret_key_env="YOOKASSA_KEY", base_url=f"{base_url}/v3"
    )
    return YooKassaClient(
        build_client(account.base_url, timeout=5), account.endpoint, SHOP, secret, pacer
    )


def control(base_url: str, path: str, body: Any = None) -> Any:
    response = httpx.post(f"{base_url}/_sandbox{path}", json=body or {})
    response.raise_for_status()
    return response.json()


@pytest.fixture
def sandbox() -> Iterator[str]:
    with serving(create_app(YooKassaSandboxConfig())) as base_url:
        yield base_url


def test_get_and_list_every_page(sandbox: str) -> None:
    made = [
        control(
            sandbox,
            "/payments",
            {"amount": f"{100 + i}.50", "status": "succeeded", "notify": False},
        )
        for i in range(25)
    ]
    client = make_client(sandbox)
    listed = list(client.list_payments(page_size=10))
    assert [p.id for p in listed] == [p["id"] for p in reversed(made)]
    assert listed[-1].amount.value == Decimal("100.50")
    one = client.get_payment(made[3]["id"])
    assert (one.status, one.paid, one.shop_id) == ("succeeded", True, SHOP)
    assert one.income_amount is not None and one.income_amount.value < one.amount.value
    assert client.get_me().account_id == SHOP
    assert list(client.list_payments(status="canceled")) == []


def test_a_refund_is_made_once_per_key(sandbox: str) -> None:
    paid = control(
        sandbox, "/payments", {"amount": "2500.00", "status": "succeeded", "notify": False}
    )
    client = make_client(sandbox)
    first = client.create_refund(paid["id"], Decimal("1000"), "RUB", "refund.gc-order-72.1")
    again = client.create_refund(paid["id"], Decimal("1000"), "RUB", "refund.gc-order-72.1")
    assert again == first and first.status == "succeeded"
    assert httpx.get(f"{sandbox}/_sandbox/state").json()["refunds"] == 1
    assert client.get_refund(first.id) == first
    second = client.create_refund(paid["id"], Decimal("1000"), "RUB", "refund.gc-order-72.2")
    assert second.id != first.id
    refunded = client.get_payment(paid["id"]).refunded_amount
    assert refunded is not None and refunded.value == Decimal("2000.00")


def test_processing_is_repeated_with_the_same_key_until_done(sandbox: str) -> None:
    paid = control(
        sandbox, "/payments", {"amount": "500.00", "status": "succeeded", "notify": False}
    )
    control(
        sandbox,
        "/faults",
        {"path": "POST /v3/refunds", "processing_rate": 1, "retry_after_ms": 20, "times": 2},
    )
    refund = make_client(sandbox).create_refund(paid["id"], Decimal("500"), "RUB", "refund.500.1")
    assert refund.status == "succeeded"
    state = httpx.get(f"{sandbox}/_sandbox/state").json()
    assert (state["refunds"], state["faults"], state["idempotent_replays"]) == (1, 2, 2)


def test_too_many_requests_becomes_rate_limited(sandbox: str) -> None:
    control(sandbox, "/limits", {"rate_per_s": 1})
    pacer = Pacer()
    client = make_client(sandbox, pacer=pacer)
    client.get_me()
    with pytest.raises(RateLimitedError) as raised:
        client.get_me()
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 1
    assert pacer.penalties == [raised.value.retry_after]


def test_a_wrong_key_is_an_auth_error_that_does_not_show_it(sandbox: str) -> None:
    with pytest.raises(AuthError) as raised:
        make_client(sandbox, secret="test_wrong_secret_value").get_me()
    assert "test_wrong_secret_value" not in str(raised.value)


def test_a_notification_from_the_sandbox_is_accepted_and_refetched(
    sandbox: str,
    receiver: NotificationReceiver,
) -> None:
    control(sandbox, "/webhook", {"url": receiver.url})
    created = control(sandbox, "/payments", {"amount": "2500.00", "metadata": {"order_id": "72"}})
    control(sandbox, f"/payments/{created['id']}/succeed")
    source, headers, body = receiver.wait_for(1)[0]
    raw = RawRequest(body=body, headers=headers, remote_addr=source)

    local = YooKassaAccount(shop_id=SHOP, secret_key_env="K", trusted_networks=["127.0.0.1/32"])
    event = YooKassaNotifications([YooKassaRoute.for_account("fitness", local)]).accept(raw)
    assert event.school == "fitness"
    assert event.dedup_key == f"yookassa:{SHOP}:payment.succeeded:{created['id']}"

    fetched = make_client(sandbox).get_payment(json.loads(body)["object"]["id"])
    assert isinstance(fetched, Payment) and fetched.status == "succeeded"
    assert fetched.metadata == {"order_id": "72"}

    real = YooKassaAccount(shop_id=SHOP, secret_key_env="K")
    with pytest.raises(ForbiddenSourceError):
        YooKassaNotifications([YooKassaRoute.for_account("fitness", real)]).accept(raw)
