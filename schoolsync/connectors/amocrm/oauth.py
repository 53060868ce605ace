"""amoCRM authorization: the authorize URL, the token endpoint, and token providers.

A ``TokenProvider`` hands the client a bearer token and hears about 401s. Two exist:

- :class:`OAuthTokens`, for integrations authorized by a user. The access token lives 24 h; the
  refresh token is **single-use** (every refresh returns a new pair, and the old refresh token
  dies). So one worker at a time refreshes, under a Redis lock per account; it re-reads the
  stored pair once it holds the lock (another worker may have refreshed meanwhile), and stores
  the new pair with a compare-and-set on its version *before* anyone uses it.
- :class:`LongLivedToken`, for private integrations: one token chosen for 1 day to 5 years.

Tokens never reach a log line, an error message or a repr.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import httpx
import redis
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import LockError

from schoolsync.connectors.amocrm.models import parse_problem
from schoolsync.connectors.http import Endpoint, send
from schoolsync.core.clock import utcnow
from schoolsync.core.db.engine import Database
from schoolsync.core.errors import (
    AuthError,
    MalformedInputError,
    RejectedError,
    StoreUnavailableError,
    UnavailableError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import credentials

log = get_logger(__name__)

PLATFORM = "amocrm"
# The authorize page is on the central domain, not the account's (Kommo: https://www.kommo.com/oauth).
AUTHORIZE_URL = "https://www.amocrm.ru/oauth"
TOKEN_PATH = "/oauth2/access_token"  # noqa: S105 (a path, not a password)
CONNECT_HINT = "run `schoolsync amocrm connect` to authorize the integration again"


class TokenProvider(Protocol):
    """Where the client gets its bearer token."""

    def access_token(self) -> str:
        """A token valid now; raises ``AuthError`` when there is none to be had."""
        ...

    def on_unauthorized(self, token: str) -> None:
        """The platform refused ``token`` with 401: do not hand it out again."""
        ...


@dataclass(frozen=True)
class OAuthApp:
    """The integration's keys, from amoCRM's integration settings."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # aware UTC, by our clock (taken when the request was sent)
    server_time: int | None = None  # amoCRM's clock when it issued the pair, Unix seconds

    def to_data(self) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": int(self.expires_at.timestamp()),
            "server_time": self.server_time,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TokenPair:
        """Raises ``KeyError``/``TypeError``/``ValueError`` for data that is not a pair."""
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=datetime.fromtimestamp(int(data["expires_at"]), UTC),
            server_time=data.get("server_time"),
        )


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a password)
    expires_in: int
    access_token: str
    refresh_token: str
    server_time: int | None = None


def authorize_url(
    client_id: str,
    state: str,
    mode: Literal["post_message", "popup"] = "post_message",
    *,
    base: str = AUTHORIZE_URL,
) -> str:
    """Where to send the user to grant access; the redirect brings ``code``, ``state``, ``referer``."""
    return f"{base}?{urlencode({'client_id': client_id, 'state': state, 'mode': mode})}"


def exchange_code(http: httpx.Client, endpoint: Endpoint, app: OAuthApp, code: str) -> TokenPair:
    """Trade an authorization code (valid about 20 minutes) for a token pair."""
    return _token_request(
        http,
        endpoint,
        {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.redirect_uri,
        },
    )


def refresh_pair(
    http: httpx.Client, endpoint: Endpoint, app: OAuthApp, refresh_token: str
) -> TokenPair:
    """Trade a refresh token for a new pair. The old refresh token is dead afterwards."""
    return _token_request(
        http,
        endpoint,
        {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "redirect_uri": app.redirect_uri,
        },
    )


def _problem(response: httpx.Response) -> str:
    problem = parse_problem(response.content)
    return problem.describe() if problem else ""


