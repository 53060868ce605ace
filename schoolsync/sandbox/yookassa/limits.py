"""The request limit: YooKassa answers 429 ``too_many_requests`` ("request limit per time unit
exceeded") without publishing the limit. The sandbox counts a sliding one-second window per
shop; a refused request is not counted and is told, in ``retry_after`` (ms), when the window has
room again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW_S = 1.0


class RequestLimit:
    def __init__(self, per_s: int) -> None:
        self._lock = threading.Lock()
        self.per_s = per_s
        self._window: deque[float] = deque()

    def configure(self, per_s: int) -> None:
        with self._lock:
            self.per_s = per_s

    def reset(self) -> None:
        with self._lock:
            self._window.clear()

    def admit(self) -> int:
        """0 when the request may go (and is counted), else the wait in milliseconds."""
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - WINDOW_S:
                self._window.popleft()
            if len(self._window) >= self.per_s:
                return max(1, math.ceil((self._window[0] + WINDOW_S - now) * 1000))
            self._window.append(now)
            return 0
