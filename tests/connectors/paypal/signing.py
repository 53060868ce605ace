"""A stand-in for PayPal's signing side, for tests: a key, a certificate, signed headers."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-tests-0001"


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def headers(
        self,
        body: bytes,
        webhook_id: str,
        *,
        transmission_id: str = "0b1e5f10-a9f1-11ef-9c3f-0d2f5e8a7b11",
        transmission_time: str = "2024-11-23T10:00:05Z",
        cert_url: str = CERT_URL,
        algo: str = "SHA256withRSA",
    ) -> dict[str, str]:
        crc = zlib.crc32(body) & 0xFFFFFFFF
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{crc}".encode()
        signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "paypal-transmission-id": transmission_id,
            "paypal-transmission-time": transmission_time,
            "paypal-transmission-sig": base64.b64encode(signature).decode(),
            "paypal-cert-url": cert_url,
            "paypal-auth-algo": algo,
            "content-type": "application/json",
        }


def make_signer(
    host: str = "messageverificationcerts.sandbox.paypal.com",
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return Signer(key=key, cert=cert)