def _token_request(http: httpx.Client, endpoint: Endpoint, body: dict[str, str]) -> TokenPair:
    grant = body["grant_type"].replace("_", " ")
    started = utcnow()
    request = http.build_request("POST", TOKEN_PATH, json=body)
    try:
        response = send(http, endpoint, request, detail=_problem)
    except (AuthError, RejectedError) as exc:
        if exc.status not in (400, 401, 403):
            raise
        raise AuthError(
            f"amoCRM account {endpoint.account!r} refused the {grant} ({exc.status}); {CONNECT_HINT}",
            platform=endpoint.platform,
            account=endpoint.account,
            status=exc.status,
            request_id=exc.request_id,
        ) from exc
    try:
        answer = _TokenResponse.model_validate_json(response.content)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise MalformedInputError(
            f"amoCRM token endpoint answered {response.status_code} without a usable pair "
            f"(problem with: {', '.join(fields)})",
            platform=endpoint.platform,
            account=endpoint.account,
        ) from None
    return TokenPair(
        access_token=answer.access_token,
        refresh_token=answer.refresh_token,
        expires_at=started + timedelta(seconds=answer.expires_in),
        server_time=answer.server_time,
    )


class OAuthTokens:
    """Access tokens of one OAuth-connected account, shared by every worker through the store.

    ``access_token()`` refreshes when the token expires within ``refresh_before_s``. Only one
    worker refreshes at a time (a Redis lock that expires after ``lock_timeout_s``, longer than
    the token request's own timeout); the others wait up to ``lock_wait_s`` and then use the
    pair it stored.
    """

    def __init__(
        self,
        *,
        db: Database,
        redis: redis.Redis,
        http: httpx.Client,
        endpoint: Endpoint,
        school: str,
        app: OAuthApp,
        refresh_before_s: float = 300.0,
        lock_timeout_s: float = 60.0,
        lock_wait_s: float = 30.0,
        namespace: str = "schoolsync",
    ) -> None:
        self._db = db
        self._redis = redis
        self._http = http
        self._endpoint = endpoint
        self._school = school
        self._app = app
        self._refresh_before = timedelta(seconds=refresh_before_s)
        self._lock_timeout_s = lock_timeout_s
        self._lock_wait_s = lock_wait_s
        self._lock_name = f"{namespace}:lock:oauth:{endpoint.platform}:{school}:{endpoint.account}"
        # a pair we obtained but could not store (the database failed): stored on the next call,
        # because the refresh token it replaced is already dead
        self._unsaved: tuple[int, TokenPair] | None = None

    # -- the provider protocol --

    def access_token(self) -> str:
        """A token valid for at least ``refresh_before_s`` when possible.

        Raises:
            AuthError: no pair is stored, or amoCRM refused the refresh (reconnect needed).
            UnavailableError: amoCRM or the refresh lock timed out; try again later.
            StoreUnavailableError: the database or Redis cannot be reached.
        """
        found = self._load()
        if found is not None and self._fresh(found[1]):
            return found[1].access_token
        return self._refresh()

    def on_unauthorized(self, token: str) -> None:
        """Mark ``token`` expired in the store, unless it has been replaced already."""
        with self._db.write() as conn:
            current = credentials.get(conn, self._school, PLATFORM, self._endpoint.account)
            if current is None or current.data.get("access_token") != token:
                return
            credentials.put(
                conn,
                self._school,
                PLATFORM,
                self._endpoint.account,
                {**current.data, "expires_at": 0},
                expect_version=current.version,
            )
        log.warning(
            "amocrm access token refused; it will be refreshed", account=self._endpoint.account
        )

    # -- connecting --

    def connect(self, code: str) -> TokenPair:
        """Exchange an authorization code and store the pair, replacing any stored one."""
        lock = self._take_lock()
        if lock is None:
            raise self._busy()
        try:
            pair = exchange_code(self._http, self._endpoint, self._app, code)
            with self._db.write() as conn:
                credentials.put(
                    conn,
                    self._school,
                    PLATFORM,
                    self._endpoint.account,
                    pair.to_data(),
                    expect_version=None,
                )
            self._unsaved = None
        finally:
            self._release(lock)
        log.info("amocrm account connected", account=self._endpoint.account)
        return pair

    # -- internals --

    def _fresh(self, pair: TokenPair) -> bool:
        return pair.expires_at - utcnow() > self._refresh_before

    def _load(self) -> tuple[int, TokenPair] | None:
        with self._db.read() as conn:
            stored = credentials.get(conn, self._school, PLATFORM, self._endpoint.account)
        if stored is None:
            return None
        try:
            return stored.version, TokenPair.from_data(stored.data)
        except (KeyError, TypeError, ValueError):
            raise self._auth_error("the stored tokens are unreadable") from None

    def _auth_error(self, what: str) -> AuthError:
        return AuthError(
            f"amoCRM account {self._endpoint.account!r}: {what}; {CONNECT_HINT}",
            platform=self._endpoint.platform,
            account=self._endpoint.account,
        )

    def _take_lock(self) -> Any | None:
        """The account's refresh lock, or ``None`` when it stayed taken for ``lock_wait_s``."""
        lock = self._redis.lock(
            self._lock_name, timeout=self._lock_timeout_s, blocking_timeout=self._lock_wait_s
        )
        try:
            return lock if lock.acquire() else None
        except redis.RedisError as exc:
            raise StoreUnavailableError(
                f"token refresh lock in Redis unreachable ({type(exc).__name__})",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
            ) from exc

    def _busy(self) -> UnavailableError:
        return UnavailableError(
            f"amoCRM account {self._endpoint.account!r}: another worker's token refresh "
            f"did not finish within {self._lock_wait_s:g} s",
            retry_after=5.0,
            platform=self._endpoint.platform,
            account=self._endpoint.account,
        )

    def _refresh(self) -> str:
        lock = self._take_lock()
        if lock is None:
            found = self._load()
            if found is not None and found[1].expires_at > utcnow():
                return found[1].access_token  # still valid: better than failing
            raise self._busy()
        try:
            return self._refresh_locked()
        finally:
            self._release(lock)

    def _refresh_locked(self) -> str:
        found = self._load()  # again: another worker may have refreshed while we waited
        if found is None:
            raise self._auth_error("no tokens are stored")
        version, pair = found
        if self._unsaved is not None and self._unsaved[0] == version:
            pair = self._unsaved[1]  # ours, not stored yet; the stored refresh token is dead
            return self._store(version, pair)
        if self._fresh(pair):
            return pair.access_token
        try:
            new = refresh_pair(self._http, self._endpoint, self._app, pair.refresh_token)
        except AuthError:
            again = self._load()
            if again is not None and again[0] != version and self._fresh(again[1]):
                return again[1].access_token  # someone else refreshed (or reconnected) meanwhile
            raise
        return self._store(version, new)

    def _store(self, version: int, new: TokenPair) -> str:
        try:
            with self._db.write() as conn:
                stored = credentials.put(
                    conn,
                    self._school,
                    PLATFORM,
                    self._endpoint.account,
                    new.to_data(),
                    expect_version=version,
                )
        except Exception:
            self._unsaved = (version, new)
            log.error(
                "amocrm tokens refreshed but not stored; will store them on the next call",
                account=self._endpoint.account,
            )
            raise
        self._unsaved = None
        if stored:
            log.info(
                "amocrm tokens refreshed",
                account=self._endpoint.account,
                expires_at=new.expires_at.isoformat(),
            )
            return new.access_token
        # the row moved under us (a reconnect, or a refresher whose lock had expired)
        found = self._load()
        if found is not None and self._fresh(found[1]):
            return found[1].access_token
        raise UnavailableError(
            f"amoCRM account {self._endpoint.account!r}: stored tokens changed during a refresh",
            retry_after=1.0,
            platform=self._endpoint.platform,
            account=self._endpoint.account,
        )

    def _release(self, lock: Any) -> None:
        try:
            lock.release()
        except (LockError, redis.RedisError):
            log.warning(
                "amocrm token refresh lock expired before it was released",
                account=self._endpoint.account,
            )


class LongLivedToken:
    """A private integration's long-lived token (from the environment, never the YAML)."""

    def __init__(self, token: str, *, endpoint: Endpoint) -> None:
        self._token = token
        self._endpoint = endpoint
        self.expires_at = _jwt_expiry(token)

    def __repr__(self) -> str:
        return f"LongLivedToken(account={self._endpoint.account!r})"

    def access_token(self) -> str:
        if self.expires_at is not None and self.expires_at <= utcnow():
            raise AuthError(
                f"amoCRM account {self._endpoint.account!r}: the long-lived token expired on "
                f"{self.expires_at:%Y-%m-%d}; issue a new one in the integration's settings",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
            )
        return self._token

    def on_unauthorized(self, token: str) -> None:
        # Nothing to refresh: the client sees the same token and gives up with an AuthError.
        log.warning(
            "amocrm long-lived token refused (revoked or expired)", account=self._endpoint.account
        )


def _jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, read without verifying it; ``None`` if there is none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(payload["exp"]), UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
