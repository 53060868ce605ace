"""OAuth against a real redis-server and state store, with the token endpoint mocked (respx).

Also the compare-and-set credentials store these token pairs live in, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import respx
import sqlalchemy as sa

from schoolsync.connectors.amocrm.oauth import (
    LongLivedToken,
    OAuthApp,
    OAuthTokens,
    TokenPair,
    authorize_url,
    exchange_code,
)
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.errors import AuthError, UnavailableError
from schoolsync.core.stores import credentials
from tests.conftest import RedisServer

BASE = "https://school.amocrm.ru"
ENDPOINT = Endpoint("amocrm", "main")
APP = OAuthApp(
    client_id="client-id", client_secret="client-secret", redirect_uri="https://sync.example/cb"
)
FIXTURES = Path(__file__).parents[2] / "fixtures" / "amocrm"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def token_api() -> Iterator[respx.Route]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router.post("/oauth2/access_token")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with build_client(BASE, timeout=5) as client:
        yield client


def provider(db: Database, server: RedisServer, http: httpx.Client, **kw: Any) -> OAuthTokens:
    return OAuthTokens(
        db=db,
        redis=redis.Redis.from_url(server.url),
        http=http,
        endpoint=ENDPOINT,
        school="default",
        app=APP,
        **kw,
    )


def store(db: Database, *, access: str = "old-access", expires_in: float = 60) -> None:
    pair = TokenPair(access, "old-refresh", utcnow() + timedelta(seconds=expires_in))
    with db.write() as conn:
        credentials.put(conn, "default", "amocrm", "main", pair.to_data(), expect_version=None)


def stored(db: Database) -> credentials.Credential:
    with db.read() as conn:
        found = credentials.get(conn, "default", "amocrm", "main")
    assert found is not None
    return found


def slow_token_response(request: httpx.Request) -> httpx.Response:
    time.sleep(0.3)  # long enough for every other worker to find the lock taken
    return httpx.Response(200, json=fixture("token_response.json"))


# --- the token endpoint --------------------------------------------------------------------


def test_authorize_url() -> None:
    assert authorize_url("client-id", "st4te") == (
        "https://www.amocrm.ru/oauth?client_id=client-id&state=st4te&mode=post_message"
    )
    assert authorize_url("c", "s", "popup").endswith("mode=popup")


def test_exchange_code_sends_the_documented_body(
    token_api: respx.Route, http: httpx.Client
) -> None:
    token_api.respond(200, json=fixture("token_response.json"))
    before = utcnow()

    pair = exchange_code(http, ENDPOINT, APP, "auth-code")

    sent = json.loads(token_api.calls[0].request.content)
    assert sent.keys() == fixture("oauth_token_requests.json")["authorization_code"].keys()
    assert sent == {
        "client_id": "client-id",
        "client_secret": "client-secret",
        "grant_type": "authorization_code",
        "code": "auth-code",
        "redirect_uri": "https://sync.example/cb",
    }
    assert (pair.access_token, pair.refresh_token, pair.server_time) == (
        "new-access",
        "new-refresh",
        1700000000,
    )
    assert (
        before + timedelta(seconds=86400) <= pair.expires_at <= utcnow() + timedelta(seconds=86400)
    )
    assert "new-access" not in repr(pair) and "new-refresh" not in repr(pair)


# --- the shared provider -------------------------------------------------------------------


def test_a_fresh_token_is_used_without_calling_amocrm(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, access="still-good", expires_in=3600)

    assert provider(sqlite_db, redis_server, http).access_token() == "still-good"
    assert not token_api.called


def test_four_workers_on_an_expiring_token_refresh_it_once(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, expires_in=120)  # inside the 5-minute margin
    token_api.mock(side_effect=slow_token_response)
    barrier = threading.Barrier(4)
    seen: list[tuple[str, str]] = []

    def worker() -> None:
        tokens = provider(sqlite_db, redis_server, http)  # one per worker process, in effect
        barrier.wait()
        token = tokens.access_token()
        # whoever uses the new token finds it stored already
        seen.append((token, stored(sqlite_db).data["access_token"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert token_api.call_count == 1
    assert seen == [("new-access", "new-access")] * 4
    sent = json.loads(token_api.calls[0].request.content)
    assert sent.keys() == fixture("oauth_token_requests.json")["refresh_token"].keys()
    assert (sent["grant_type"], sent["refresh_token"]) == ("refresh_token", "old-refresh")
    after = stored(sqlite_db)
    assert after.version == 2 and after.data["refresh_token"] == "new-refresh"


def test_a_pair_that_could_not_be_stored_is_never_handed_out_then_stored_next_time(
    sqlite_db: Database,
    redis_server: RedisServer,
    http: httpx.Client,
    token_api: respx.Route,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store(sqlite_db, expires_in=-10)
    token_api.respond(200, json=fixture("token_response.json"))
    tokens = provider(sqlite_db, redis_server, http)
    real_put = credentials.put

    def broken_put(*args: Any, **kwargs: Any) -> bool:
        raise sa.exc.OperationalError("UPDATE credentials", {}, Exception("disk I/O error"))

    monkeypatch.setattr(credentials, "put", broken_put)
    with pytest.raises(sa.exc.OperationalError):
        tokens.access_token()
    assert stored(sqlite_db).data["access_token"] == "old-access"

    monkeypatch.setattr(credentials, "put", real_put)
    assert tokens.access_token() == "new-access"

    assert token_api.call_count == 1  # the old refresh token is dead: it was not sent again
    assert stored(sqlite_db).data["refresh_token"] == "new-refresh"


def test_a_refused_refresh_asks_for_a_reconnect(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, expires_in=-10)
    token_api.respond(
        400,
        json={"title": "Bad Request", "status": 400, "detail": "Refresh token has been revoked"},
        headers={"Content-Type": "application/problem+json"},
    )

    with pytest.raises(AuthError) as caught:
        provider(sqlite_db, redis_server, http).access_token()

    message = str(caught.value)
    assert "'main'" in message and "schoolsync amocrm connect" in message
    for secret in ("old-refresh", "old-access", "client-secret"):
        assert secret not in message
    assert stored(sqlite_db).version == 1  # nothing was overwritten


def test_amocrm_down_during_a_refresh_is_retryable(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, expires_in=-10)
    token_api.respond(503)

    with pytest.raises(UnavailableError):
        provider(sqlite_db, redis_server, http).access_token()

    assert stored(sqlite_db).version == 1


def test_no_stored_tokens_asks_for_a_connect(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client
) -> None:
    with pytest.raises(AuthError, match="schoolsync amocrm connect"):
        provider(sqlite_db, redis_server, http).access_token()


def test_on_unauthorized_expires_only_the_token_still_stored(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, access="current", expires_in=3600)
    token_api.respond(200, json=fixture("token_response.json"))
    tokens = provider(sqlite_db, redis_server, http)

    tokens.on_unauthorized("some-older-token")
    assert tokens.access_token() == "current"

    tokens.on_unauthorized("current")
    assert tokens.access_token() == "new-access"
    assert token_api.call_count == 1


def test_waiting_on_another_workers_refresh(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, access="expiring", expires_in=120)
    tokens = provider(sqlite_db, redis_server, http, lock_wait_s=0.2)
    other = redis.Redis.from_url(redis_server.url).lock(
        "schoolsync:lock:oauth:amocrm:default:main", timeout=30
    )
    assert other.acquire()

    assert tokens.access_token() == "expiring"  # not refreshed, but still valid: used

    store(sqlite_db, access="expired", expires_in=-1)
    with pytest.raises(UnavailableError) as caught:
        tokens.access_token()
    assert caught.value.retry_after
    assert not token_api.called
    other.release()


def test_connect_replaces_the_stored_pair(
    sqlite_db: Database, redis_server: RedisServer, http: httpx.Client, token_api: respx.Route
) -> None:
    store(sqlite_db, access="dead", expires_in=-1000)
    token_api.respond(200, json=fixture("token_response.json"))

    provider(sqlite_db, redis_server, http).connect("auth-code")

    assert json.loads(token_api.calls[0].request.content)["grant_type"] == "authorization_code"
    after = stored(sqlite_db)
    assert after.version == 2 and after.data["access_token"] == "new-access"


# --- long-lived tokens ---------------------------------------------------------------------


def jwt(exp: datetime) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'exp': int(exp.timestamp())})}.signature"


def test_long_lived_token() -> None:
    valid = LongLivedToken(jwt(utcnow() + timedelta(days=30)), endpoint=ENDPOINT)
    assert valid.access_token().endswith(".signature")
    assert "signature" not in repr(valid)
    assert LongLivedToken("not-a-jwt", endpoint=ENDPOINT).access_token() == "not-a-jwt"

    expired = LongLivedToken(jwt(datetime(2024, 1, 31, tzinfo=UTC)), endpoint=ENDPOINT)
    with pytest.raises(AuthError, match="expired on 2024-01-31"):
        expired.access_token()


# --- the credentials store -----------------------------------------------------------------


def test_credentials_compare_and_set(any_db: Database) -> None:
    key = ("default", "amocrm", "main")
    with any_db.write() as conn:
        assert credentials.get(conn, *key) is None
        assert credentials.put(conn, *key, {"access_token": "a"}, expect_version=None)
    with any_db.write() as conn:
        first = credentials.get(conn, *key)
        assert first is not None and first.version == 1
        assert credentials.put(conn, *key, {"access_token": "b"}, expect_version=1)
    with any_db.write() as conn:
        # a second writer that also read version 1 loses, and changes nothing
        assert not credentials.put(conn, *key, {"access_token": "c"}, expect_version=1)
    with any_db.write() as conn:
        current = credentials.get(conn, *key)
        assert current is not None and (current.version, current.data) == (2, {"access_token": "b"})
        assert "'b'" not in repr(current)
        assert credentials.put(conn, *key, {"access_token": "d"}, expect_version=None)
    with any_db.read() as conn:
        final = credentials.get(conn, *key)
        assert final is not None and (final.version, final.data) == (3, {"access_token": "d"})
        assert credentials.get(conn, "other-school", "amocrm", "main") is None


def test_concurrent_compare_and_set_lets_exactly_one_writer_win(sqlite_db: Database) -> None:
    key = ("default", "amocrm", "main")
    with sqlite_db.write() as conn:
        credentials.put(conn, *key, {"n": 0}, expect_version=None)
    barrier = threading.Barrier(4)
    wins: list[bool] = []

    def writer(n: int) -> None:
        barrier.wait()
        with sqlite_db.write() as conn:
            wins.append(credentials.put(conn, *key, {"n": n}, expect_version=1))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(wins) == [False, False, False, True]
    assert stored(sqlite_db).version == 2
