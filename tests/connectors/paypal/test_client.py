"""PayPal client against recorded answers: the token, captures, refunds, orders, v1 sales,
online verification, and what each failure becomes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.paypal import PayPalClient, PayPalTokens
from schoolsync.core.errors import AuthError, MalformedInputError, NotFoundError, UnavailableError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "paypal"
ENDPOINT = Endpoint("paypal", "school")
CLIENT_ID, SECRET = "client-id-for-tests", "client-secret-for-tests"
TOKEN = json.loads((FIXTURES / "token_ok.json").read_text())
CAPTURE = json.loads((FIXTURES / "capture_completed_event.json").read_text())["resource"]
ORDER = json.loads((FIXTURES / "order_completed.json").read_text())
VECTOR = json.loads((FIXTURES / "sdk_signature_vector.json").read_text())
BODY = (FIXTURES / "sale_completed_body.json").read_bytes()
REFUND = json.loads((FIXTURES / "capture_refunded_event.json").read_text())["resource"]
SALE = json.loads(BODY)["resource"]

Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(handler: Handler, clock: Clock | None = None) -> PayPalClient:
    http = build_client("https://api-m.sandbox.paypal.com", transport=httpx.MockTransport(handler))
    tokens = PayPalTokens(http, ENDPOINT, CLIENT_ID, SECRET, clock=clock or Clock())
    return PayPalClient(http, ENDPOINT, tokens, webhook_id="4JH86294D6297924G")


class PayPal:
    """Answers the token endpoint from the fixture and everything else from ``routes``."""

    def __init__(self, routes: dict[str, list[httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/oauth2/token":
            self.tokens += 1
            return httpx.Response(200, json={**TOKEN, "access_token": f"token-{self.tokens}"})
        return self.routes[request.url.path].pop(0)


def test_the_token_is_asked_with_basic_auth_and_cached() -> None:
    paypal = PayPal(
        {"/v2/payments/captures/27M47624FP291604U": [httpx.Response(200, json=CAPTURE)] * 2}
    )
    client = make(paypal)
    client.get_capture("27M47624FP291604U")
    client.get_capture("27M47624FP291604U")
    token_request = paypal.requests[0]
    expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token_request.method == "POST"
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert dict(parse_qsl(token_request.content.decode())) == {"grant_type": "client_credentials"}
    assert paypal.tokens == 1
    assert paypal.requests[1].headers["Authorization"] == "Bearer token-1"


def test_the_token_is_renewed_before_it_expires() -> None:
    clock = Clock()
    paypal = PayPal({"/v2/payments/captures/A": [httpx.Response(200, json=CAPTURE)] * 2})
    client = make(paypal, clock)
    client.get_capture("A")
    clock.now += TOKEN["expires_in"] - 30  # inside the last minute
    client.get_capture("A")
    assert paypal.tokens == 2


def test_a_capture_is_read_with_decimal_money() -> None:
    paypal = PayPal(
        {"/v2/payments/captures/27M47624FP291604U": [httpx.Response(200, json=CAPTURE)]}
    )
    capture = make(paypal).get_capture("27M47624FP291604U")
    assert capture.status == "COMPLETED"
    assert capture.amount.value == Decimal("2.51")
    assert capture.amount.currency_code == "USD"
    assert capture.fee is not None and capture.fee.value == Decimal("0.37")
    assert capture.create_time is not None and capture.create_time.tzinfo is not None


def test_an_order_has_the_payer_and_its_captures() -> None:
    paypal = PayPal({"/v2/checkout/orders/5O190127TN364715T": [httpx.Response(200, json=ORDER)]})
    order = make(paypal).get_order("5O190127TN364715T")
    assert order.payer is not None and order.payer.email_address == "buyer@example.com"
    assert order.payer.name is not None and order.payer.name.full == "Alexandra Demina"
    assert "buyer@example.com" not in repr(order)
    (capture,) = order.captures
    assert (capture.custom_id, capture.invoice_id) == ("order-12345", "GC-12345")
    assert capture.amount.value == Decimal("25.00")


def test_a_refund_names_its_capture() -> None:
    paypal = PayPal({"/v2/payments/refunds/1Y107995YT783435V": [httpx.Response(200, json=REFUND)]})
    refund = make(paypal).get_refund("1Y107995YT783435V")
    assert (refund.status, refund.capture_id) == ("COMPLETED", "0JF852973C016714D")
    assert refund.amount.value == Decimal("25.00")


def test_a_v1_sale_is_read_and_its_404_is_not_found() -> None:
    v1_missing = httpx.Response(
        404,
        json={
            "name": "INVALID_RESOURCE_ID",
            "message": "Requested resource ID was not found.",
            "information_link": "https://developer.paypal.com/docs/api/payments/v1/#errors",
            "debug_id": "6b4e9a0c7f2d1",
        },
    )
    paypal = PayPal(
        {
            "/v1/payments/sale/4EU7004268015634R": [httpx.Response(200, json=SALE)],
            "/v1/payments/sale/NOPE": [v1_missing],
        }
    )
    client = make(paypal)
    sale = client.get_sale("4EU7004268015634R")
    assert (sale.state, sale.amount.total, sale.amount.currency) == (
        "completed",
        Decimal("20.00"),
        "USD",
    )
    assert sale.transaction_fee is not None and sale.transaction_fee.value == Decimal("0.88")
    with pytest.raises(NotFoundError, match=r"INVALID_RESOURCE_ID.*debug_id=6b4e9a0c7f2d1"):
        client.get_sale("NOPE")


def test_an_expired_token_is_renewed_once() -> None:
    expired = httpx.Response(401, content=fixture("error_401_invalid_token.json"))
    paypal = PayPal({"/v2/payments/captures/A": [expired, httpx.Response(200, json=CAPTURE)]})
    assert make(paypal).get_capture("A").id == "27M47624FP291604U"
    assert paypal.tokens == 2
    assert paypal.requests[-1].headers["Authorization"] == "Bearer token-2"


def test_a_second_401_is_an_auth_error() -> None:
    expired = httpx.Response(401, content=fixture("error_401_invalid_token.json"))
    paypal = PayPal({"/v2/payments/captures/A": [expired, expired]})
    with pytest.raises(AuthError) as raised:
        make(paypal).get_capture("A")
    assert "token-" not in str(raised.value)


def test_wrong_credentials_are_an_auth_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, content=fixture("error_401_invalid_client.json"))

    with pytest.raises(AuthError, match="invalid_client") as raised:
        make(refuse).get_capture("A")
    assert SECRET not in str(raised.value) and CLIENT_ID not in str(raised.value)


def test_not_found_names_paypal_and_its_debug_id() -> None:
    missing = httpx.Response(404, content=fixture("error_404_resource_not_found.json"))
    paypal = PayPal({"/v2/payments/captures/NOPE": [missing]})
    with pytest.raises(NotFoundError) as raised:
        make(paypal).get_capture("NOPE")
    assert "RESOURCE_NOT_FOUND" in raised.value.message
    assert "INVALID_RESOURCE_ID" in raised.value.message
    assert "debug_id=90957fca61718" in raised.value.message


def test_a_5xx_is_retryable() -> None:
    paypal = PayPal({"/v2/checkout/orders/A": [httpx.Response(503, headers={"Retry-After": "7"})]})
    with pytest.raises(UnavailableError) as raised:
        make(paypal).get_order("A")
    assert raised.value.retry_after == 7


def test_ids_cannot_reach_other_paths() -> None:
    client = make(PayPal({}))
    for bad in ("../v1/oauth2/token", "A/B", "", "A?x=1"):
        for get in (client.get_capture, client.get_refund, client.get_order, client.get_sale):
            with pytest.raises(ValueError):
                get(bad)


def test_online_verification_sends_the_event_bytes_as_received() -> None:
    paypal = PayPal(
        {
            "/v1/notifications/verify-webhook-signature": [
                httpx.Response(200, content=fixture("verify_success.json")),
                httpx.Response(200, content=fixture("verify_failure.json")),
            ]
        }
    )
    client = make(paypal)
    assert client.verify_webhook_signature_online(VECTOR["headers"], BODY) is True
    sent = paypal.requests[-1]
    assert sent.content.endswith(b'"webhook_event": ' + BODY + b"}")
    document = json.loads(sent.content)
    assert document["webhook_event"] == json.loads(BODY)
    assert document["webhook_id"] == "4JH86294D6297924G"
    assert document["auth_algo"] == "SHA256withRSA"
    assert document["transmission_sig"] == VECTOR["headers"]["PAYPAL-TRANSMISSION-SIG"]
    assert client.verify_webhook_signature_online(VECTOR["headers"], BODY) is False


def test_online_verification_needs_a_json_object() -> None:
    with pytest.raises(MalformedInputError):
        make(PayPal({})).verify_webhook_signature_online(VECTOR["headers"], b"[1, 2]")
