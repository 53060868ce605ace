"""The sandbox's signing key and its self-signed certificate, made at start-up.

PayPal signs webhook transmissions with the key of a certificate issued to
``messageverificationcerts.sandbox.paypal.com`` (live: ``messageverificationcerts.paypal.com``)
and names its URL in ``PAYPAL-CERT-URL``. The sandbox's certificate carries the same name (in
the subject and as a DNS name) but is self-signed: it chains to nothing.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SUBJECT_HOST = "messageverificationcerts.sandbox.paypal.com"


@dataclass(frozen=True)
class SigningKey:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: bytes) -> str:
        """Base64 RSASSA-PKCS1-v1_5 with SHA-256 (``SHA256withRSA``)."""
        raw = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode("ascii")


def generate(valid_days: int = 365) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal sandbox (schoolsync)"),
            x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT_HOST),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SUBJECT_HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key=key, cert=cert)
