"""The PayPal sandbox answers as PayPal's REST docs say for what our side uses: client
credentials, captures, refunds, orders and v1 sales, webhook events signed like PayPal's
(checked here by hand with the served certificate) and verify-webhook-signature."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from schoolsync.sandbox.paypal import PayPalSandboxConfig, create_app
from schoolsync.sandbox.paypal.api import top_level_spans
from tests.conftest import serving

CONFIG = PayPalSandboxConfig()
BASE = "/paypal"


def make_client(**settings: Any) -> TestClient:
    config = PayPalSandboxConfig(webhook_retry_delay_s=0.01, **settings)
    return TestClient(Starlette(routes=[Mount(BASE, app=create_app(config))]))


def token(client: TestClient) -> str:
    answer = client.post(
        f"{BASE}/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CONFIG.client_id, CONFIG.client_secret),
    )
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["access_token"]
    return value


def bearer(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client)}"}


def pay(client: TestClient, **extra: Any) -> dict[str, Any]:
    body = {
        "amount": "100.00",
        "currency": "EUR",
        "custom_id": "order-1",
        "invoice_id": "GC-1",
        "payer": {"given_name": "Anna", "surname": "Petrova", "email": "anna@example.com"},
        **extra,
    }
    answer = client.post(f"{BASE}/_sandbox/captures", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def verify_by_hand(pem: bytes, headers: dict[str, str], body: bytes, webhook_id: str) -> bool:
    cert = x509.load_pem_x509_certificate(pem)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    crc = zlib.crc32(body) & 0xFFFFFFFF
    message = (
        f"{headers['PAYPAL-TRANSMISSION-ID']}|{headers['PAYPAL-TRANSMISSION-TIME']}|"
        f"{webhook_id}|{crc}"
    )
    try:
        key.verify(
            base64.b64decode(headers["PAYPAL-TRANSMISSION-SIG"]),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


class Listener:
    """A webhook listener that answers the statuses it is given, then 200."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.received.append((dict(request.headers), await request.body()))
            status = self.statuses.pop(0) if self.statuses else 200
            return JSONResponse({}, status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    receiver = Listener()
    with serving(receiver.app()) as url:
        yield receiver, f"{url}/hook"


# -- OAuth -----------------------------------------------------------------------------------


def test_client_credentials_give_a_bearer_token() -> None:
    with make_client() as client:
        answer = client.post(
            f"{BASE}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(CONFIG.client_id, CONFIG.client_secret),
        ).json()
        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == 32400
        assert answer["app_id"] == CONFIG.app_id
        assert answer["access_token"].startswith("A21AA")


def test_bad_credentials_and_grants() -> None:
    with make_client() as client:
        wrong = client.post(
            f"{BASE}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(CONFIG.client_id, "nope"),
        )
        assert wrong.status_code == 401
        assert wrong.json() == {
            "error": "invalid_client",
            "error_description": "Client Authentication failed",
        }
        grant = client.post(
            f"{BASE}/v1/oauth2/token",
            data={"grant_type": "password"},
            auth=(CONFIG.client_id, CONFIG.client_secret),
        )
        assert grant.status_code == 400
        assert grant.json()["error"] == "unsupported_grant_type"


def test_the_api_wants_a_live_token() -> None:
    with make_client() as client:
        capture_id = pay(client)["capture"]["id"]
        path = f"{BASE}/v2/payments/captures/{capture_id}"
        assert client.get(path).status_code == 401
        bad = client.get(path, headers={"Authorization": "Bearer nope"})
        assert (bad.status_code, bad.json()["error"]) == (401, "invalid_token")
        headers = bearer(client)
        assert client.get(path, headers=headers).status_code == 200
        client.post(f"{BASE}/_sandbox/tokens/revoke")
        assert client.get(path, headers=headers).status_code == 401


# -- captures and orders ----------------------------------------------------------------------


def test_a_capture_and_its_order() -> None:
    with make_client() as client:
        paid = pay(client)
        headers = bearer(client)
        capture = client.get(
            f"{BASE}/v2/payments/captures/{paid['capture']['id']}", headers=headers
        ).json()
        assert len(capture["id"]) == 17 and capture["id"].isalnum()
        assert capture["status"] == "COMPLETED"
        assert capture["amount"] == {"currency_code": "EUR", "value": "100.00"}
        breakdown = capture["seller_receivable_breakdown"]
        assert breakdown["paypal_fee"]["value"] == "3.98"  # 3.49 % + 0.49
        assert breakdown["net_amount"]["value"] == "96.02"
        assert (capture["custom_id"], capture["invoice_id"]) == ("order-1", "GC-1")
        order_id = capture["supplementary_data"]["related_ids"]["order_id"]
        order = client.get(f"{BASE}/v2/checkout/orders/{order_id}", headers=headers).json()
        assert order["status"] == "COMPLETED"
        assert order["payer"]["email_address"] == "anna@example.com"
        assert order["payer"]["name"] == {"given_name": "Anna", "surname": "Petrova"}
        assert order["purchase_units"][0]["payments"]["captures"][0]["id"] == capture["id"]


def test_unknown_ids_are_resource_not_found() -> None:
    with make_client() as client:
        missing = client.get(f"{BASE}/v2/checkout/orders/NOPE", headers=bearer(client))
        assert missing.status_code == 404
        body = missing.json()
        assert body["name"] == "RESOURCE_NOT_FOUND"
        assert body["details"][0]["issue"] == "INVALID_RESOURCE_ID"
        assert missing.headers["Paypal-Debug-Id"] == body["debug_id"]


def test_bad_capture_requests() -> None:
    with make_client() as client:
        for body in (
            {},
            {"amount": "-1"},
            {"amount": "1.001"},
            {"amount": "5", "currency": "EURO"},
        ):
            assert client.post(f"{BASE}/_sandbox/captures", json=body).status_code == 400


def test_a_refund_is_read_with_the_capture_it_refunds() -> None:
    with make_client() as client:
        capture_id = pay(client)["capture"]["id"]
        made = client.post(f"{BASE}/_sandbox/captures/{capture_id}/refund", json={}).json()
        headers = bearer(client)
        refund = client.get(f"{BASE}/v2/payments/refunds/{made['refund']['id']}", headers=headers)
        assert refund.status_code == 200
        assert refund.json() == made["refund"]
        assert refund.json()["status"] == "COMPLETED"
        assert refund.json()["amount"] == {"currency_code": "EUR", "value": "100.00"}
        up = [link["href"] for link in refund.json()["links"] if link["rel"] == "up"]
        assert up == [f"https://api.sandbox.paypal.com/v2/payments/captures/{capture_id}"]
        capture = client.get(f"{BASE}/v2/payments/captures/{capture_id}", headers=headers)
        assert capture.json()["status"] == "REFUNDED"
        missing = client.get(f"{BASE}/v2/payments/refunds/NOPE", headers=headers)
        assert missing.status_code == 404 and missing.json()["name"] == "RESOURCE_NOT_FOUND"
        assert client.get(f"{BASE}/v2/payments/refunds/{made['refund']['id']}").status_code == 401


def test_a_v1_sale_its_event_and_its_404() -> None:
    with make_client() as client:
        made = client.post(
            f"{BASE}/_sandbox/sales",
            json={
                "amount": "20.00",
                "currency": "usd",
                "custom": "order-2",
                "invoice_number": "GC-2",
            },
        )
        assert made.status_code == 200, made.text
        sale = made.json()["sale"]
        assert (sale["state"], sale["amount"]) == (
            "completed",
            {"total": "20.00", "currency": "USD"},
        )
        assert sale["transaction_fee"] == {"value": "1.19", "currency": "USD"}  # 3.49 % + 0.49
        assert (sale["custom"], sale["invoice_number"]) == ("order-2", "GC-2")
        assert sale["parent_payment"].startswith("PAY-")
        headers = bearer(client)
        fetched = client.get(f"{BASE}/v1/payments/sale/{sale['id']}", headers=headers)
        assert fetched.status_code == 200 and fetched.json() == sale
        event = made.json()["event"]
        body = json.loads(event["body"])
        assert (body["event_type"], body["resource_type"], body["resource_version"]) == (
            "PAYMENT.SALE.COMPLETED",
            "sale",
            "1.0",
        )
        assert body["resource"] == sale
        pem = client.get(f"{BASE}/_sandbox/cert.pem").content
        assert verify_by_hand(pem, event["headers"], event["body"].encode(), CONFIG.webhook_id)
        missing = client.get(f"{BASE}/v1/payments/sale/NOPE", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["name"] == "INVALID_RESOURCE_ID"
        assert missing.headers["Paypal-Debug-Id"] == missing.json()["debug_id"]
        assert "details" not in missing.json()  # v1's flat error body
        assert client.get(f"{BASE}/v1/payments/sale/{sale['id']}").status_code == 401
        for bad in ({}, {"amount": "0"}, {"amount": "5", "currency": "EURO"}):
            assert client.post(f"{BASE}/_sandbox/sales", json=bad).status_code == 400
        assert client.get(f"{BASE}/_sandbox/state").json()["sales"] == 1


# -- events -----------------------------------------------------------------------------------


def test_events_are_signed_like_paypal() -> None:
    with make_client() as client:
        event = pay(client)["event"]
        pem = client.get(f"{BASE}/_sandbox/cert.pem").content
        body, headers = event["body"].encode(), event["headers"]
        assert headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"
        assert headers["PAYPAL-CERT-URL"] == CONFIG.cert_url
        assert verify_by_hand(pem, headers, body, CONFIG.webhook_id)
        assert not verify_by_hand(pem, headers, body + b" ", CONFIG.webhook_id)
        assert not verify_by_hand(pem, headers, body, "ANOTHER-WEBHOOK")
        # the same certificate at the cert URL's path
        name = CONFIG.cert_url.rsplit("/", 1)[-1]
        assert client.get(f"{BASE}/v1/notifications/certs/{name}").content == pem
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.subject.rfc4514_string().startswith(
            "CN=messageverificationcerts.sandbox.paypal.com"
        )


def test_the_event_envelope() -> None:
    with make_client() as client:
        paid = pay(client)
        event = json.loads(paid["event"]["body"])
        assert event["id"].startswith("WH-")
        assert event["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
        assert (event["resource_type"], event["event_version"], event["resource_version"]) == (
            "capture",
            "1.0",
            "2.0",
        )
        assert event["resource"] == paid["capture"]
        listed = client.get(f"{BASE}/_sandbox/events").json()["events"]
        assert [e["id"] for e in listed] == [event["id"]]


def test_a_bad_signature_on_request() -> None:
    with make_client() as client:
        event = pay(client, bad_signature=True)["event"]
        pem = client.get(f"{BASE}/_sandbox/cert.pem").content
        assert not verify_by_hand(pem, event["headers"], event["body"].encode(), CONFIG.webhook_id)


def test_delivery_retries_with_new_transmissions(listener: tuple[Listener, str]) -> None:
    receiver, url = listener
    receiver.statuses = [500, 503]
    with make_client(webhook_url=url) as client:
        event = pay(client)["event"]
        pem = client.get(f"{BASE}/_sandbox/cert.pem").content
        state = client.get(f"{BASE}/_sandbox/state").json()
    assert event["delivered"] is True
    assert [a.get("status") for a in event["deliveries"][0]["attempts"]] == [500, 503, 200]
    ids = {headers["paypal-transmission-id"] for headers, _ in receiver.received}
    assert len(ids) == 3
    for headers, body in receiver.received:
        assert body == event["body"].encode()
        upper = {key.upper(): value for key, value in headers.items()}
        assert verify_by_hand(pem, upper, body, CONFIG.webhook_id)
    assert (state["delivered"], state["attempts"]) == (1, 3)


def test_delivery_gives_up(listener: tuple[Listener, str]) -> None:
    receiver, url = listener
    receiver.statuses = [401] * 10
    with make_client(webhook_url=url, webhook_retries=1) as client:
        event = pay(client)["event"]
    assert event["delivered"] is False
    assert len(event["deliveries"][0]["attempts"]) == 2


def test_refund_and_resend(listener: tuple[Listener, str]) -> None:
    receiver, url = listener
    with make_client(webhook_url=url) as client:
        paid = pay(client)
        capture_id = paid["capture"]["id"]
        refunded = client.post(
            f"{BASE}/_sandbox/captures/{capture_id}/refund", json={"amount": "40"}
        )
        assert refunded.status_code == 200
        refund_event = json.loads(refunded.json()["event"]["body"])
        assert refund_event["event_type"] == "PAYMENT.CAPTURE.REFUNDED"
        up = [link["href"] for link in refund_event["resource"]["links"] if link["rel"] == "up"]
        assert up[0].endswith(f"/v2/payments/captures/{capture_id}")
        capture = client.get(f"{BASE}/v2/payments/captures/{capture_id}", headers=bearer(client))
        assert capture.json()["status"] == "PARTIALLY_REFUNDED"
        too_much = client.post(
            f"{BASE}/_sandbox/captures/{capture_id}/refund", json={"amount": "500"}
        )
        assert too_much.status_code == 400
        resent = client.post(f"{BASE}/_sandbox/events/{paid['event']['id']}/resend")
        assert resent.status_code == 200
    bodies = [body for _, body in receiver.received]
    assert bodies.count(paid["event"]["body"].encode()) == 2


# -- verify-webhook-signature ------------------------------------------------------------------


def verify_request(
    event: dict[str, Any], *, webhook_event_text: str | None = None, **changes: Any
) -> bytes:
    headers = event["headers"]
    fields = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": CONFIG.webhook_id,
        **changes,
    }
    text = event["body"] if webhook_event_text is None else webhook_event_text
    return json.dumps(fields)[:-1].encode() + b', "webhook_event": ' + text.encode() + b"}"


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "SUCCESS"),
        ({"webhook_id": "0000000000000000X"}, "FAILURE"),
        ({"auth_algo": "SHA1withRSA"}, "FAILURE"),
        ({"cert_url": "https://api.paypal.com/v1/notifications/certs/CERT-other"}, "FAILURE"),
        ({"transmission_id": "00000000-0000-0000-0000-000000000000"}, "FAILURE"),
    ],
)
def test_verify_webhook_signature(changes: dict[str, Any], status: str) -> None:
    with make_client() as client:
        event = pay(client)["event"]
        answer = client.post(
            f"{BASE}/v1/notifications/verify-webhook-signature",
            content=verify_request(event, **changes),
            headers={**bearer(client), "Content-Type": "application/json"},
        )
        assert answer.status_code == 200
        assert answer.json() == {"verification_status": status}


