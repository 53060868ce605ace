"""Sheets API per-minute quotas (developers.google.com/sheets/api/limits): read requests and
write requests are counted apart, per user (here: per service account), ``per_minute`` each
(Google's default is 60). A request over the limit is answered 429 RESOURCE_EXHAUSTED and not
counted; Google gives no ``Retry-After``: "requests succeed again after a minute". The sandbox
counts a sliding 60-second window, which is never looser than Google's minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Literal

from schoolsync.sandbox.sheets.errors import GoogleError

Kind = Literal["read", "write"]
WINDOW_S = 60.0
_METRIC = {"read": "Read requests", "write": "Write requests"}


class Quotas:
    def __init__(self, per_minute: int) -> None:
        self._lock = threading.Lock()
        self.per_minute = per_minute
        self._windows: dict[tuple[str, Kind], deque[float]] = {}

    def set_limit(self, per_minute: int) -> None:
        with self._lock:
            self.per_minute = per_minute

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def admit(self, email: str, kind: Kind, project_number: str) -> None:
        """Count one request, or raise the 429 Google answers."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault((email, kind), deque())
            while window and window[0] <= now - WINDOW_S:
                window.popleft()
            if len(window) >= self.per_minute:
                metric = _METRIC[kind]
                raise GoogleError(
                    429,
                    f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute "
                    f"per user' of service 'sheets.googleapis.com' for consumer "
                    f"'project_number:{project_number}'.",
                )
            window.append(now)

    def used(self) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            return {
                f"{email} {kind}": sum(1 for t in window if t > now - WINDOW_S)
                for (email, kind), window in self._windows.items()
            }
