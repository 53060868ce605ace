"""Telegram's flood limits for sending (Bot FAQ; exact numbers unpublished).

Three budgets, all of which a message must fit: a token bucket per chat (`per_chat_per_s`,
bursts of `per_chat_burst`), a sliding 60 s window per group (negative chat ids,
`per_group_per_min`), and a sliding 1 s window per bot (`global_per_s`). A refused message takes
nothing from any budget; its `retry_after` is the whole seconds until the tightest one frees.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class FloodLimits:
    def __init__(
        self,
        *,
        per_chat_per_s: float,
        per_chat_burst: int,
        per_group_per_min: int,
        global_per_s: int,
    ) -> None:
        self.per_chat_per_s = per_chat_per_s
        self.per_chat_burst = max(1, per_chat_burst)
        self.per_group_per_min = per_group_per_min
        self.global_per_s = global_per_s
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
            self._groups: dict[int, deque[float]] = {}
            self._global: deque[float] = deque()

    def admit(self, chat_id: int) -> int:
        """0 when the message may go now (and is counted), else `retry_after` in seconds."""
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
            _expire(self._global, now - 1.0)
            if len(self._global) >= self.global_per_s:
                waits.append(self._global[0] + 1.0 - now)
            if waits:
                self._buckets[chat_id] = (tokens, now)
                return max(1, math.ceil(max(waits)))
            self._buckets[chat_id] = (tokens - 1.0, now)
            group.append(now)
            self._global.append(now)
            return 0


def _expire(window: deque[float], before: float) -> None:
    while window and window[0] <= before:
        window.popleft()
