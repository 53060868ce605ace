"""Offline verification of PayPal webhooks: the SDK test vector, tampering, the algorithm, the
certificate's host, expiry and cache."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from schoolsync.connectors.paypal import (
    CertStore,
    Transmission,
    cache_name,
    crc32,
    parse_pem,
    signed_message,
    verify_offline,
)
from schoolsync.core.errors import UnavailableError, VerificationError
from tests.connectors.paypal.signing import CERT_URL, make_signer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "paypal"
VECTOR = json.loads((FIXTURES / "sdk_signature_vector.json").read_text())
BODY = (FIXTURES / "sale_completed_body.json").read_bytes()
WHILE_VALID = datetime(2016, 1, 1, tzinfo=UTC)  # the vector's certificate: 2015-03-18..2017-03-22
SUFFIXES = (".paypal.com",)


def vector_cert() -> bytes:
    return str(VECTOR["cert_pem"]).encode()


def check(
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    webhook_id: str = VECTOR["webhook_id"],
    now: datetime = WHILE_VALID,
) -> None:
    verify_offline(
        Transmission.from_headers(headers),
        body,
        webhook_id,
        parse_pem(vector_cert()),
        suffixes=SUFFIXES,
        now=now,
    )


def test_the_sdk_vector_verifies() -> None:
    assert crc32(BODY) == int(VECTOR["expected_crc32_decimal"]) == 2771810304
    headers = VECTOR["headers"]
    message = signed_message(
        headers["PAYPAL-TRANSMISSION-ID"],
        headers["PAYPAL-TRANSMISSION-TIME"],
        VECTOR["webhook_id"],
        BODY,
    )
    assert message.decode() == VECTOR["expected_signed_message"]
    check(headers)


def test_one_changed_byte_in_the_body_fails() -> None:
    changed = BODY.replace(b'"total":"20.00"', b'"total":"21.00"')
    assert len(changed) == len(BODY) and changed != BODY
    with pytest.raises(VerificationError, match="does not match"):
        check(VECTOR["headers"], changed)


def test_one_changed_byte_in_the_signature_fails() -> None:
    raw = bytearray(base64.b64decode(VECTOR["headers"]["PAYPAL-TRANSMISSION-SIG"]))
    raw[10] ^= 0x01
    headers = dict(VECTOR["headers"], **{"PAYPAL-TRANSMISSION-SIG": base64.b64encode(raw).decode()})
    with pytest.raises(VerificationError, match="does not match"):
        check(headers)


@pytest.mark.parametrize("field", ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME"])
def test_a_changed_header_fails(field: str) -> None:
    headers = dict(VECTOR["headers"])
    headers[field] = headers[field][:-1] + ("0" if headers[field][-1] != "0" else "1")
    with pytest.raises(VerificationError):
        check(headers)


def test_another_webhook_id_fails() -> None:
    with pytest.raises(VerificationError):
        check(VECTOR["headers"], webhook_id="4JH86294D6297924H")


@pytest.mark.parametrize("algo", ["SHA1withRSA", "invalid_digest_method", "sha256", ""])
def test_only_sha256withrsa_is_accepted(algo: str) -> None:
    headers = dict(VECTOR["headers"], **{"PAYPAL-AUTH-ALGO": algo})
    with pytest.raises(VerificationError):
        check(headers)


def test_an_expired_certificate_is_refused() -> None:
    with pytest.raises(VerificationError, match="expired"):
        check(VECTOR["headers"], now=datetime.now(UTC))
    with pytest.raises(VerificationError, match="expired"):
        check(VECTOR["headers"], now=datetime(2015, 1, 1, tzinfo=UTC))


def test_a_certificate_for_another_host_is_refused() -> None:
    signer = make_signer("webhooks.example.com")
    headers = signer.headers(BODY, "WH1")
    with pytest.raises(VerificationError, match="names no host"):
        verify_offline(
            Transmission.from_headers(headers),
            BODY,
            "WH1",
            signer.cert,
            suffixes=SUFFIXES,
            now=datetime.now(UTC),
        )


def test_a_signature_that_is_not_base64_is_refused() -> None:
    headers = dict(VECTOR["headers"], **{"PAYPAL-TRANSMISSION-SIG": "not base64!"})
    with pytest.raises(VerificationError, match="base64"):
        check(headers)


def test_missing_headers_are_named() -> None:
    headers = {k: v for k, v in VECTOR["headers"].items() if k != "PAYPAL-CERT-URL"}
    with pytest.raises(VerificationError, match="PAYPAL-CERT-URL"):
        Transmission.from_headers(headers)


# --- the certificate cache -------------------------------------------------------------------


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.url}")

    return httpx.Client(transport=httpx.MockTransport(refuse))


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/v1/notifications/certs/CERT-1",
        "https://paypal.com.evil.example/cert",
        "https://notpaypal.com/cert",
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://user:pw@api.paypal.com/cert",
        "ftp://api.paypal.com/cert",
    ],
)
def test_a_cert_url_on_a_host_not_allowed_is_refused(tmp_path: Path, url: str) -> None:
    store = CertStore(tmp_path, http=no_network())
    with pytest.raises(VerificationError, match="PAYPAL-CERT-URL"):
        store.fetch(url)
    store.seed(url, vector_cert())  # an operator may seed anything: it is still not used
    with pytest.raises(VerificationError, match="PAYPAL-CERT-URL"):
        store.load(url)


def test_the_cache_is_named_by_the_url_hash(tmp_path: Path) -> None:
    url = VECTOR["headers"]["PAYPAL-CERT-URL"]
    store = CertStore(tmp_path, http=no_network())
    with pytest.raises(VerificationError, match="not in the cache"):
        store.load(url)
    path = store.seed(url, vector_cert())
    assert path == tmp_path / hashlib.sha256(url.encode()).hexdigest()
    assert path.name == cache_name(url)
    assert store.load(url).serial_number == parse_pem(vector_cert()).serial_number
    assert store.fetch(url).serial_number == parse_pem(vector_cert()).serial_number  # no request


def test_a_missing_certificate_is_fetched_once_and_cached(tmp_path: Path) -> None:
    calls: list[str] = []

    def paypal(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, content=vector_cert())

    store = CertStore(tmp_path, http=httpx.Client(transport=httpx.MockTransport(paypal)))
    url = VECTOR["headers"]["PAYPAL-CERT-URL"]
    store.fetch(url)
    store.fetch(url)
    assert calls == [url]
    assert (tmp_path / cache_name(url)).read_bytes() == vector_cert()


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (404, b'{"name":"RESOURCE_NOT_FOUND"}', VerificationError),
        (200, b"<html>not a certificate</html>", VerificationError),
        (503, b"", UnavailableError),
    ],
)
def test_fetch_failures(
    tmp_path: Path, status: int, content: bytes, error: type[Exception]
) -> None:
    store = CertStore(
        tmp_path,
        http=httpx.Client(
            transport=httpx.MockTransport(lambda request: httpx.Response(status, content=content))
        ),
    )
    with pytest.raises(error):
        store.fetch(CERT_URL)
    assert store.cached(CERT_URL) is None


def test_a_corrupt_cache_file_counts_as_missing(tmp_path: Path) -> None:
    store = CertStore(tmp_path, http=no_network())
    (tmp_path / cache_name(CERT_URL)).write_bytes(b"garbage")
    assert store.cached(CERT_URL) is None
    with pytest.raises(VerificationError):
        store.seed(CERT_URL, b"garbage")


def test_a_fresh_certificate_verifies_and_expires(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    signer = make_signer(not_before=now - timedelta(days=2), not_after=now - timedelta(days=1))
    headers = signer.headers(BODY, "WH1")
    with pytest.raises(VerificationError, match="expired"):
        verify_offline(
            Transmission.from_headers(headers), BODY, "WH1", signer.cert, suffixes=SUFFIXES, now=now
        )
    verify_offline(
        Transmission.from_headers(headers),
        BODY,
        "WH1",
        signer.cert,
        suffixes=SUFFIXES,
        now=now - timedelta(hours=36),
    )
