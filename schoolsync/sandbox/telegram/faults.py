"""Faults a test switches on per Bot API method (or `*` for all): errors and lost replies.

An error answers before anything happens, with `status` and Telegram's error body. A timeout
holds the request open for `timeout_s` and then answers 504: with `apply_on_timeout` the method
has run first (the message was sent, the client never heard), otherwise nothing happened.
A drop (`drop_rate`) runs the method (the message is stored and counted) and then loses the
answer: the client gets 502 with an empty body, as from a proxy whose upstream connection broke.
A truly closed connection is not used: uvicorn can only close one after sending a status line
and logging an application error, and Starlette's test client would raise instead.
Each request draws in that order (error, then timeout, then drop), each draw only when its rate
is above 0, from a generator seeded by `seed`, so the same requests meet the same faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultRule(BaseModel):
    """`POST /_sandbox/faults` body; a rule replaces an earlier one for the same `method`."""

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status: int = Field(500, ge=400, le=599)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_s: float = Field(5.0, ge=0.0, le=120.0)
    apply_on_timeout: bool = False
    drop_rate: float = Field(0.0, ge=0.0, le=1.0)
    seed: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    kind: Literal["none", "error", "timeout", "drop"] = "none"
    status: int = 500
    timeout_s: float = 0.0
    apply: bool = False


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[FaultRule, random.Random]] = {}

    def set(self, rule: FaultRule) -> None:
        key = rule.method.lower()
        with self._lock:
            self._rules[key] = (rule, random.Random(rule.seed))  # noqa: S311 - fault injection, not security

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, object]]:
        with self._lock:
            return [rule.model_dump() for rule, _ in self._rules.values()]

    def plan(self, method: str) -> FaultPlan:
        """A rule for this very method wins over `*`."""
        with self._lock:
            found = self._rules.get(method.lower()) or self._rules.get("*")
            if found is None:
                return FaultPlan()
            rule, rng = found
            if rule.error_rate and rng.random() < rule.error_rate:
                return FaultPlan("error", rule.status)
            if rule.timeout_rate and rng.random() < rule.timeout_rate:
                return FaultPlan("timeout", 504, rule.timeout_s, rule.apply_on_timeout)
            if rule.drop_rate and rng.random() < rule.drop_rate:
                return FaultPlan("drop", 502, apply=True)
            return FaultPlan()
