"""HTTP notifications, sent as YooKassa sends them, from a daemon thread so no request waits.

Each is a JSON ``POST`` of ``{"type": "notification", "event", "object"}`` to the shop's
notification URL. YooKassa treats only HTTP 200 as received and redelivers anything else (for
24 hours); the sandbox tries ``retries + 1`` times with a doubling pause. The log keeps, per
notification, the event, the object id, attempts, the last status and whether it arrived; never
the URL (a school may put a secret in it).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

_IDLE_EXIT_S = 2.0


@dataclass(frozen=True)
class Delivery:
    number: int
    url: str
    body: dict[str, Any]
    generation: int


class Notifier:
    def __init__(self, *, timeout_s: float, retries: int, retry_delay_s: float) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._log: list[dict[str, Any]] = []

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "pending": sum(1 for e in self._log if e["state"] == "pending"),
                "delivered": sum(1 for e in self._log if e["state"] == "delivered"),
                "failed": sum(1 for e in self._log if e["state"] == "failed"),
                "attempts": sum(e["attempts"] for e in self._log),
            }

    def reset(self) -> None:
        """Forget the log; deliveries in flight still go out but are no longer recorded."""
        with self._lock:
            self._generation += 1
            self._log = []

    def submit(self, url: str, event: str, payload: dict[str, Any]) -> None:
        body = {"type": "notification", "event": event, "object": payload}
        with self._lock:
            number = len(self._log)
            self._log.append(
                {
                    "event": event,
                    "object_id": payload.get("id"),
                    "state": "pending",
                    "attempts": 0,
                    "last_status": None,
                }
            )
            self._queue.put(Delivery(number, url, body, self._generation))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="yookassa-sandbox-notify", daemon=True
                )
                self._thread.start()

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """True once nothing is pending (for tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.snapshot()["pending"] == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while True:
                try:
                    item = self._queue.get(timeout=_IDLE_EXIT_S)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                self._deliver(client, item)

    def _deliver(self, client: httpx.Client, item: Delivery) -> None:
        content = json.dumps(item.body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            status: int | None
            try:
                status = client.post(item.url, content=content, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            done = status == 200
            self._record(item, status, "delivered" if done else None)
            if done:
                return
        self._record(item, None, "failed", attempt=False)

    def _record(
        self, item: Delivery, status: int | None, state: str | None, *, attempt: bool = True
    ) -> None:
        with self._lock:
            if item.generation != self._generation:
                return
            entry = self._log[item.number]
            if attempt:
                entry["attempts"] += 1
                entry["last_status"] = status
            if state is not None:
                entry["state"] = state
