"""Our PayPal client and webhook source against the PayPal sandbox (written separately, from
PayPal's docs): tokens, captures, refunds, orders and v1 sales; events the sandbox signs verify
offline from a seeded certificate cache and online through its verify-webhook-signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.paypal import (
    Capture,
    CertStore,
    PayPalClient,
    PayPalRoute,
    PayPalTokens,
    PayPalWebhook,
    Sale,
    event_resource,
    parse_event,
)
from schoolsync.core.errors import AuthError, NotFoundError, VerificationError
from schoolsync.sandbox.paypal import PayPalSandboxConfig, create_app
from tests.conftest import serving

CONFIG = PayPalSandboxConfig(webhook_retries=1, webhook_retry_delay_s=0.01)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with serving(create_app(CONFIG)) as url:
        yield url


def client(base_url: str, secret: str = CONFIG.client_secret) -> PayPalClient:
    endpoint = Endpoint("paypal", "sandbox")
    http = build_client(base_url, timeout=5)
    tokens = PayPalTokens(http, endpoint, CONFIG.client_id, secret)
    return PayPalClient(http, endpoint, tokens, webhook_id=CONFIG.webhook_id)


def seeded_store(base_url: str, directory: Path) -> CertStore:
    """What an operator does for the sandbox: put its certificate in the cache."""
    store = CertStore(directory)
    store.seed(CONFIG.cert_url, httpx.get(f"{base_url}/_sandbox/cert.pem").content)
    return store


def pay(base_url: str, **extra: Any) -> dict[str, Any]:
    body = {
        "amount": "25.00",
        "currency": "EUR",
        "custom_id": "order-777",
        "invoice_id": "GC-777",
        "payer": {"given_name": "Sasha", "surname": "Demin", "email": "sasha@example.com"},
        **extra,
    }
    response = httpx.post(f"{base_url}/_sandbox/captures", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def as_request(event: dict[str, Any]) -> RawRequest:
    return RawRequest(
        body=event["body"].encode(),
        headers={key.lower(): value for key, value in event["headers"].items()},
    )


def test_captures_and_orders_are_read(sandbox_url: str) -> None:
    paid = pay(sandbox_url)
    paypal = client(sandbox_url)
    capture = paypal.get_capture(paid["capture"]["id"])
    assert capture.status == "COMPLETED"
    assert capture.amount.value == Decimal("25.00") and capture.amount.currency_code == "EUR"
    assert capture.fee is not None and capture.fee.value == Decimal("1.36")
    assert (capture.custom_id, capture.invoice_id) == ("order-777", "GC-777")
    assert capture.order_id == paid["order"]["id"]
    order = paypal.get_order(capture.order_id)
    assert order.payer is not None and order.payer.email_address == "sasha@example.com"
    assert order.payer.name is not None and order.payer.name.full == "Sasha Demin"
    with pytest.raises(NotFoundError):
        paypal.get_capture("0000000000000000X")


def test_refunds_and_sales_are_read(sandbox_url: str) -> None:
    paid = pay(sandbox_url)
    capture_id = paid["capture"]["id"]
    made = httpx.post(
        f"{sandbox_url}/_sandbox/captures/{capture_id}/refund", json={"amount": "5.00"}
    ).json()
    paypal = client(sandbox_url)
    refund = paypal.get_refund(made["refund"]["id"])
    assert (refund.status, refund.capture_id) == ("COMPLETED", capture_id)
    assert refund.amount.value == Decimal("5.00")
    assert paypal.get_capture(capture_id).status == "PARTIALLY_REFUNDED"

    sold = httpx.post(
        f"{sandbox_url}/_sandbox/sales",
        json={"amount": "20.00", "currency": "USD", "invoice_number": "GC-778"},
    ).json()
    sale = paypal.get_sale(sold["sale"]["id"])
    assert (sale.state, sale.amount.total, sale.amount.currency) == (
        "completed",
        Decimal("20.00"),
        "USD",
    )
    assert sale.invoice_number == "GC-778" and sale.transaction_fee is not None
    assert sale.parent_payment is not None and sale.parent_payment.startswith("PAY-")
    event = event_resource(parse_event(sold["event"]["body"].encode()))
    assert isinstance(event, Sale) and event.id == sale.id
    for missing in (paypal.get_refund, paypal.get_sale):
        with pytest.raises(NotFoundError):
            missing("0000000000000000X")


def test_revoked_tokens_are_renewed_and_wrong_secrets_refused(sandbox_url: str) -> None:
    paid = pay(sandbox_url)
    paypal = client(sandbox_url)
    paypal.get_capture(paid["capture"]["id"])
    httpx.post(f"{sandbox_url}/_sandbox/tokens/revoke")
    assert paypal.get_capture(paid["capture"]["id"]).id == paid["capture"]["id"]
    with pytest.raises(AuthError, match="invalid_client"):
        client(sandbox_url, secret="wrong").get_capture(paid["capture"]["id"])


def test_a_sandbox_signed_event_verifies_with_a_seeded_cache(
    sandbox_url: str, tmp_path: Path
) -> None:
    paid = pay(sandbox_url)
    source = PayPalWebhook(
        [PayPalRoute("fitness", CONFIG.webhook_id, certs=seeded_store(sandbox_url, tmp_path))]
    )
    request = as_request(paid["event"])
    source.prepare(request)  # the certificate is cached: nothing is fetched
    accepted = source.accept(request)
    assert (accepted.dedup_key, accepted.school) == (paid["event"]["id"], "fitness")
    capture = event_resource(parse_event(request.body))
    assert isinstance(capture, Capture) and capture.id == paid["capture"]["id"]

    forged = as_request(pay(sandbox_url, bad_signature=True)["event"])
    with pytest.raises(VerificationError):
        source.accept(forged)


def test_delivered_events_are_accepted_by_a_receiver(sandbox_url: str, tmp_path: Path) -> None:
    source = PayPalWebhook(
        [PayPalRoute("fitness", CONFIG.webhook_id, certs=seeded_store(sandbox_url, tmp_path))]
    )
    accepted: list[str] = []

    async def webhook(request: Request) -> JSONResponse:
        raw = RawRequest(
            body=await request.body(), headers={k.lower(): v for k, v in request.headers.items()}
        )
        try:
            accepted.append(source.accept(raw).dedup_key)
        except VerificationError as exc:
            return JSONResponse({"error": exc.message}, status_code=401)
        return JSONResponse({"status": "accepted"})

    app = Starlette(routes=[Route("/webhooks/paypal", webhook, methods=["POST"])])
    with serving(app) as app_url:
        url = f"{app_url}/webhooks/paypal"
        paid = pay(sandbox_url, webhook_url=url)
        assert paid["event"]["delivered"] is True
        refund = httpx.post(
            f"{sandbox_url}/_sandbox/captures/{paid['capture']['id']}/refund",
            json={"amount": "5.00", "webhook_url": url},
        ).json()
        httpx.post(
            f"{sandbox_url}/_sandbox/events/{paid['event']['id']}/resend", json={"webhook_url": url}
        )
        forged = pay(sandbox_url, webhook_url=url, bad_signature=True)
    assert forged["event"]["delivered"] is False
    # the resend is a new transmission of the same event: same dedup key
    assert accepted == [paid["event"]["id"], refund["event"]["id"], paid["event"]["id"]]


def test_online_verification_against_the_sandbox(sandbox_url: str) -> None:
    paid = pay(sandbox_url)
    paypal = client(sandbox_url)
    request = as_request(paid["event"])
    assert paypal.verify_webhook_signature_online(request.headers, request.body) is True

    changed = request.body.replace(b"order-777", b"order-778")
    assert paypal.verify_webhook_signature_online(request.headers, changed) is False
    reserialized = json.dumps(json.loads(request.body), indent=2).encode()
    assert paypal.verify_webhook_signature_online(request.headers, reserialized) is False

    source = PayPalWebhook(
        [PayPalRoute("fitness", CONFIG.webhook_id, verify="online", client=paypal)]
    )
    source.prepare(request)
    assert source.accept(request).dedup_key == paid["event"]["id"]
