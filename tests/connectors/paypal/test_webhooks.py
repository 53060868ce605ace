"""PayPal's webhook source: verification before parsing, schools by webhook id, the typed
resources of the events we use, and the network kept out of ``accept``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.connectors.paypal import (
    Capture,
    CertStore,
    PayPalRoute,
    PayPalWebhook,
    Refund,
    Sale,
    event_resource,
    parse_event,
)
from schoolsync.core.errors import MalformedInputError, VerificationError
from tests.connectors.paypal.signing import CERT_URL, Signer, make_signer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "paypal"
VECTOR = json.loads((FIXTURES / "sdk_signature_vector.json").read_text())
SALE_BODY = (FIXTURES / "sale_completed_body.json").read_bytes()
CAPTURE_BODY = (FIXTURES / "capture_completed_event.json").read_bytes()
REFUND_BODY = (FIXTURES / "capture_refunded_event.json").read_bytes()


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.url}")

    return httpx.Client(transport=httpx.MockTransport(refuse))


def vector_source(store: CertStore) -> PayPalWebhook:
    route = PayPalRoute("fitness", VECTOR["webhook_id"], certs=store)
    return PayPalWebhook([route], clock=lambda: datetime(2016, 1, 1, tzinfo=UTC))


def vector_request() -> RawRequest:
    return RawRequest(body=SALE_BODY, headers=lower(VECTOR["headers"]))


@pytest.fixture
def signer() -> Signer:
    return make_signer()


def test_is_a_webhook_source(tmp_path: Path) -> None:
    checked: WebhookSource = vector_source(CertStore(tmp_path))
    assert checked.name == "paypal"


def test_the_sdk_vector_is_accepted_from_a_seeded_cache(tmp_path: Path) -> None:
    store = CertStore(tmp_path, http=no_network())
    store.seed(VECTOR["headers"]["PAYPAL-CERT-URL"], VECTOR["cert_pem"].encode())
    event = vector_source(store).accept(vector_request())
    assert (event.dedup_key, event.school) == ("WH-0G2756385H040842W-5Y612302CV158622M", "fitness")


def test_accept_never_fetches_a_certificate(tmp_path: Path) -> None:
    source = vector_source(CertStore(tmp_path, http=no_network()))
    with pytest.raises(VerificationError, match="not in the cache"):
        source.accept(vector_request())


def test_prepare_fetches_the_certificate_then_accept_verifies(tmp_path: Path) -> None:
    fetched: list[str] = []

    def paypal(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=VECTOR["cert_pem"].encode())

    store = CertStore(tmp_path, http=httpx.Client(transport=httpx.MockTransport(paypal)))
    source = vector_source(store)
    source.prepare(vector_request())
    source.prepare(vector_request())  # cached now
    assert fetched == [VECTOR["headers"]["PAYPAL-CERT-URL"]]
    assert source.accept(vector_request()).school == "fitness"


def test_prepare_refuses_a_foreign_cert_url_without_a_request(tmp_path: Path) -> None:
    headers = dict(vector_request().headers, **{"paypal-cert-url": "https://evil.example/c.pem"})
    source = vector_source(CertStore(tmp_path, http=no_network()))
    with pytest.raises(VerificationError, match="does not end with"):
        source.prepare(RawRequest(body=SALE_BODY, headers=headers))


@pytest.mark.parametrize("algo", ["SHA1withRSA", "SHA512withRSA", "none"])
def test_another_algorithm_is_refused(tmp_path: Path, signer: Signer, algo: str) -> None:
    store = CertStore(tmp_path, http=no_network())
    store.seed(CERT_URL, signer.pem)
    source = PayPalWebhook([PayPalRoute("fitness", "WH-A", certs=store)])
    request = RawRequest(body=CAPTURE_BODY, headers=signer.headers(CAPTURE_BODY, "WH-A", algo=algo))
    with pytest.raises(VerificationError, match="SHA256withRSA"):
        source.prepare(request)
    with pytest.raises(VerificationError, match="SHA256withRSA"):
        source.accept(request)


def test_a_tampered_body_is_refused(tmp_path: Path, signer: Signer) -> None:
    store = CertStore(tmp_path, http=no_network())
    store.seed(CERT_URL, signer.pem)
    source = PayPalWebhook([PayPalRoute("fitness", "WH-A", certs=store)])
    headers = signer.headers(CAPTURE_BODY, "WH-A")
    assert source.accept(RawRequest(body=CAPTURE_BODY, headers=headers)).school == "fitness"
    tampered = CAPTURE_BODY.replace(b'"2.51"', b'"9.51"', 1)
    with pytest.raises(VerificationError, match="does not match"):
        source.accept(RawRequest(body=tampered, headers=headers))


def test_the_webhook_id_names_the_school(tmp_path: Path, signer: Signer) -> None:
    store = CertStore(tmp_path, http=no_network())
    store.seed(CERT_URL, signer.pem)
    source = PayPalWebhook(
        [
            PayPalRoute("fitness", "WH-FITNESS", certs=store),
            PayPalRoute("music", "WH-MUSIC", certs=store),
        ]
    )
    for webhook_id, school in (("WH-FITNESS", "fitness"), ("WH-MUSIC", "music")):
        request = RawRequest(body=REFUND_BODY, headers=signer.headers(REFUND_BODY, webhook_id))
        assert source.accept(request).school == school
    stranger = RawRequest(body=REFUND_BODY, headers=signer.headers(REFUND_BODY, "WH-OTHER"))
    with pytest.raises(VerificationError, match="none of 2 webhooks"):
        source.accept(stranger)


def test_a_verified_event_with_a_broken_resource_is_malformed(
    tmp_path: Path, signer: Signer
) -> None:
    store = CertStore(tmp_path, http=no_network())
    store.seed(CERT_URL, signer.pem)
    source = PayPalWebhook([PayPalRoute("fitness", "WH-A", certs=store)])
    body = json.dumps(
        {"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "X"}}
    ).encode()
    with pytest.raises(MalformedInputError, match="amount"):
        source.accept(RawRequest(body=body, headers=signer.headers(body, "WH-A")))
    unknown = json.dumps(
        {"id": "WH-2", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {}}
    ).encode()
    event = source.accept(RawRequest(body=unknown, headers=signer.headers(unknown, "WH-A")))
    assert event.dedup_key == "WH-2"


def test_missing_headers_are_a_verification_error(tmp_path: Path) -> None:
    source = vector_source(CertStore(tmp_path, http=no_network()))
    with pytest.raises(VerificationError, match="PAYPAL-TRANSMISSION-SIG"):
        source.accept(RawRequest(body=SALE_BODY, headers={"paypal-transmission-id": "x"}))


class FakePayPal:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[bytes] = []

    def verify_webhook_signature_online(self, headers: Mapping[str, str], event: bytes) -> bool:
        self.calls.append(event)
        return self.answer


def test_online_verification_happens_in_prepare() -> None:
    paypal = FakePayPal(True)
    source = PayPalWebhook([PayPalRoute("fitness", "WH-A", verify="online", client=paypal)])
    request = vector_request()
    with pytest.raises(VerificationError, match="prepare"):
        source.accept(request)
    source.prepare(request)
    assert paypal.calls == [SALE_BODY]
    assert source.accept(request).school == "fitness"
    # a different body with the same headers was not verified
    other = RawRequest(body=SALE_BODY + b" ", headers=request.headers)
    with pytest.raises(VerificationError):
        source.accept(other)


def test_online_failure_is_refused() -> None:
    source = PayPalWebhook(
        [PayPalRoute("fitness", "WH-A", verify="online", client=FakePayPal(False))]
    )
    source.prepare(vector_request())
    with pytest.raises(VerificationError):
        source.accept(vector_request())


def test_routes_are_checked_when_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PayPalWebhook([])
    with pytest.raises(ValueError):
        PayPalWebhook([PayPalRoute("a", "WH")])
    with pytest.raises(ValueError):
        PayPalWebhook([PayPalRoute("a", "WH", verify="online")])


# --- the events ------------------------------------------------------------------------------


def test_capture_completed() -> None:
    event = parse_event(CAPTURE_BODY)
    assert event.event_type == "PAYMENT.CAPTURE.COMPLETED"
    capture = event_resource(event)
    assert isinstance(capture, Capture)
    assert (capture.id, capture.status) == ("27M47624FP291604U", "COMPLETED")
    assert capture.amount.value == Decimal("2.51")
    assert capture.fee is not None and capture.fee.value == Decimal("0.37")
    assert capture.final_capture is True


def test_capture_refunded() -> None:
    refund = event_resource(parse_event(REFUND_BODY))
    assert isinstance(refund, Refund)
    assert refund.amount.value == Decimal("25.00")
    assert refund.capture_id == "0JF852973C016714D"
    assert (refund.custom_id, refund.invoice_id) == ("order-12345", "GC-12345")


def test_sale_completed() -> None:
    event = parse_event(SALE_BODY)
    sale = event_resource(event)
    assert isinstance(sale, Sale)
    assert sale.amount.total == Decimal("20.00")
    assert sale.amount.currency == "USD"
    assert sale.transaction_fee is not None and sale.transaction_fee.value == Decimal("0.88")
    assert sale.parent_payment == "PAY-86C81811X5228590KKVNARQQ"
    assert event.create_time == datetime(2015, 5, 18, 15, 45, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"event_type": "X"}', b'{"id": "", "event_type": "X"}']
)
def test_unreadable_events(body: bytes) -> None:
    with pytest.raises(MalformedInputError):
        parse_event(body)
