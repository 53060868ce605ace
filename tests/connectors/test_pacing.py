"""The shared rate budget against a real redis-server: threads, processes, 429 penalties."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from schoolsync.connectors.pacing import Pacer
from schoolsync.core.errors import RateLimitedError, StoreUnavailableError
from tests.conftest import RedisServer


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url)
    yield conn
    conn.close()


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t < start + window))
    return best


def grant_times(pacer: Pacer, *, threads: int, seconds: float) -> list[float]:
    """Run ``threads`` callers taking tokens as fast as allowed; when each was granted one."""
    times: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()

    def worker() -> None:
        while time.monotonic() < start + seconds:
            pacer.acquire(max_wait=5)
            now = time.monotonic()
            if now < start + seconds:
                with lock:
                    times.append(now)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times


def test_threads_share_one_budget(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=20, burst=5)

    times = grant_times(pacer, threads=6, seconds=1.5)

    # at most rate*T + burst in any T; one token of slack for sleep jitter
    assert len(times) <= 20 * 1.5 + 5 + 1
    assert most_in_any_window(times, 0.5) <= 20 * 0.5 + 5 + 1
    # and the budget is used, not wasted
    assert len(times) >= 20 * 1.5 * 0.8


def test_by_default_no_second_holds_more_than_the_rate(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=7)  # amoCRM: "7 requests per second"

    times = grant_times(pacer, threads=4, seconds=2.0)

    assert (
        most_in_any_window(times, 1.0) <= 7 + 1
    )  # one of slack for sleep jitter (a burst of 7 gives 13)
    assert len(times) >= 12


def _process_worker(url: str, barrier: object, seconds: float, out: object) -> None:
    conn = redis.Redis.from_url(url)
    pacer = Pacer(conn, "amocrm", "school", rate=10, burst=2)
    barrier.wait()  # type: ignore[attr-defined]
    end = time.time() + seconds
    times = []
    while time.time() < end:
        pacer.acquire(max_wait=5)
        if time.time() < end:
            times.append(time.time())
    out.put(times)  # type: ignore[attr-defined]


def test_processes_share_one_budget(redis_server: RedisServer) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(redis_server.url, barrier, 1.5, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=30), out.get(timeout=30)]
    for p in procs:
        p.join(timeout=10)

    times = results[0] + results[1]
    assert results[0] and results[1]  # both processes got turns
    assert len(times) <= 10 * 1.5 + 2 + 1
    assert most_in_any_window(times, 0.5) <= 10 * 0.5 + 2 + 1
    assert len(times) >= 10 * 1.5 * 0.7


def test_penalize_halves_the_rate(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=20, burst=1, shrink_to=0.5)
    before = grant_times(pacer, threads=2, seconds=1.0)

    pacer.penalize()
    after = grant_times(pacer, threads=2, seconds=1.0)

    assert len(before) >= 16
    assert len(after) <= 10 + 1 + 1
    assert len(after) >= 7


def test_rate_recovers_after_the_penalty(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=20, burst=1, shrink_to=0.25, shrink_for_s=0.3)
    pacer.penalize()
    time.sleep(0.35)

    assert len(grant_times(pacer, threads=2, seconds=1.0)) >= 16


def test_nobody_gets_a_token_before_retry_after(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=50)
    pacer.penalize(retry_after=0.6)

    start = time.monotonic()
    pacer.acquire(max_wait=5)

    assert time.monotonic() - start >= 0.55


def test_a_penalty_voids_reservations_already_made(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=2, burst=1)
    pacer.acquire()  # the one free token; the next is due in 0.5 s
    returned: list[float] = []
    start = time.monotonic()
    waiter = threading.Thread(
        target=lambda: (pacer.acquire(max_wait=5), returned.append(time.monotonic()))
    )
    waiter.start()
    time.sleep(0.1)  # the waiter holds a reservation for t=0.5 s and sleeps

    pacer.penalize(retry_after=1.0)
    waiter.join()

    assert returned[0] - start >= 1.05


def test_acquire_raises_instead_of_sleeping_past_max_wait(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=1, burst=1)
    pacer.acquire()

    start = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        pacer.acquire(max_wait=0.2)

    assert time.monotonic() - start < 0.15  # it did not sleep
    assert caught.value.retry_after is not None
    assert 0.6 < caught.value.retry_after <= 1.0
    assert caught.value.platform == "amocrm" and caught.value.account == "school"
    # the refused call reserved nothing: the next token is still the one due at ~1 s
    pacer.acquire(max_wait=2)
    assert time.monotonic() - start < 1.3


def test_retry_after_longer_than_max_wait_is_reported(client: redis.Redis) -> None:
    pacer = Pacer(client, "amocrm", "school", rate=7)
    pacer.penalize(retry_after=30)

    with pytest.raises(RateLimitedError) as caught:
        pacer.acquire(max_wait=1)

    assert caught.value.retry_after is not None
    assert 29 < caught.value.retry_after <= 30


def test_accounts_have_separate_budgets_and_keys_expire(client: redis.Redis) -> None:
    one = Pacer(client, "amocrm", "one", rate=1, burst=1)
    two = Pacer(client, "amocrm", "two", rate=1, burst=1)
    one.acquire()

    two.acquire(max_wait=0)  # not spent by the other account

    assert 0 < client.ttl(one.key) <= 3600


def test_redis_down_is_a_retryable_store_error(redis_server: RedisServer) -> None:
    pacer = Pacer(
        redis.Redis.from_url(redis_server.url, socket_connect_timeout=0.5), "amocrm", "a", rate=7
    )
    redis_server.stop()

    with pytest.raises(StoreUnavailableError):
        pacer.acquire()
