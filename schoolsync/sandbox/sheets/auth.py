"""Service accounts and Google's OAuth 2.0 token endpoint for them.

From https://developers.google.com/identity/protocols/oauth2/service-account ("Preparing to make
an authorized API call" / HTTP/REST): the client signs a JWT with the key file's private key,
header ``{"alg": "RS256", "typ": "JWT"}``, claims ``iss`` (the service account's email),
``scope`` (space-separated), ``aud`` (the token endpoint), ``iat`` and ``exp`` (at most one hour
later), and POSTs it as a form: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and
``assertion=<jwt>``. The answer is ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``;
refusals are ``{"error", "error_description"}`` with 400 ("invalid_grant", "invalid_scope",
"unsupported_grant_type", "invalid_request").

The signature is checked here with ``cryptography`` directly (RSASSA-PKCS1-v1_5 with SHA-256, the
JWS meaning of RS256), not with the library our connector signs with, so that the two can
disagree.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from schoolsync.sandbox.sheets.errors import OAuthError

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
WRITE_SCOPES = frozenset(SCOPE_PREFIX + name for name in ("spreadsheets", "drive", "drive.file"))
READ_SCOPES = WRITE_SCOPES | {
    SCOPE_PREFIX + name for name in ("spreadsheets.readonly", "drive.readonly")
}
MAX_LIFETIME_S = 3600
CLOCK_SKEW_S = 300
_LIFETIME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    key_id: str
    public_key: rsa.RSAPublicKey
    private_pem: str | None = None  # only for the account the sandbox made itself
    client_id: str = ""


def generate_account(email: str) -> ServiceAccount:
    """A fresh 2048-bit RSA key pair, as the Cloud console makes for "Add key > JSON"."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ServiceAccount(
        email=email,
        key_id=secrets.token_hex(20),
        public_key=key.public_key(),
        private_pem=pem,
        client_id=str(100_000_000_000_000_000_000 + secrets.randbelow(10**20)),
    )


def registered_account(email: str, public_pem: str) -> ServiceAccount:
    """An account whose private key lives elsewhere; only its public key is known here."""
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"the public key of {email} is not an RSA key")
    return ServiceAccount(email=email, key_id="", public_key=key)


def key_file(account: ServiceAccount, project_id: str, token_uri: str) -> dict[str, str]:
    """The JSON key file, field for field as the Cloud console hands it out."""
    if account.private_pem is None:
        raise ValueError("only the sandbox's own account has a key file")
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": account.key_id,
        "private_key": account.private_pem,
        "client_email": account.email,
        "client_id": account.client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
        + account.email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def verify_assertion(
    assertion: str,
    accounts: dict[str, ServiceAccount],
    audience: Callable[[str], bool],
    *,
    now: float | None = None,
) -> tuple[ServiceAccount, frozenset[str]]:
    """The account and scopes of a valid assertion; ``OAuthError`` as Google words it.

    ``audience`` says whether an ``aud`` claim names this token endpoint.
    """
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _grant("Invalid JWT: invalid format.")
    try:
        header = json.loads(_b64(parts[0]))
        claims = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, binascii.Error):
        raise _grant("Invalid JWT: invalid format.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _grant("Invalid JWT: invalid format.")
    if header.get("alg") != "RS256":
        raise _grant("Invalid JWT Signature.")
    account = accounts.get(str(claims.get("iss", "")))
    if account is None:
        raise _grant("Invalid grant: account not found")
    try:
        account.public_key.verify(
            signature,
            f"{parts[0]}.{parts[1]}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise _grant("Invalid JWT Signature.") from None
    if account.key_id and header.get("kid") not in (None, account.key_id):
        raise _grant("Invalid JWT Signature.")
    if not audience(str(claims.get("aud", ""))):
        raise _grant("Invalid JWT: Failed audience check.")
    _check_times(claims, time.time() if now is None else now)
    scope = claims.get("scope")
    scopes = frozenset(str(scope).split()) if isinstance(scope, str) else frozenset()
    if not scopes or any(not s.startswith(SCOPE_PREFIX) for s in scopes):
        raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    return account, scopes


def _check_times(claims: dict[str, Any], now: float) -> None:
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise _grant(_LIFETIME)
    if (
        exp - iat > MAX_LIFETIME_S
        or exp <= iat
        or iat > now + CLOCK_SKEW_S
        or exp < now - CLOCK_SKEW_S
    ):
        raise _grant(_LIFETIME)


@dataclass(frozen=True)
class Grant:
    email: str
    scopes: frozenset[str]
    expires_at: float  # time.monotonic()

    def can_read(self) -> bool:
        return bool(self.scopes & READ_SCOPES)

    def can_write(self) -> bool:
        return bool(self.scopes & WRITE_SCOPES)


class AccessTokens:
    """Access tokens handed out by the token endpoint, until they expire."""

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}

    def issue(self, email: str, scopes: frozenset[str]) -> dict[str, Any]:
        token = "ya29.sandbox-" + secrets.token_urlsafe(48)
        now = time.monotonic()
        with self._lock:
            self._grants = {t: g for t, g in self._grants.items() if g.expires_at > now}
            self._grants[token] = Grant(email, scopes, now + self.lifetime_s)
        return {
            "access_token": token,
            "expires_in": max(1, int(self.lifetime_s) - 1),
            "token_type": "Bearer",
        }

    def lookup(self, token: str) -> Grant | None:
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or grant.expires_at <= time.monotonic():
            return None
        return grant

    def revoke_all(self) -> int:
        with self._lock:
            count = len(self._grants)
            self._grants.clear()
        return count
