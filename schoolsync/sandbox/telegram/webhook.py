"""Pushing updates to the bot's webhook from a daemon thread, so the sender never waits.

Each update is a JSON POST with `X-Telegram-Bot-Api-Secret-Token` when a secret was set, tried
`retries + 1` times with a doubling pause; any 2xx is a delivery. The last failure is kept in
Telegram's words for `getWebhookInfo` (never with the URL: ours carry secrets).
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
    url: str
    secret: str | None
    update: dict[str, Any]
    generation: int


class WebhookSender:
    def __init__(self, *, timeout_s: float, retries: int, retry_delay_s: float) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self.pending = 0
        self.delivered = 0
        self.failed = 0
        self.attempts = 0
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "pending": self.pending,
                "delivered": self.delivered,
                "failed": self.failed,
                "attempts": self.attempts,
            }

    def reset(self) -> None:
        """Forget counts; deliveries in flight still go out but no longer count."""
        with self._lock:
            self._generation += 1
            self.pending = self.delivered = self.failed = self.attempts = 0
            self.last_error_date = self.last_error_message = None

    def submit(self, url: str, secret: str | None, update: dict[str, Any]) -> None:
        with self._lock:
            self.pending += 1
            self._queue.put(Delivery(url, secret, update, self._generation))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="telegram-sandbox-webhook", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                try:
                    item = self._queue.get(timeout=_IDLE_EXIT_S)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                delivered = self._deliver(client, item)
                with self._lock:
                    if item.generation == self._generation:
                        self.pending -= 1
                        if delivered:
                            self.delivered += 1
                        else:
                            self.failed += 1

    def _deliver(self, client: httpx.Client, item: Delivery) -> bool:
        headers = {"Content-Type": "application/json"}
        if item.secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = item.secret
        body = json.dumps(item.update, ensure_ascii=False).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            error: str
            try:
                response = client.post(item.url, content=body, headers=headers)
            except httpx.TimeoutException:
                error = "Read timeout expired"
            except httpx.HTTPError:
                error = "Connection refused"
            else:
                if 200 <= response.status_code < 300:
                    self._count_attempt(item, None)
                    return True
                error = f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
            self._count_attempt(item, error)
        return False

    def _count_attempt(self, item: Delivery, error: str | None) -> None:
        with self._lock:
            if item.generation != self._generation:
                return
            self.attempts += 1
            if error is not None:
                self.last_error_date = int(time.time())
                self.last_error_message = error
