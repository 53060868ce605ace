"""Process callbacks («Вызвать URL»): render the school's URL template for an order and send it
from a background thread, with a few retries, counting what was delivered, failed or dropped.

GetCourse substitutes `{object.…}` placeholders (`{object.created_at format='Y-m-d H:i:s'}`
takes a PHP date format) and sends every value in the query string, whatever the method.
Substituted values are URL-encoded; an unknown `{object.…}` placeholder becomes empty.
"""

from __future__ import annotations

import http.client
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from schoolsync.sandbox.getcourse.formats import callback_money, plain_money
from schoolsync.sandbox.getcourse.model import Account, Deal

_PLACEHOLDER = re.compile(r"\{(object(?:\.[A-Za-z0-9_]+)+)((?:\s+[a-z_]+\s*=\s*'[^']*')*)\s*\}")
_FORMAT_ARG = re.compile(r"format\s*=\s*'([^']*)'")
_PHP_DATE = {"Y": "%Y", "y": "%y", "m": "%m", "d": "%d", "H": "%H", "i": "%M", "s": "%S"}
_URL_SAFE = "/?&=%#:@!$'()*+,;~"
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

Value = str | datetime | None


def placeholder_values(account: Account, deal: Deal) -> dict[str, Value]:
    """Everything an order process can substitute, keyed by placeholder name."""
    user = account.users[deal.user_id]
    values: dict[str, Value] = {
        "object.id": str(deal.id),
        "object.number": deal.number,
        "object.status": deal.status,
        "object.cost_money": callback_money(deal.cost),
        "object.cost_money_value": plain_money(deal.cost),
        "object.left_cost_money": callback_money(deal.left),
        "object.left_cost_money_value": plain_money(deal.left),
        "object.payed_money": callback_money(deal.payed),
        "object.payed_money_value": plain_money(deal.payed),
        "object.payment_link": deal.payment_link,
        "object.positions": deal.offer.title,
        "object.offers": str(deal.offer.offer_id),
        "object.promocode": "",
        "object.manager": account.manager_name(deal.manager_email),
        "object.manager_email": deal.manager_email,
        "object.created_at": deal.created_at,
        "object.payed_at": deal.payed_at,
        "object.finished_at": deal.finished_at,
        "object.user.id": str(user.id),
        "object.user.email": user.email,
        "object.user.phone": user.phone,
        "object.user.first_name": user.first_name,
        "object.user.last_name": user.last_name,
        "object.user.name": user.name,
        "object.user.city": user.city,
        "object.user.country": user.country,
    }
    for key in _UTM:
        values[f"object.deal_{key}"] = deal.utm.get(key, "")
        values[f"object.user.{key}"] = user.utm.get(key, "")
        values[f"object.user.create_session.{key}"] = user.utm.get(key, "")
    return values


def php_date(value: datetime, pattern: str) -> str:
    out = []
    for char in pattern:
        if char in _PHP_DATE:
            out.append(value.strftime(_PHP_DATE[char]))
        elif char == "j":
            out.append(str(value.day))
        elif char == "n":
            out.append(str(value.month))
        elif char == "G":
            out.append(str(value.hour))
        else:
            out.append(char)
    return "".join(out)


def render_url(template: str, values: dict[str, Value]) -> str:
    """Substitute the placeholders of `template`; each value is URL-encoded."""

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if isinstance(value, datetime):
            fmt = _FORMAT_ARG.search(match.group(2) or "")
            text = php_date(value, fmt.group(1) if fmt else "Y-m-d H:i:s")
        else:
            text = value or ""
        return quote(text, safe="")

    return _PLACEHOLDER.sub(substitute, template)


@dataclass
class Delivery:
    """One callback as it ended: `delivered`, `failed` (retries used up) or `dropped` (fault)."""

    url: str
    method: str
    outcome: str
    attempts: int
    status_code: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "status_code": self.status_code,
        }


class CallbackDispatcher:
    """Sends callbacks from worker threads, so a request that fires one never waits on it.

    `submit` is thread-safe and returns at once. Each worker keeps one keep-alive connection
    per host (stdlib `http.client`: cheap enough for tens of thousands of callbacks). A callback
    is tried `max_attempts` times in all on a connection error or a non-2xx answer, with a
    doubling pause (`backoff_s`, at most `max_backoff_s`), then given up as failed.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        timeout_s: float = 5.0,
        workers: int = 8,
        log_size: int = 20_000,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.workers = workers
        self.counts = {"enqueued": 0, "delivered": 0, "failed": 0, "dropped": 0, "attempts": 0}
        self.pending = 0
        self.log: deque[Delivery] = deque(maxlen=log_size)
        self._lock = threading.Lock()
        self._generation = 0
        self._queue: queue.SimpleQueue[tuple[str, str, int] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    # -- public ------------------------------------------------------------------------
    def submit(self, url: str, method: str) -> None:
        with self._lock:
            self.counts["enqueued"] += 1
            self.pending += 1
            generation = self._generation
            if not self._threads:
                self._threads = [
                    threading.Thread(
                        target=self._work, name=f"getcourse-callbacks-{n}", daemon=True
                    )
                    for n in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()
        self._queue.put((url, method, generation))

    def record_dropped(self, url: str, method: str) -> None:
        with self._lock:
            self.counts["dropped"] += 1
            self.log.append(Delivery(url, method, "dropped", 0, None))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self.counts)
            counts["pending"] = self.pending
        counts["sent"] = counts["delivered"]
        return counts

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [item.as_dict() for item in self.log]

    def reset(self) -> None:
        """Forget counts and log; deliveries still in flight no longer count."""
        with self._lock:
            self._generation += 1
            self.counts = dict.fromkeys(self.counts, 0)
            self.pending = 0
            self.log.clear()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the workers once the callbacks already queued are sent (or `timeout_s`)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the workers -------------------------------------------------------------------
    def _work(self) -> None:
        connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        try:
            while (item := self._queue.get()) is not None:
                self._deliver(connections, *item)
        finally:
            for connection in connections.values():
                connection.close()

    def _deliver(
        self,
        connections: dict[tuple[str, str], http.client.HTTPConnection],
        url: str,
        method: str,
        generation: int,
    ) -> None:
        status: int | None = None
        outcome = "failed"
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            with self._lock:
                if generation == self._generation:
                    self.counts["attempts"] += 1
            status = self._send(connections, url, method)
            if status is not None and 200 <= status < 300:
                outcome = "delivered"
                break
            if attempt < self.max_attempts:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
        with self._lock:
            if generation != self._generation:
                return
            self.counts[outcome] += 1
            self.pending -= 1
            self.log.append(Delivery(url, method, outcome, attempt, status))

    def _send(
        self,
        connections: dict[tuple[str, str], http.client.HTTPConnection],
        url: str,
        method: str,
    ) -> int | None:
        """One request; `None` when it could not be made. A kept-alive connection the other
        side has closed is reopened once without counting as a try."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not target.isascii():
            target = quote(target, safe=_URL_SAFE)
        for reused in (key in connections, False):
            connection = connections.get(key) or self._connect(parts.scheme, parts.netloc)
            if connection is None:
                return None
            connections[key] = connection
            try:
                connection.request(method, target, headers={"Content-Length": "0"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                del connections[key]
                if reused:
                    continue
                return None
            if response.will_close:
                connection.close()
                del connections[key]
            return response.status
        return None

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection | None:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=self.timeout_s)
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout_s)
        return None
