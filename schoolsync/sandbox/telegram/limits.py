"""Telegram's flood limits (Bot FAQ; exact numbers unpublished).

Three budgets, all of which a new message must fit: a token bucket per chat (`per_chat_per_s`,
bursts of `per_chat_burst`), a sliding 60 s window per group (negative chat ids,
`per_group_per_min`), and a sliding 1 s window per bot (`global_per_s`). An edit takes from the
per-bot window only (`admit_global`): Telegram documents no per-chat limit for edits, and editing
one message over and over is how bots show progress. Deleting takes from none. A refused request
takes nothing from any budget; its `retry_after` is the whole seconds until the tightest one frees.

`POST /_sandbox/limits` changes the numbers at run time (`LimitChange`): a change to the per-chat
numbers refills every chat's bucket to the new burst; the sliding windows keep what they hold
and are measured against the new sizes from then on.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from pydantic import BaseModel, ConfigDict, Field


class LimitChange(BaseModel):
    """`POST /_sandbox/limits` body: the limits to change, the others stay."""

    model_config = ConfigDict(extra="forbid")

    per_chat_per_s: float | None = Field(None, gt=0.0)
    per_chat_burst: int | None = Field(None, ge=1)
    per_group_per_min: int | None = Field(None, ge=1)
    global_per_s: int | None = Field(None, ge=1)


class FloodLimits:
    def __init__(
        self,
        *,
        per_chat_per_s: float,
        per_chat_burst: int,
        per_group_per_min: int,
        global_per_s: int,
    ) -> None:
        self._lock = threading.Lock()
        self.per_chat_per_s = per_chat_per_s
        self.per_chat_burst = max(1, per_chat_burst)
        self.per_group_per_min = per_group_per_min
        self.global_per_s = global_per_s
        self.reset()

    def reset(self) -> None:
        """Forget what was spent; the limits themselves stay."""
        with self._lock:
            self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
            self._groups: dict[int, deque[float]] = {}
            self._global: deque[float] = deque()

    def configure(
        self,
        *,
        per_chat_per_s: float | None = None,
        per_chat_burst: int | None = None,
        per_group_per_min: int | None = None,
        global_per_s: int | None = None,
    ) -> None:
        """Change the limits given; per-chat buckets are refilled when a per-chat one changes."""
        with self._lock:
            if per_chat_per_s is not None or per_chat_burst is not None:
                self._buckets.clear()
            if per_chat_per_s is not None:
                self.per_chat_per_s = per_chat_per_s
            if per_chat_burst is not None:
                self.per_chat_burst = max(1, per_chat_burst)
            if per_group_per_min is not None:
                self.per_group_per_min = per_group_per_min
            if global_per_s is not None:
                self.global_per_s = global_per_s

    def settings(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "per_chat_per_s": self.per_chat_per_s,
                "per_chat_burst": self.per_chat_burst,
                "per_group_per_min": self.per_group_per_min,
                "global_per_s": self.global_per_s,
            }

    def admit(self, chat_id: int) -> int:
        """A new message: 0 when it may go now (and is counted), else `retry_after` in seconds."""
        now = time.monotonic()
        with self._lock:
            waits: list[float] = []
            tokens, at = self._buckets.get(chat_id, (float(self.per_chat_burst), now))
            tokens = min(float(self.per_chat_burst), tokens + (now - at) * self.per_chat_per_s)
            if tokens < 1.0:
                waits.append((1.0 - tokens) / self.per_chat_per_s)
            group = self._groups.setdefault(chat_id, deque())
            _expire(group, now - 60.0)
            if chat_id < 0 and len(group) >= self.per_group_per_min:
                waits.append(group[0] + 60.0 - now)
            global_wait = self._global_wait(now)
            if global_wait is not None:
                waits.append(global_wait)
            if waits:
                self._buckets[chat_id] = (tokens, now)
                return _whole_seconds(max(waits))
            self._buckets[chat_id] = (tokens - 1.0, now)
            group.append(now)
            self._global.append(now)
            return 0

    def admit_global(self) -> int:
        """An edit: the per-bot window only; 0 when it may go now, else `retry_after`."""
        now = time.monotonic()
        with self._lock:
            wait = self._global_wait(now)
            if wait is not None:
                return _whole_seconds(wait)
            self._global.append(now)
            return 0

    def _global_wait(self, now: float) -> float | None:
        _expire(self._global, now - 1.0)
        if len(self._global) >= self.global_per_s:
            return self._global[0] + 1.0 - now
        return None


def _whole_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def _expire(window: deque[float], before: float) -> None:
    while window and window[0] <= before:
        window.popleft()
