"""OAuth 2.0 as amoCRM runs it: ``POST /oauth2/access_token`` and bearer checks.

From the Kommo OAuth docs (developers.kommo.com/docs/oauth-20): an authorization code lives 20
minutes and is exchanged once; an access token lives 24 hours "and used for API requests until
its lifetime expires"; a refresh token lives 3 months, every refresh returns a new pair, and
"the old refresh token will still be functional and you can use it until you use the new one"
(so a client that lost the answer to a refresh can send the old token again). Here a refresh
token is revoked as soon as a token issued from it is used, and replaying it revokes the pair it
had issued before. ``refresh_grace=False`` makes refresh tokens strictly single use.

Error bodies are those amoCRM's OAuth server answers (recorded in public issues, e.g.
amocrm/amocrm-api-php#123, ufee/amoapi#26): ``OAuthProblemJson`` with a ``hint``; a bad client
id, secret or redirect URI is 401 "Некорректный клиент"; a spent refresh token is 401 with the
hint "Token has been revoked"; a bad code is 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm.config import AmoSandboxConfig
from schoolsync.sandbox.amocrm.responses import PROBLEM, dumps, plain_json

_OAUTH_PROBLEM = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
_BAD_REQUEST = "В запросе отсутствует ряд параметров или параметры невалидны"


def fingerprint(token: str) -> str:
    """How the control API names a token without showing it: sha256, first 16 hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class OAuthError(Exception):
    def __init__(self, status: int, hint: str | None, *, client: bool = False) -> None:
        super().__init__(hint)
        self.status = status
        self.hint = hint
        self.client = client

    def response(self) -> Response:
        if self.client:
            body: dict[str, Any] = {
                "title": "Некорректный клиент",
                "type": _OAUTH_PROBLEM,
                "status": self.status,
                "detail": "Авторизация клиента не прошла",
            }
        else:
            body = {
                "hint": self.hint,
                "title": "Некорректный запрос",
                "type": _OAUTH_PROBLEM,
                "status": self.status,
                "detail": _BAD_REQUEST,
            }
        return Response(dumps(body), status_code=self.status, media_type=PROBLEM)


@dataclass
class _Refresh:
    expires_at: float
    access_token: str
    parent: str | None
    child: str | None = None
    revoked: bool = False


class TokenBook:
    def __init__(self, config: AmoSandboxConfig, user_id: int) -> None:
        self.config = config
        self.user_id = user_id
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._codes: dict[str, float] = {}
            self._spent_codes: set[str] = set()
            self._access: dict[str, float] = {}
            self._refresh: dict[str, _Refresh] = {}
            self.refreshes = 0
            self.refresh_rejected = 0
            self.codes_exchanged = 0
            self.refresh_uses: Counter[str] = Counter()

    def issue_code(self) -> str:
        code = "def50200" + secrets.token_hex(64)
        with self._lock:
            self._codes[code] = time.time() + self.config.auth_code_ttl_s
        return code

    def access_ok(self, token: str) -> bool:
        if self.config.long_lived_token is not None and secrets.compare_digest(
            token, self.config.long_lived_token
        ):
            return True
        with self._lock:
            expires_at = self._access.get(token)
            return expires_at is not None and expires_at > time.time()

    def exchange(self, form: dict[str, Any]) -> dict[str, Any]:
        """Checks the client, then the grant; returns the token response or raises."""
        self._check_client(form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._by_code(_required(form, "code"))
        if grant == "refresh_token":
            return self._by_refresh(_required(form, "refresh_token"))
        if not grant:
            raise OAuthError(400, "Check the `grant_type` parameter")
        raise OAuthError(
            400, "The authorization grant type is not supported by the authorization server."
        )

    def _check_client(self, form: dict[str, Any]) -> None:
        _required(form, "client_id")
        config = self.config
        for key, expected in (
            ("client_id", config.client_id),
            ("client_secret", config.client_secret),
            ("redirect_uri", config.redirect_uri),
        ):
            given = form.get(key)
            if not isinstance(given, str) or not secrets.compare_digest(given, expected):
                raise OAuthError(401, None, client=True)

    def _by_code(self, code: str) -> dict[str, Any]:
        with self._lock:
            if code in self._spent_codes:
                raise OAuthError(400, "Authorization code has been revoked")
            expires_at = self._codes.pop(code, None)
            if expires_at is None:
                raise OAuthError(400, "Cannot decrypt the authorization code")
            self._spent_codes.add(code)
            if expires_at < time.time():
                raise OAuthError(400, "Authorization code has expired")
            self.codes_exchanged += 1
            return self._issue(parent=None)

    def _by_refresh(self, token: str) -> dict[str, Any]:
        with self._lock:
            record = self._refresh.get(token)
            if record is None:
                self.refresh_rejected += 1
                raise OAuthError(401, "Cannot decrypt the refresh token")
            self.refresh_uses[fingerprint(token)] += 1
            if record.revoked:
                self.refresh_rejected += 1
                raise OAuthError(401, "Token has been revoked")
            if record.expires_at < time.time():
                self.refresh_rejected += 1
                raise OAuthError(401, "Token has expired")
            if not self.config.refresh_grace:
                record.revoked = True
            elif record.child is not None:
                # the pair issued before was never used: the client lost it
                self._refresh[record.child].revoked = True
            if record.parent is not None:
                # this token reached the client, so the one it replaced is outdated
                self._refresh[record.parent].revoked = True
            if self.config.revoke_access_on_refresh:
                self._access.pop(record.access_token, None)
            self.refreshes += 1
            answer = self._issue(parent=token)
            record.child = answer["refresh_token"]
            return answer

    def _issue(self, *, parent: str | None) -> dict[str, Any]:
        now = time.time()
        ttl = self.config.access_token_ttl_s
        access = self._jwt(now, ttl)
        refresh = "def50200" + secrets.token_hex(96)
        self._access[access] = now + ttl
        self._refresh[refresh] = _Refresh(
            expires_at=now + self.config.refresh_token_ttl_s, access_token=access, parent=parent
        )
        return {
            "token_type": "Bearer",
            "expires_in": ttl,
            "access_token": access,
            "refresh_token": refresh,
            "server_time": int(now),
        }

    def _jwt(self, now: float, ttl: int) -> str:
        """A JWT-shaped token with the claims amoCRM's carry (``exp`` above all)."""

        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        claims = {
            "aud": self.config.client_id,
            "jti": secrets.token_hex(20),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + ttl),
            "sub": str(self.user_id),
            "account_id": self.config.account_id,
            "scopes": ["crm", "notifications"],
        }
        signature = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
        return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.{signature}"

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "refreshes": self.refreshes,
                "refresh_rejected": self.refresh_rejected,
                "refresh_token_uses": dict(self.refresh_uses),
                "codes_exchanged": self.codes_exchanged,
            }


def _required(form: dict[str, Any], key: str) -> str:
    value = form.get(key)
    if not isinstance(value, str) or not value:
        raise OAuthError(400, f"Check the `{key}` parameter")
    return value


async def read_form(request: Request) -> dict[str, Any]:
    """The token endpoint takes JSON or form-urlencoded (amocrm/amocrm-oauth-client#5)."""
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode(errors="replace")))
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise OAuthError(400, "Check the `grant_type` parameter") from None
    return data if isinstance(data, dict) else {}


async def token_endpoint(request: Request, book: TokenBook) -> Response:
    try:
        return plain_json(book.exchange(await read_form(request)))
    except OAuthError as error:
        return error.response()
