"""What stands between a request and the account: the rate limit, the block, injected faults.

Rate limit (Kommo "Limitations" and "HTTP status code" pages): at most 7 requests per second;
past that 429, and "if you got the 429 too many times, your account may be blocked, and you'll
get 403 response on any API request". Here: more than ``rate_per_s`` admitted requests in any
rolling second gives 429 (refused requests do not count towards the window); ``block_after_429s``
429s within 10 s block every API request with 403 for ``block_for_s``. Refused requests change
nothing.

Faults are injected per endpoint for tests: errors and outages answer before anything changes;
a timeout holds the request open for ``timeout_s``, after applying it when ``apply_on_timeout``
(the write happened but the client never heard) or without applying it otherwise (then 504).
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RateGate:
    def __init__(self, rate_per_s: float, block_after_429s: int, block_for_s: float) -> None:
        self.capacity = max(1, math.floor(rate_per_s))
        self.window_s = self.capacity / rate_per_s if rate_per_s > 0 else 1.0
        self.block_after = block_after_429s
        self.block_for_s = block_for_s
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._admitted: deque[float] = deque()
            self._refused: deque[float] = deque()
            self.blocked_until = 0.0

    def admit(self) -> tuple[Literal["ok", "limited", "blocked"], int]:
        """The verdict for one request, and on 429 the seconds until a slot frees."""
        now = time.monotonic()
        with self._lock:
            if now < self.blocked_until:
                return "blocked", 0
            while self._admitted and self._admitted[0] <= now - self.window_s:
                self._admitted.popleft()
            if len(self._admitted) < self.capacity:
                self._admitted.append(now)
                return "ok", 0
            while self._refused and self._refused[0] <= now - 10.0:
                self._refused.popleft()
            self._refused.append(now)
            if len(self._refused) >= self.block_after:
                self.blocked_until = now + self.block_for_s
                self._refused.clear()
            wait = self._admitted[0] + self.window_s - now
            return "limited", max(1, math.ceil(wait))


class FaultRule(BaseModel):
    """``POST /_sandbox/faults`` body. ``endpoint``: a path or route template relative to the
    sandbox (``/api/v4/leads/complex``, ``/api/v4/leads/{id}``), a glob, or ``*``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "*"
    method: str | None = None
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status: int = Field(500, ge=400, le=599)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_s: float = Field(30.0, ge=0.0)
    latency_ms: float = Field(0.0, ge=0.0)
    outage_until: float | None = None
    apply_on_timeout: bool = False
    seed: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    latency_s: float = 0.0
    kind: Literal["none", "error", "timeout"] = "none"
    status: int = 500
    timeout_s: float = 0.0
    apply: bool = False


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, str | None], tuple[FaultRule, random.Random]] = {}

    def set(self, rule: FaultRule) -> None:
        method = rule.method.upper() if rule.method else None
        with self._lock:
            self._rules[(rule.endpoint, method)] = (rule, random.Random(rule.seed))  # noqa: S311 - fault injection, not security

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [rule for rule, _ in self._rules.values()]

    def plan(self, method: str, path: str, template: str) -> FaultPlan:
        """The most specific rule that matches decides (exact path or template before globs)."""
        with self._lock:
            candidates = [
                (rule, rng)
                for (endpoint, rule_method), (rule, rng) in self._rules.items()
                if rule_method in (None, method)
                and (fnmatch.fnmatchcase(path, endpoint) or fnmatch.fnmatchcase(template, endpoint))
            ]
            if not candidates:
                return FaultPlan()
            candidates.sort(key=lambda c: ("*" in c[0].endpoint, c[0].method is None))
            rule, rng = candidates[0]
            latency = rule.latency_ms / 1000
            if rule.outage_until is not None and time.time() < rule.outage_until:
                return FaultPlan(latency, "error", rule.status)
            if rule.error_rate and rng.random() < rule.error_rate:
                return FaultPlan(latency, "error", rule.status)
            if rule.timeout_rate and rng.random() < rule.timeout_rate:
                return FaultPlan(latency, "timeout", 504, rule.timeout_s, rule.apply_on_timeout)
            return FaultPlan(latency)
