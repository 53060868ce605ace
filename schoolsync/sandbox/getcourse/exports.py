"""The asynchronous export API: start a job, poll it until its file is built, within limits.

Limits, as public integrations report them: every export API request (start or poll) counts
against a budget per sliding window (100 per 2 hours), and the account builds one export at a
time. Refusals are HTTP 200 with `success: false` and an `error_code` (903 over budget, 905
busy). A start needs at least one filter. The rows are taken when the job starts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as day_time
from typing import Any

from schoolsync.sandbox.getcourse.formats import (
    PAYMENT_FIELDS,
    USER_FIELDS,
    deal_fields,
    deal_row,
    payment_row,
    user_row,
)
from schoolsync.sandbox.getcourse.model import (
    DEAL_STATUSES,
    MOSCOW,
    PAYMENT_STATUSES,
    Account,
)

BUDGET_EXCEEDED = "Слишком много запросов, попробуйте позднее"
BUSY = "Уже запущен один экспорт, попробуйте позднее"
NOT_READY = "Файл еще не создан"
KEPT_JOBS = 50

RANGE_FILTERS = {
    "deals": ("created_at", "payed_at", "finished_at", "status_changed_at"),
    "users": ("created_at",),
    "payments": ("created_at",),
}
STATUS_FILTERS: dict[str, Mapping[str, str]] = {
    "deals": DEAL_STATUSES,
    "payments": PAYMENT_STATUSES,
}


def failure(message: str, code: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": True, "error_message": message, "info": []}
    if code is not None:
        body["error_code"] = code
    return body


class FilterError(ValueError):
    """A filter the export cannot use; the message names it."""


@dataclass
class Filters:
    ranges: dict[str, tuple[datetime | None, datetime | None]]
    status: str | None

    def match(self, moments: Mapping[str, datetime | None], status: str | None) -> bool:
        if self.status is not None and status != self.status:
            return False
        for name, (start, end) in self.ranges.items():
            value = moments.get(name)
            if value is None:
                return False
            if (start is not None and value < start) or (end is not None and value > end):
                return False
        return True


def _day(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise FilterError(f"Неверная дата в фильтре {name}: {raw}") from exc


def parse_filters(kind: str, params: Mapping[str, str]) -> Filters:
    """Read `created_at[from]=YYYY-MM-DD`-style filters; dates are whole days, Moscow time."""
    ranges: dict[str, tuple[datetime | None, datetime | None]] = {}
    for name in RANGE_FILTERS[kind]:
        low, high = params.get(f"{name}[from]"), params.get(f"{name}[to]")
        if not low and not high:
            continue
        start = datetime.combine(_day(f"{name}[from]", low), day_time.min, MOSCOW) if low else None
        end = datetime.combine(_day(f"{name}[to]", high), day_time.max, MOSCOW) if high else None
        ranges[name] = (start, end)
    allowed = STATUS_FILTERS.get(kind)
    status = (params.get("status") or None) if allowed is not None else None
    if status is not None and allowed is not None and status not in allowed:
        raise FilterError(f"Неизвестный статус: {status}")
    if not ranges and status is None:
        raise FilterError("Не задан ни один фильтр экспорта")
    return Filters(ranges, status)


def build_table(account: Account, kind: str, filters: Filters) -> tuple[list[str], list[list[Any]]]:
    if kind == "deals":
        extra: list[str] = []
        for deal in account.deals:
            extra.extend(title for title in deal.addfields if title not in extra)
        rows = [
            deal_row(account, deal, extra)
            for deal in account.deals
            if filters.match(
                {
                    "created_at": deal.created_at,
                    "payed_at": deal.payed_at,
                    "finished_at": deal.finished_at,
                    "status_changed_at": deal.status_changed_at,
                },
                deal.status,
            )
        ]
        return deal_fields(extra), rows
    if kind == "users":
        users = sorted(account.users.values(), key=lambda user: user.id)
        rows = [user_row(u) for u in users if filters.match({"created_at": u.created_at}, None)]
        return list(USER_FIELDS), rows
    rows = [
        payment_row(account, p)
        for p in account.payments
        if filters.match({"created_at": p.created_at}, p.status)
    ]
    return list(PAYMENT_FIELDS), rows


@dataclass
class ExportJob:
    id: int
    kind: str
    ready_at: float
    fields: list[str]
    items: list[list[Any]]


class ExportDesk:
    """Export jobs of one account and the limits on them."""

    def __init__(
        self,
        *,
        budget: int,
        window_s: float,
        ready_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.window_s = window_s
        self.ready_after_s = ready_after_s
        self.clock = clock
        self.jobs: dict[int, ExportJob] = {}
        self.requests: deque[float] = deque()
        self._next_id = 7_001
        self.counts = dict.fromkeys(
            ("started", "refused_budget", "refused_busy", "polls", "not_ready", "served"), 0
        )

    def _admit(self) -> bool:
        now = self.clock()
        while self.requests and self.requests[0] <= now - self.window_s:
            self.requests.popleft()
        if len(self.requests) >= self.budget:
            self.counts["refused_budget"] += 1
            return False
        self.requests.append(now)
        return True

    def _busy(self) -> bool:
        now = self.clock()
        return any(job.ready_at > now for job in self.jobs.values())

    def start(self, kind: str, params: Mapping[str, str], account: Account) -> dict[str, Any]:
        if not self._admit():
            return failure(BUDGET_EXCEEDED, 903)
        if self._busy():
            self.counts["refused_busy"] += 1
            return failure(BUSY, 905)
        try:
            filters = parse_filters(kind, params)
        except FilterError as exc:
            return failure(str(exc))
        fields, items = build_table(account, kind, filters)
        job = ExportJob(self._next_id, kind, self.clock() + self.ready_after_s, fields, items)
        self._next_id += 1
        self.jobs[job.id] = job
        while len(self.jobs) > KEPT_JOBS:
            del self.jobs[min(self.jobs)]
        self.counts["started"] += 1
        return {"success": True, "info": {"export_id": job.id}}

    def poll(self, export_id: int) -> dict[str, Any]:
        if not self._admit():
            return failure(BUDGET_EXCEEDED, 903)
        self.counts["polls"] += 1
        job = self.jobs.get(export_id)
        if job is None:
            return failure(f"Экспорт {export_id} не найден")
        if self.clock() < job.ready_at:
            self.counts["not_ready"] += 1
            return failure(NOT_READY)
        self.counts["served"] += 1
        return {"success": True, "info": {"fields": job.fields, "items": job.items}}

    def snapshot(self) -> dict[str, int]:
        counts = dict(self.counts)
        counts["refused"] = counts["refused_budget"] + counts["refused_busy"]
        counts["requests_in_window"] = len(self.requests)
        return counts
