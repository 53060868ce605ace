"""Per-account rate budgets in Redis, shared by every worker process.

One token bucket per (platform, account), kept in a Redis hash and changed only by Lua scripts,
so a check-and-take is atomic across processes and machines. Time is the Redis server's
(``TIME``), never the caller's clock, so workers with skewed clocks share one budget.

A caller that cannot have a token now *reserves* the next free one (the balance goes negative)
and sleeps until its turn: waiters are served in order and the budget holds exactly, at most
``rate * T + burst`` grants in any ``T`` seconds. A caller whose turn is further away than its
``max_wait`` reserves nothing and gets ``RateLimitedError(retry_after=<wait>)``: a job must
never sleep past its own time limit; it is retried later instead.

After a 429 the platform is the judge: :meth:`Pacer.penalize` empties the bucket, runs it at
``rate * shrink_to`` for ``shrink_for_s`` seconds, and gives no token before ``retry_after``.
Reservations made before the penalty are void: their holders ask again when they wake.

Every process also adds to shared counters per platform, in one Redis hash (:func:`stats_key`):
calls that had to wait, seconds they slept, and 429s. They ride on round trips the budget makes
anyway (the epoch check after a sleep, the penalty script), and a counter that cannot be written
never fails a call. :func:`read_stats` reads them for ``/metrics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from schoolsync.core.errors import RateLimitedError, StoreUnavailableError

# State, in hash fields: tokens (the balance at time ts; negative = reserved), ts (seconds,
# server time; in the future while blocked by a Retry-After), shrink_until (end of the reduced
# rate), epoch (bumped by every penalty, so sleepers know their reservation is void).
_COMMON = """
if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 7: allow TIME + writes

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function load(key)
  local v = redis.call('HMGET', key, 'tokens', 'ts', 'shrink_until', 'epoch')
  return tonumber(v[1]), tonumber(v[2]), tonumber(v[3]) or 0, tonumber(v[4]) or 0
end

-- the balance at time `t1`, refilled from (tokens, t0) at the piecewise rate
local function refill(tokens, t0, t1, rate, burst, shrink_to, shrink_until)
  if t1 <= t0 then return tokens end
  local slow_rate = rate * shrink_to
  local slow_cap = math.max(1, burst * shrink_to)
  if t0 < shrink_until then
    local t = math.min(t1, shrink_until)
    tokens = math.min(slow_cap, tokens + (t - t0) * slow_rate)
    t0 = t
  end
  if t1 > t0 then
    tokens = math.min(burst, tokens + (t1 - t0) * rate)
  end
  return tokens
end

local function save(key, tokens, ts, shrink_until, epoch, now, rate, burst, shrink_to)
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts),
    'shrink_until', string.format('%.6f', shrink_until), 'epoch', epoch)
  local horizon = math.max(ts, shrink_until) - now + (burst + math.max(0, -tokens)) / (rate * shrink_to)
  redis.call('EXPIRE', key, math.ceil(horizon) + 60)
end
"""

# KEYS[1] bucket; ARGV rate, burst, shrink_to, max_wait -> {granted 0|1, wait_s (string), epoch}
_ACQUIRE = (
    _COMMON
    + """
local key = KEYS[1]
local rate, burst, shrink_to, max_wait =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_s()
local tokens, ts, shrink_until, epoch = load(key)
if tokens == nil then tokens, ts = burst, now end
if ts < now then
  tokens = refill(tokens, ts, now, rate, burst, shrink_to, shrink_until)
  ts = now
end
-- the token we want is free once the balance reaches 1, counting from `ts`
local ready = ts
local need = 1 - tokens
if need > 0 then
  if ready < shrink_until then
    local slow_rate = rate * shrink_to
    local slow_gain = (shrink_until - ready) * slow_rate
    if need <= slow_gain then
      ready = ready + need / slow_rate
    else
      ready = shrink_until + (need - slow_gain) / rate
    end
  else
    ready = ready + need / rate
  end
end
local wait = ready - now
if wait > max_wait then
  return {0, string.format('%.6f', wait), epoch}
end
save(key, tokens - 1, ts, shrink_until, epoch, now, rate, burst, shrink_to)
return {1, string.format('%.6f', math.max(0, wait)), epoch}
"""
)

# KEYS[1] bucket, KEYS[2] stats hash; ARGV rate, burst, shrink_to, shrink_for_s,
# retry_after (<0: none), the stats field counting 429s -> epoch
_PENALIZE = (
    _COMMON
    + """
local key = KEYS[1]
local rate, burst, shrink_to, shrink_for, retry_after =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_s()
local _, ts, shrink_until, epoch = load(key)
ts = ts or now
local tokens, at = 0, now
if retry_after >= 0 then
  -- nothing before retry_after; the first token is free exactly then
  tokens, at = 1, now + retry_after
end
if ts > at then at = ts end  -- an earlier, longer block stands
shrink_until = math.max(shrink_until, at + shrink_for)
epoch = epoch + 1
save(key, tokens, at, shrink_until, epoch, now, rate, burst, shrink_to)
redis.pcall('HINCRBY', KEYS[2], ARGV[6], 1)  -- a counter that cannot be written is no failure
return epoch
"""
)


# the shared counters: one hash per namespace, a field per platform and counter
WAITS, WAIT_SECONDS, RATE_LIMITED = "waits", "wait_s", "429"


def stats_key(namespace: str = "schoolsync") -> str:
    """The Redis hash that holds every platform's pacing counters (fields ``<platform>:<name>``)."""
    return f"{namespace}:pacing:stats"


