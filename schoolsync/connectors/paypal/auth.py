"""OAuth2 client-credentials tokens for a PayPal REST app.

``POST {base_url}/v1/oauth2/token`` with HTTP Basic ``client_id:secret`` and the form
``grant_type=client_credentials`` (developer.paypal.com/api/rest/authentication); the answer is
``{"scope", "access_token", "token_type": "Bearer", "app_id", "expires_in": 32400, "nonce"}``.
A wrong id or secret is 401 ``{"error": "invalid_client", "error_description": "Client
Authentication failed"}`` -> ``AuthError``; 429, 5xx, timeouts are retryable.

The token is kept in memory until 60 s before it expires; one thread refreshes while the others
wait. :meth:`PayPalTokens.invalidate` drops it after a 401 from the API.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint, body_failure, send
from schoolsync.connectors.paypal.models import OAuthErrorBody, TokenResponse
from schoolsync.core.pii import mask_text

TOKEN_PATH = "/v1/oauth2/token"  # noqa: S105 - a path, not a secret
REFRESH_MARGIN_S = 60.0


def _oauth_detail(response: httpx.Response) -> str:
    body = OAuthErrorBody.model_validate_json(response.content)
    text = f"{body.error}: {body.error_description}" if body.error_description else body.error
    return mask_text(text)[:200]


class PayPalTokens:
    """Bearer tokens for one app. Thread-safe. ``clock`` is monotonic seconds (tests move it)."""

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("a PayPal client id and secret are required")
        self.http = http
        self.endpoint = endpoint
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"PayPalTokens(account={self.endpoint.account!r})"

    def token(self) -> str:
        """A valid access token, from memory or freshly asked for.

        Raises:
            AuthError: the client id or secret was refused.
            RateLimitedError, UnavailableError: PayPal is busy or down.
            RejectedError: the answer holds no bearer token.
        """
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            self._token = None
            request = self.http.build_request(
                "POST",
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
            )
            request.headers["Authorization"] = self._basic()
            response = send(self.http, self.endpoint, request, detail=_oauth_detail)
            try:
                answer = TokenResponse.model_validate_json(response.content)
            except ValidationError:
                raise body_failure(
                    self.endpoint, response, "no access_token in the answer"
                ) from None
            if answer.token_type.lower() != "bearer" or not answer.access_token:
                raise body_failure(self.endpoint, response, "the token is not a bearer token")
            self._token, self._expires_at = answer.access_token, now + max(answer.expires_in, 0)
            return answer.access_token

    def _basic(self) -> str:
        pair = f"{self._client_id}:{self._secret}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given): after a 401."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None
