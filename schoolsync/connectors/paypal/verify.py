"""Offline verification of a PayPal webhook transmission (the algorithm of PayPal's SDKs).

PayPal signs, with the private key of the certificate at ``PAYPAL-CERT-URL``::

    transmission_id|transmission_time|webhook_id|crc32(raw body)

where ``crc32`` is the unsigned decimal CRC-32 of the body's exact bytes; the signature in
``PAYPAL-TRANSMISSION-SIG`` is base64 RSASSA-PKCS1-v1_5 with SHA-256, announced as
``PAYPAL-AUTH-ALGO: SHA256withRSA``. Any other algorithm is refused (the SDK tests require
``SHA1withRSA`` to fail). The certificate must be within its validity period and name a host
that ends with an allowed suffix (``.paypal.com``) in its common name or DNS names, as the
Python SDK checks. Its chain up to DigiCert is not checked here: a certificate is trusted
because it was fetched over verified TLS from an allowed host, or because an operator seeded
the cache with it (:mod:`schoolsync.connectors.paypal.certs`).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from schoolsync.core.errors import VerificationError

PLATFORM = "paypal"
AUTH_ALGO = "SHA256withRSA"
HEADERS = {
    "transmission_id": "paypal-transmission-id",
    "transmission_time": "paypal-transmission-time",
    "transmission_sig": "paypal-transmission-sig",
    "cert_url": "paypal-cert-url",
    "auth_algo": "paypal-auth-algo",
}


@dataclass(frozen=True)
class Transmission:
    """The signature headers of one delivery."""

    transmission_id: str
    transmission_time: str
    transmission_sig: str
    cert_url: str
    auth_algo: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Transmission:
        """From request headers (any case).

        Raises:
            VerificationError: a signature header is missing.
        """
        lowered = {key.lower(): value for key, value in headers.items()}
        values = {field: lowered.get(header, "").strip() for field, header in HEADERS.items()}
        missing = [HEADERS[field].upper() for field, value in values.items() if not value]
        if missing:
            raise VerificationError(f"paypal webhook lacks {', '.join(missing)}", platform=PLATFORM)
        return cls(**values)

    def check_algorithm(self) -> None:
        """Raises ``VerificationError`` unless the algorithm is ``SHA256withRSA``."""
        if self.auth_algo != AUTH_ALGO:
            raise VerificationError(
                f"paypal PAYPAL-AUTH-ALGO {self.auth_algo[:40]!r} is not {AUTH_ALGO}",
                platform=PLATFORM,
            )


def crc32(body: bytes) -> int:
    return zlib.crc32(body) & 0xFFFFFFFF


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    """What PayPal signs for one delivery of ``body`` to the webhook ``webhook_id``."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{crc32(body)}".encode()


def host_allowed(host: str, suffixes: Sequence[str]) -> bool:
    """Whether ``host`` ends with one of ``suffixes`` (each starting with a dot)."""
    name = host.lower().rstrip(".")
    return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in suffixes)


def _names(cert: x509.Certificate) -> list[str]:
    names = [
        str(attribute.value)
        for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return names
    return names + list(extension.value.get_values_for_type(x509.DNSName))


def check_certificate(cert: x509.Certificate, *, suffixes: Sequence[str], now: datetime) -> None:
    """Raises ``VerificationError`` for an expired (or not yet valid) certificate, one that names
    no allowed host, or one without an RSA key."""
    if now < cert.not_valid_before_utc or now > cert.not_valid_after_utc:
        raise VerificationError(
            "paypal signing certificate is expired or not yet valid "
            f"(valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})",
            platform=PLATFORM,
        )
    if not any(host_allowed(name, suffixes) for name in _names(cert)):
        raise VerificationError(
            f"paypal signing certificate names no host ending in {', '.join(suffixes)}",
            platform=PLATFORM,
        )
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise VerificationError("paypal signing certificate has no RSA key", platform=PLATFORM)


def verify_offline(
    transmission: Transmission,
    body: bytes,
    webhook_id: str,
    cert: x509.Certificate,
    *,
    suffixes: Sequence[str],
    now: datetime,
) -> None:
    """Check one delivery against its certificate.

    Raises:
        VerificationError: another algorithm than SHA256withRSA, a certificate that is expired or
            not PayPal's, a signature that is not base64, or one that does not match.
    """
    transmission.check_algorithm()
    check_certificate(cert, suffixes=suffixes, now=now)
    try:
        signature = base64.b64decode(transmission.transmission_sig, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(
            "paypal PAYPAL-TRANSMISSION-SIG is not base64", platform=PLATFORM
        ) from None
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)  # check_certificate made sure
    message = signed_message(
        transmission.transmission_id, transmission.transmission_time, webhook_id, body
    )
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise VerificationError(
            "paypal transmission signature does not match", platform=PLATFORM
        ) from None