@dataclass(frozen=True)
class PacingStats:
    """One platform's counters, summed over every process since the hash was created."""

    waits: int = 0  # calls that had to sleep for their token (once per call)
    wait_seconds: float = 0.0  # seconds those calls slept
    rate_limited: int = 0  # 429 answers (each one penalised the budget)


def read_stats(client: redis.Redis, namespace: str = "schoolsync") -> dict[str, PacingStats]:
    """Every platform's counters. Raises ``redis.RedisError`` when Redis cannot be read."""
    raw: dict[Any, Any] = client.hgetall(stats_key(namespace))
    fields: dict[str, dict[str, float]] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else str(name)
        platform, _, counter = text.rpartition(":")
        try:
            fields.setdefault(platform, {})[counter] = float(value)
        except ValueError:  # not a number: someone else's field; skip it
            continue
    return {
        platform: PacingStats(
            waits=int(values.get(WAITS, 0)),
            wait_seconds=values.get(WAIT_SECONDS, 0.0),
            rate_limited=int(values.get(RATE_LIMITED, 0)),
        )
        for platform, values in fields.items()
        if platform
    }


class Pacer:
    """The request budget of one platform account, shared through Redis.

    ``rate`` is in requests per second; ``burst`` is how many may go at once after a quiet spell.
    The default, 1, spaces requests evenly: never more than ``rate`` in any one second, which is
    how platforms that say "7 requests per second" count (a burst of 7 would allow 13). Every process that talks to the account must use the same
    ``namespace``, ``platform`` and ``account``, and should use the same rate.
    """

    def __init__(
        self,
        redis: redis.Redis,
        platform: str,
        account: str,
        *,
        rate: float,
        burst: int | None = None,
        shrink_to: float = 0.5,
        shrink_for_s: float = 60.0,
        namespace: str = "schoolsync",
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if not 0 < shrink_to <= 1:
            raise ValueError("shrink_to must be in (0, 1]")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.platform = platform
        self.account = account
        self.rate = float(rate)
        self.burst = 1 if burst is None else burst
        self.shrink_to = float(shrink_to)
        self.shrink_for_s = float(shrink_for_s)
        self.key = f"{namespace}:pace:{platform}:{account}"
        self.stats_key = stats_key(namespace)
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._penalize = redis.register_script(_PENALIZE)

    def acquire(self, *, max_wait: float = 10.0) -> None:
        """Take one token, sleeping for it at most ``max_wait`` seconds in all.

        A call that sleeps adds one to the platform's ``waits`` counter and the time it slept to
        ``wait_s`` (in the round trip that checks the reservation after the sleep).

        Raises:
            RateLimitedError: the token is further away than the time left; ``retry_after`` is
                how long it would have taken (nothing is reserved).
            StoreUnavailableError: Redis cannot be reached.
        """
        deadline = time.monotonic() + max(0.0, max_wait)
        waited = False
        while True:
            left = max(0.0, deadline - time.monotonic())
            granted, wait, epoch = self._call(
                self._acquire, self.rate, self.burst, self.shrink_to, f"{left:.6f}"
            )
            seconds = float(wait)
            if not int(granted):
                raise RateLimitedError(
                    f"{self.platform} budget of {self.rate:g} requests/s is spent for the next "
                    f"{seconds:.1f} s (more than the {max_wait:g} s this call may wait)",
                    retry_after=seconds,
                    platform=self.platform,
                    account=self.account,
                )
            if seconds <= 0:
                return
            asleep = time.monotonic()
            time.sleep(seconds)
            now_epoch = self._epoch_after_sleep(time.monotonic() - asleep, first=not waited)
            waited = True
            if now_epoch == int(epoch):
                return
            # penalised while we slept: the reservation is void, queue again

    def penalize(self, retry_after: float | None = None) -> None:
        """The platform said 429: slow down for ``shrink_for_s``, and wait ``retry_after`` (s).

        Counts the 429 in the platform's shared counter (in the same script)."""
        self._call(
            self._penalize,
            self.rate,
            self.burst,
            self.shrink_to,
            self.shrink_for_s,
            -1.0 if retry_after is None else max(0.0, float(retry_after)),
            f"{self.platform}:{RATE_LIMITED}",
            keys=[self.key, self.stats_key],
        )

    def _epoch_after_sleep(self, slept_s: float, *, first: bool) -> int:
        """The bucket's epoch, read in the round trip that adds a sleep to the shared counters
        (``first``: the first sleep of this call, which counts one more wait). A counter that
        cannot be written (a wrong type under its key) is skipped; Redis unreachable raises."""
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.key, "epoch")
                if first:
                    pipe.hincrby(self.stats_key, f"{self.platform}:{WAITS}", 1)
                pipe.hincrbyfloat(self.stats_key, f"{self.platform}:{WAIT_SECONDS}", slept_s)
                value = pipe.execute(raise_on_error=False)[0]
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc
        if isinstance(value, redis.RedisError):
            raise self._unavailable(value)
        return int(value) if value is not None else 0

    def _call(self, script: Any, *args: object, keys: list[str] | None = None) -> Any:
        try:
            return script(keys=keys or [self.key], args=list(args))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: redis.RedisError) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"rate budget in Redis unreachable ({type(exc).__name__})",
            platform=self.platform,
            account=self.account,
        )
