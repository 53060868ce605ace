"""The pacing counters in Redis: waits, seconds waited and 429s per platform, shared by every
process, and never a reason for a call to fail."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from schoolsync.connectors.getcourse.client import GetCourseApi
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.pacing import Pacer, PacingStats, read_stats, stats_key
from schoolsync.core.errors import RateLimitedError
from tests.conftest import RedisServer


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url)
    yield conn
    conn.close()


def test_calls_that_sleep_are_counted_once_each_with_the_time_slept(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=10)
    start = time.monotonic()
    for _ in range(4):  # the first is free; each next one sleeps ~0.1 s
        pacer.acquire(max_wait=5)
    elapsed = time.monotonic() - start

    stats = read_stats(client)["amocrm"]

    assert stats.waits == 3
    assert 0.25 <= stats.wait_seconds <= elapsed
    assert stats.rate_limited == 0


def test_a_call_that_did_not_wait_counts_nothing(client: redis.Redis) -> None:
    Pacer(client, "sheets", "school", rate=10).acquire(max_wait=5)

    assert read_stats(client) == {}


def test_a_refused_call_is_not_a_wait(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=1)
    pacer.acquire()
    with pytest.raises(RateLimitedError):
        pacer.acquire(max_wait=0.1)

    assert read_stats(client).get("amocrm", PacingStats()).waits == 0


def test_429s_are_counted_per_platform_with_the_namespace(client: redis.Redis) -> None:
    Pacer(client, "yookassa", "shop", rate=5, namespace="ns").penalize(0)
    Pacer(client, "yookassa", "other-shop", rate=5, namespace="ns").penalize()
    Pacer(client, "telegram", "bot", rate=5, namespace="ns").penalize(1.0)

    stats = read_stats(client, "ns")

    assert stats["yookassa"].rate_limited == 2  # accounts of one platform add up
    assert stats["telegram"].rate_limited == 1
    assert read_stats(client) == {}  # another namespace is another deployment


def test_a_429_seen_by_a_connector_is_counted(client: redis.Redis) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "1"})

    http = build_client("https://school.getcourse.ru", transport=httpx.MockTransport(answer))
    api = GetCourseApi(
        http,
        Endpoint("getcourse", "school"),
        "key-0123456789",
        Pacer(client, "getcourse", "school", rate=5),
    )
    for _ in range(2):
        with pytest.raises(RateLimitedError):
            api.call(http.build_request("POST", "/pl/api/deals"))

    assert read_stats(client)["getcourse"].rate_limited == 2


def test_a_counter_that_cannot_be_written_does_not_fail_the_call(client: redis.Redis) -> None:
    client.set(stats_key(), "not a hash")  # WRONGTYPE for every HINCRBY
    pacer = Pacer(client, "amocrm", "school", rate=20)

    pacer.acquire(max_wait=5)
    pacer.acquire(max_wait=5)  # sleeps, then counts (and fails to count) in the same round trip
    pacer.penalize(0.05)
    pacer.acquire(max_wait=5)

    assert client.get(stats_key()) == b"not a hash"


def _process(url: str, barrier: object, calls: int, out: object) -> None:
    """Take ``calls`` tokens and report how many times (and how long) this process slept."""
    import schoolsync.connectors.pacing as pacing

    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        start = time.monotonic()
        real_sleep(seconds)
        slept.append(time.monotonic() - start)

    pacing.time.sleep = sleep  # type: ignore[attr-defined]  # only in this child process
    conn = redis.Redis.from_url(url)
    pacer = Pacer(conn, "amocrm", "school", rate=20)
    barrier.wait()  # type: ignore[attr-defined]
    for _ in range(calls):
        pacer.acquire(max_wait=5)
    pacer.penalize(0)
    out.put((len(slept), sum(slept)))  # type: ignore[attr-defined]


def test_two_processes_add_to_the_same_counters(redis_server: RedisServer) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(redis_server.url, barrier, 6, out)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    (sleeps_a, slept_a), (sleeps_b, slept_b) = out.get(timeout=30), out.get(timeout=30)
    for p in procs:
        p.join(timeout=10)

    stats = read_stats(redis.Redis.from_url(redis_server.url))["amocrm"]

    assert sleeps_a >= 5 and sleeps_b >= 5  # each process slept for its own calls
    assert stats.waits == sleeps_a + sleeps_b
    assert stats.wait_seconds == pytest.approx(slept_a + slept_b, rel=0.01)
    assert stats.rate_limited == 2
