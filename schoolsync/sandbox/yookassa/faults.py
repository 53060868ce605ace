"""Faults a test switches on per path (or ``*`` for all): errors, 202 "processing", timeouts.

``path`` is a route as written in YooKassa's reference, with or without the method:
``POST /v3/refunds``, ``/v3/payments/{id}``, ``GET /v3/payments``; the most specific rule wins
(method and path, then path, then ``*``). Each request draws in this order, each draw only when
its rate is above 0, from a generator seeded by ``seed``; ``times`` caps how many faults a rule
injects in all.

- error: answered before anything happens, with ``status`` and YooKassa's error body.
- processing: the request runs (a POST's result is stored under its Idempotence-Key), but the
  answer is 202 ``{"type": "processing", "retry_after": retry_after_ms}``; YooKassa's SDKs
  repeat the same request with the same key, and the repeat gets the stored result.
- timeout: the request is held ``timeout_s`` and then answered 500 ``internal_server_error``, as
  YooKassa does when it cannot answer within 30 s; with ``apply_on_timeout`` the request ran
  first (a refund was made, the client never heard), otherwise nothing happened.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultRule(BaseModel):
    """``POST /_sandbox/faults`` body; a rule replaces an earlier one for the same ``path``."""

    model_config = ConfigDict(extra="forbid")

    path: str = "*"
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status: int = Field(500, ge=400, le=599)
    processing_rate: float = Field(0.0, ge=0.0, le=1.0)
    retry_after_ms: int = Field(1800, ge=0, le=600_000)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_s: float = Field(5.0, ge=0.0, le=120.0)
    apply_on_timeout: bool = False
    times: int | None = Field(None, ge=1)
    seed: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    kind: Literal["none", "error", "processing", "timeout"] = "none"
    status: int = 500
    retry_after_ms: int = 1800
    timeout_s: float = 0.0
    apply: bool = False


@dataclass
class _Armed:
    rule: FaultRule
    rng: random.Random
    injected: int = 0


def _key(path: str) -> str:
    method, _, rest = path.strip().partition(" ")
    if rest:
        return f"{method.upper()} {rest.strip().rstrip('/')}"
    return path.strip().rstrip("/") or "*"


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, _Armed] = {}

    def set(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules[_key(rule.path)] = _Armed(rule, random.Random(rule.seed))  # noqa: S311 - fault injection, not security

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, object]]:
        with self._lock:
            return [{**a.rule.model_dump(), "injected": a.injected} for a in self._rules.values()]

    def plan(self, method: str, route: str) -> FaultPlan:
        """What happens to a request for ``route`` (``/v3/payments/{id}``) by ``method``."""
        with self._lock:
            armed = (
                self._rules.get(f"{method.upper()} {route}")
                or self._rules.get(route)
                or self._rules.get("*")
            )
            if armed is None:
                return FaultPlan()
            rule = armed.rule
            if rule.times is not None and armed.injected >= rule.times:
                return FaultPlan()
            plan = FaultPlan()
            if rule.error_rate and armed.rng.random() < rule.error_rate:
                plan = FaultPlan("error", rule.status)
            elif rule.processing_rate and armed.rng.random() < rule.processing_rate:
                plan = FaultPlan("processing", retry_after_ms=rule.retry_after_ms)
            elif rule.timeout_rate and armed.rng.random() < rule.timeout_rate:
                plan = FaultPlan(
                    "timeout", 500, timeout_s=rule.timeout_s, apply=rule.apply_on_timeout
                )
            if plan.kind != "none":
                armed.injected += 1
            return plan