def test_verify_takes_the_event_bytes_as_sent() -> None:
    with make_client() as client:
        event = pay(client)["event"]
        pretty = json.dumps(json.loads(event["body"]), indent=2)
        answer = client.post(
            f"{BASE}/v1/notifications/verify-webhook-signature",
            content=verify_request(event, webhook_event_text=pretty),
            headers={**bearer(client), "Content-Type": "application/json"},
        )
        assert answer.json() == {"verification_status": "FAILURE"}


def test_verify_refuses_incomplete_requests() -> None:
    with make_client() as client:
        headers = {**bearer(client), "Content-Type": "application/json"}
        missing = client.post(
            f"{BASE}/v1/notifications/verify-webhook-signature",
            json={"auth_algo": "SHA256withRSA"},
            headers=headers,
        )
        assert missing.status_code == 400
        assert missing.json()["name"] == "VALIDATION_ERROR"
        broken = client.post(
            f"{BASE}/v1/notifications/verify-webhook-signature", content=b"{", headers=headers
        )
        assert (broken.status_code, broken.json()["name"]) == (400, "INVALID_REQUEST")


def test_top_level_spans() -> None:
    text = ' { "a" : 1 , "b":{"c": [1, "}"]}, "d": "x"} '
    spans = top_level_spans(text)
    assert text[spans["b"][1] : spans["b"][2]] == '{"c": [1, "}"]}'
    assert spans["a"][0] == 1 and spans["d"][0] == "x"
    assert top_level_spans("{}") == {}
    for bad in ("[]", '{"a": 1', '{"a": 1} x', "{1: 2}"):
        with pytest.raises(ValueError):
            top_level_spans(bad)


def test_state_and_reset_keep_the_certificate() -> None:
    with make_client() as client:
        pay(client)
        pem = client.get(f"{BASE}/_sandbox/cert.pem").content
        state = client.get(f"{BASE}/_sandbox/state").json()
        assert (state["captures"], state["events"]) == (1, 1)
        assert state["captures_by_status"] == {"COMPLETED": 1}
        client.post(f"{BASE}/_sandbox/reset")
        state = client.get(f"{BASE}/_sandbox/state").json()
        assert (state["captures"], state["events"]) == (0, 0)
        assert client.get(f"{BASE}/_sandbox/cert.pem").content == pem
