"""Faults a test switches on per API method (or ``*`` for all): errors and lost replies.

Methods are ``values.get``, ``values.update``, ``values.append``, ``values.batchUpdate`` and
``token``. An error answers before anything happens, with ``status`` and Google's error body. A
timeout holds the request open for ``timeout_s`` and then answers 504: with
``apply_on_timeout`` the method has run first (the rows were written, the client never heard),
otherwise nothing happened. Draws come from a generator seeded by ``seed``, so the same
requests meet the same faults. ``times`` limits how many faults a rule injects in all.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultRule(BaseModel):
    """``POST /_sandbox/faults`` body; a rule replaces an earlier one for the same ``method``."""

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status: int = Field(500, ge=400, le=599)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_s: float = Field(5.0, ge=0.0, le=120.0)
    apply_on_timeout: bool = False
    times: int | None = Field(None, ge=1)
    seed: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    kind: Literal["none", "error", "timeout"] = "none"
    status: int = 500
    timeout_s: float = 0.0
    apply: bool = False


@dataclass
class _Armed:
    rule: FaultRule
    rng: random.Random
    injected: int = 0


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, _Armed] = {}

    def set(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules[rule.method.lower()] = _Armed(rule, random.Random(rule.seed))  # noqa: S311 - fault injection, not security

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, object]]:
        with self._lock:
            return [{**a.rule.model_dump(), "injected": a.injected} for a in self._rules.values()]

    def plan(self, method: str) -> FaultPlan:
        """A rule for this very method wins over ``*``."""
        with self._lock:
            armed = self._rules.get(method.lower()) or self._rules.get("*")
            if armed is None:
                return FaultPlan()
            rule = armed.rule
            if rule.times is not None and armed.injected >= rule.times:
                return FaultPlan()
            plan = FaultPlan()
            if rule.error_rate and armed.rng.random() < rule.error_rate:
                plan = FaultPlan("error", rule.status)
            elif rule.timeout_rate and armed.rng.random() < rule.timeout_rate:
                plan = FaultPlan("timeout", 504, rule.timeout_s, rule.apply_on_timeout)
            if plan.kind != "none":
                armed.injected += 1
            return plan
