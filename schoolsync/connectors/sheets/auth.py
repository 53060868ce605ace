"""Access tokens for a service account: the OAuth 2.0 JWT-bearer grant, with google-auth signing.

From https://developers.google.com/identity/protocols/oauth2/service-account (HTTP/REST): a JWT
``{"alg": "RS256", "typ": "JWT", "kid": <private_key_id>}`` with claims ``iss`` (the key file's
``client_email``), ``scope``, ``aud`` (the token endpoint), ``iat`` and ``exp = iat + 3600``,
signed with the key file's ``private_key``, is POSTed as a form
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`` to ``token_uri``; the
answer is ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``.

- The key file is read on first need, never at construction: a missing, unreadable or invalid
  file is a ``ConfigError`` naming the path and the problem, never the file's content.
- The token is kept in memory until 60 s before it expires; one thread refreshes while the
  others wait for its result. :meth:`ServiceAccountTokens.invalidate` drops it after a 401.
- Token endpoint answers: 400/401 (``invalid_grant``: bad signature, unknown or deleted key,
  clock skew; ``invalid_scope``) -> ``AuthError``; 429 -> ``RateLimitedError``; 5xx, timeouts ->
  ``UnavailableError``. Messages carry Google's ``error`` and ``error_description``, never the
  assertion or a token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from google.auth import crypt, jwt
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint, account_url, body_failure, build_client, send
from schoolsync.connectors.sheets.models import ServiceAccountKey, TokenErrorBody, TokenResponse
from schoolsync.core.errors import AuthError, ConfigError, PermanentError
from schoolsync.core.pii import mask_text

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # the most Google accepts
REFRESH_MARGIN_S = 60.0


def _oauth_detail(response: httpx.Response) -> str:
    body = TokenErrorBody.model_validate_json(response.content)
    text = f"{body.error}: {body.error_description}" if body.error_description else body.error
    return mask_text(text)[:200]


class ServiceAccountTokens:
    """Bearer tokens for one service account, from its JSON key file. Thread-safe.

    ``token_url`` overrides the key file's ``token_uri`` (the sandbox). ``http`` is the client
    for the token endpoint (an absolute URL is used); one is built when not given, and
    :meth:`close` closes it. ``clock`` is wall-clock seconds (tests move it).
    """

    def __init__(
        self,
        key_file: Path,
        *,
        endpoint: Endpoint,
        token_url: str | None = None,
        http: httpx.Client | None = None,
        timeout_s: float = 20.0,
        scope: str = SCOPE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_file = Path(key_file)
        self.endpoint = endpoint
        self._token_url = token_url
        self._http = http
        self._owns_http = http is None
        self._timeout_s = timeout_s
        self._scope = scope
        self._clock = clock
        self._lock = threading.RLock()
        self._key: ServiceAccountKey | None = None
        self._signer: crypt.Signer | None = None
        self._token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"ServiceAccountTokens(account={self.endpoint.account!r}, key_file={str(self.key_file)!r})"

    @property
    def client_email(self) -> str:
        """The service account's email: spreadsheets must be shared with it.

        Raises:
            ConfigError: the key file cannot be read or is not a service-account key.
        """
        return self._load().client_email

    def token(self) -> str:
        """A valid access token, from memory or freshly exchanged.

        Raises:
            ConfigError: the key file is missing or invalid.
            AuthError: the token endpoint refused the assertion.
            RateLimitedError, UnavailableError: the token endpoint is busy or down.
        """
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            self._token = None
            token, expires_in = self._exchange(now)
            self._token, self._expires_at = token, now + expires_in
            return token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given): after a 401."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    # --- the key file --------------------------------------------------------------------------

    def _problem(self, what: str) -> ConfigError:
        return ConfigError(
            f"sheets key file {self.key_file} {what}",
            platform=self.endpoint.platform,
            account=self.endpoint.account,
        )

    def _load(self) -> ServiceAccountKey:
        with self._lock:
            if self._key is not None:
                return self._key
            try:
                raw = self.key_file.read_bytes()
            except OSError as exc:
                raise self._problem(
                    f"cannot be read ({exc.strerror or type(exc).__name__})"
                ) from None
            try:
                data: Any = json.loads(raw)
                key = ServiceAccountKey.model_validate(data)
            except ValueError as exc:
                missing = ""
                if isinstance(exc, ValidationError):
                    missing = ", ".join(
                        sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                    )
                raise self._problem(
                    f"is not a service-account JSON key (check: {missing})"
                    if missing
                    else "is not JSON"
                ) from None
            if key.type != "service_account":
                raise self._problem(
                    "is not a service-account key (its type is not service_account)"
                )
            try:
                # google-auth's public API is not annotated (py.typed, but untyped defs)
                self._signer = crypt.RSASigner.from_service_account_info(data)  # type: ignore[no-untyped-call]
            except (ValueError, TypeError, IndexError):
                raise self._problem("has a private_key that is not a usable RSA key") from None
            self._key = key
            return key

    def _audience(self, key: ServiceAccountKey) -> str:
        url = self._token_url or key.token_uri
        try:
            return account_url(url, example="https://oauth2.googleapis.com/token", any_path=True)
        except ValueError as exc:
            raise self._problem(f"has a token_uri that cannot be used: {exc}") from None

    # --- the exchange --------------------------------------------------------------------------

    def _assertion(self, key: ServiceAccountKey, audience: str, now: float) -> str:
        assert self._signer is not None  # set by _load
        issued = int(now)
        claims = {
            "iss": key.client_email,
            "scope": self._scope,
            "aud": audience,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_S,
        }
        encoded: bytes = jwt.encode(self._signer, claims)  # type: ignore[no-untyped-call]
        return encoded.decode("ascii")

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = build_client("", timeout=self._timeout_s)
        return self._http

    def _exchange(self, now: float) -> tuple[str, float]:
        key = self._load()
        audience = self._audience(key)
        http = self._client()
        request = http.build_request(
            "POST",
            audience,
            data={"grant_type": GRANT_TYPE, "assertion": self._assertion(key, audience, now)},
            headers={"Accept": "application/json"},
        )
        try:
            response = send(http, self.endpoint, request, detail=_oauth_detail)
        except PermanentError as exc:
            if isinstance(exc, AuthError | ConfigError):
                raise
            # invalid_grant / invalid_scope come as 400; a wrong token_url as 404
            raise AuthError(
                f"{exc.message} (check that the key in {self.key_file} is not deleted or "
                f"disabled, and the clock)",
                platform=exc.platform,
                account=exc.account,
                status=exc.status,
            ) from None
        try:
            answer = TokenResponse.model_validate_json(response.content)
        except ValidationError:
            raise body_failure(self.endpoint, response, "no access_token in the answer") from None
        if answer.token_type.lower() != "bearer" or not answer.access_token:
            raise body_failure(self.endpoint, response, "the token is not a bearer token")
        return answer.access_token, float(max(answer.expires_in, 0))
