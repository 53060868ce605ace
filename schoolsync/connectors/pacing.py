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
"""

from __future__ import annotations

import time
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

# KEYS[1] bucket; ARGV rate, burst, shrink_to, shrink_for_s, retry_after (<0: none) -> epoch
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
return epoch
"""
)


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
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._penalize = redis.register_script(_PENALIZE)

    def acquire(self, *, max_wait: float = 10.0) -> None:
        """Take one token, sleeping for it at most ``max_wait`` seconds in all.

        Raises:
            RateLimitedError: the token is further away than the time left; ``retry_after`` is
                how long it would have taken (nothing is reserved).
            StoreUnavailableError: Redis cannot be reached.
        """
        deadline = time.monotonic() + max(0.0, max_wait)
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
            time.sleep(seconds)
            if self._epoch() == int(epoch):
                return
            # penalised while we slept: the reservation is void, queue again

    def penalize(self, retry_after: float | None = None) -> None:
        """The platform said 429: slow down for ``shrink_for_s``, and wait ``retry_after`` (s)."""
        self._call(
            self._penalize,
            self.rate,
            self.burst,
            self.shrink_to,
            self.shrink_for_s,
            -1.0 if retry_after is None else max(0.0, float(retry_after)),
        )

    def _epoch(self) -> int:
        try:
            value = self._redis.hget(self.key, "epoch")
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc
        return int(value) if value is not None else 0

    def _call(self, script: Any, *args: object) -> Any:
        try:
            return script(keys=[self.key], args=list(args))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: redis.RedisError) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"rate budget in Redis unreachable ({type(exc).__name__})",
            platform=self.platform,
            account=self.account,
        )
