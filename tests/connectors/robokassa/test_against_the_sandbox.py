"""Our Robokassa links and ResultURL check against the Robokassa sandbox (written separately,
from Robokassa's docs): the sandbox's payment page accepts our links, and our webhook source
accepts the sandbox's notifications and answers what it expects."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.robokassa import (
    RobokassaAccount,
    RobokassaLinks,
    RobokassaRoute,
    RobokassaWebhook,
)
from schoolsync.core.errors import MalformedInputError, VerificationError
from schoolsync.sandbox.robokassa import RobokassaSandboxConfig, create_app
from tests.conftest import serving

SANDBOX = RobokassaSandboxConfig(hash="sha256", result_retries=2, result_retry_delay_s=0.01)


def receiver(source: RobokassaWebhook, accepted: list[Any]) -> Starlette:
    """A stand-in for the app's /webhooks/robokassa: accept, keep, answer OK{InvId}."""

    async def result(request: Request) -> PlainTextResponse:
        raw = RawRequest(
            body=await request.body(),
            headers={k.lower(): v for k, v in request.headers.items()},
            query=request.url.query,
        )
        try:
            accepted.append(source.accept(raw))
        except (VerificationError, MalformedInputError) as exc:
            return PlainTextResponse(f"bad sign: {exc.message}", status_code=400)
        return PlainTextResponse(source.success_body(raw))

    return Starlette(routes=[Route("/webhooks/robokassa", result, methods=["GET", "POST"])])


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with serving(create_app(SANDBOX)) as url:
        yield url


def links(base_url: str) -> RobokassaLinks:
    account = RobokassaAccount.model_validate(
        {
            "merchant_login": SANDBOX.merchant_login,
            "password1_env": "p1",
            "password2_env": "p2",
            "test_password1_env": "t1",
            "test_password2_env": "t2",
            "hash": SANDBOX.hash,
            "base_url": f"{base_url}/Merchant/Index.aspx",
        }
    )
    return RobokassaLinks(account, SANDBOX.password1, test_password1=SANDBOX.test_password1)


def route() -> RobokassaRoute:
    assert SANDBOX.test_password2 is not None
    return RobokassaRoute(
        "fitness",
        SANDBOX.merchant_login,
        SANDBOX.password2,
        test_password2=SANDBOX.test_password2,
        hash="sha256",
    )


def test_the_payment_page_accepts_our_links(sandbox_url: str) -> None:
    maker = links(sandbox_url)
    shp = {"order": "GC-77", "school": "fitness"}
    live = httpx.get(maker.payment_link(Decimal("2500"), 77, "Курс «Старт»", shp=shp))
    assert live.status_code == 200, live.text
    assert "Оплата счёта №77" in live.text
    test = httpx.get(maker.payment_link(Decimal("10"), 78, "Тест", is_test=True))
    assert test.status_code == 200, test.text
    assert "тестовый режим" in test.text

    tampered = maker.payment_link(Decimal("2500"), 77, "Курс").replace(
        "OutSum=2500.00", "OutSum=25.00"
    )
    refused = httpx.get(tampered)
    assert refused.status_code == 400
    assert "SignatureValue" in refused.text


def test_a_payment_reaches_our_source_which_answers_ok(sandbox_url: str) -> None:
    accepted: list[Any] = []
    maker = links(sandbox_url)
    httpx.get(maker.payment_link(Decimal("2500"), 91, "Курс", shp={"order": "GC-91"}))
    with serving(receiver(RobokassaWebhook([route()]), accepted)) as app_url:
        paid = httpx.post(
            f"{sandbox_url}/_sandbox/pay",
            json={"inv_id": 91, "result_url": f"{app_url}/webhooks/robokassa"},
        ).json()
    assert paid["delivered"] is True
    assert paid["attempts"] == [{"attempt": 1, "status": 200, "reply": "OK91"}]
    assert [event.dedup_key for event in accepted] == [f"robokassa:{SANDBOX.merchant_login}:91"]


def test_test_mode_and_get_notifications(sandbox_url: str) -> None:
    accepted: list[Any] = []
    with serving(receiver(RobokassaWebhook([route()]), accepted)) as app_url:
        paid = httpx.post(
            f"{sandbox_url}/_sandbox/pay",
            json={
                "inv_id": 92,
                "out_sum": "150.5",
                "is_test": True,
                "method": "GET",
                "shp": {"school": "fitness"},
                "result_url": f"{app_url}/webhooks/robokassa",
            },
        ).json()
    assert paid["delivered"] is True
    assert accepted[0].dedup_key == f"robokassa:{SANDBOX.merchant_login}:test:92"
    assert accepted[0].school == "fitness"


def test_a_mis_signed_notification_is_refused_every_time(sandbox_url: str) -> None:
    accepted: list[Any] = []
    with serving(receiver(RobokassaWebhook([route()]), accepted)) as app_url:
        paid = httpx.post(
            f"{sandbox_url}/_sandbox/pay",
            json={
                "inv_id": 93,
                "out_sum": "100",
                "bad_signature": True,
                "result_url": f"{app_url}/webhooks/robokassa",
            },
        ).json()
    assert paid["delivered"] is False
    assert [a["status"] for a in paid["attempts"]] == [400, 400, 400]
    assert accepted == []
