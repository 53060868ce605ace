"""W12 reports: the school's ``rules.reports`` block, report periods, the sheet row and the digest.

Pure: no I/O. The numbers are ``reconciliation.metrics``; the service reads the store::

    rules:
      reports:
        spreadsheet: 1AbC...            # optional: without it only the digest goes out
        daily_tab: Ежедневный
        weekly_tab: Еженедельный
        channel: reports                # a channel key from ``channels:`` (the digest)
        daily_at: "08:00"               # school time: yesterday's report after it
        weekly: true                    # Monday, after daily_at: last ISO week (with a chart)
        chart: true
        csi:                            # questions of the survey, with weights and scales
          score: {weight: 1, low: 0, high: 10}   # a feedback row's own 0-10 score (score5: 1-5)
          "Качество занятий": {weight: 2, low: 1, high: 5}
        fcr_question: "Вопрос решён с первого обращения?"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schoolsync.core.config import School
from schoolsync.core.domain import Money
from schoolsync.mappings.notifications import render
from schoolsync.reconciliation.metrics import (
    Metric,
    OrderMetrics,
    Question,
    SessionMetrics,
    Total,
)

Kind = Literal["daily", "weekly"]
DIGEST_TEMPLATE = "report_digest"
NO_DATA_TEXT = "нет данных"

HEADER = [
    "Период",
    "С",
    "По",
    "Заказов получено",
    "Взято в работу",
    "Оплачено",
    "Конверсия, %",
    "Первое касание, медиана, мин",
    "Первое касание, p90, мин (по N)",
    "Выручка по источникам",
    "Возвраты",
    "Занятия: проведено / перенесено / отменено",
    "NPS (по N)",
    "CSAT, % (по N)",
    "CSI, % (по N)",
    "FCR, % (по N)",
    "По менеджерам: получено / в работе / оплачено / конверсия",
]


class CsiQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(default=1.0, gt=0)
    low: float = 1
    high: float = 5

    @model_validator(mode="after")
    def _scale(self) -> CsiQuestion:
        if self.high <= self.low:
            raise ValueError("high must be above low")
        return self


class ReportRules(BaseModel):
    """``rules.reports`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spreadsheet: str | None = Field(default=None, min_length=10)
    daily_tab: str = Field(default="Ежедневный", min_length=1)
    weekly_tab: str = Field(default="Еженедельный", min_length=1)
    channel: str = "reports"
    daily_at: time = time(8, 0)
    weekly: bool = True
    chart: bool = True
    csi: dict[str, CsiQuestion] = Field(
        default_factory=lambda: {"score": CsiQuestion(low=0, high=10)}
    )
    fcr_question: str | None = None

    def questions(self) -> dict[str, Question]:
        return {n: Question(weight=q.weight, low=q.low, high=q.high) for n, q in self.csi.items()}

    def tab(self, kind: Kind) -> str:
        return self.daily_tab if kind == "daily" else self.weekly_tab


def report_rules(school: School) -> ReportRules:
    return ReportRules.model_validate(school.block("rules.reports") or {})


# --- periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A report's period in the school's zone: ``[start, end)``; ``key`` is its sheet row key
    (``2026-11-22`` for a day, ``2026-W47`` for an ISO week)."""

    kind: Kind
    key: str
    first: date
    last: date  # inclusive
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), self.tz)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def day_period(day: date, tz: ZoneInfo) -> Period:
    return Period("daily", day.isoformat(), day, day, tz)


def week_period(week: str, tz: ZoneInfo) -> Period:
    """``2026-W47`` (ISO 8601 week) as its Monday..Sunday.

    Raises:
        ValueError: not an ISO week.
    """
    try:
        year, number = week.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise ValueError(f"{week!r} is not an ISO week like 2026-W47") from None
    return week_of(monday, tz)


def week_of(day: date, tz: ZoneInfo) -> Period:
    year, number, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return Period("weekly", f"{year}-W{number:02d}", monday, monday + timedelta(days=6), tz)


def due_periods(rules: ReportRules, now: datetime, tz: ZoneInfo) -> list[Period]:
    """What is due at ``now``: yesterday once the local time is past ``daily_at``, and last ISO
    week on a Monday past ``daily_at`` (the caller does each once)."""
    local = now.astimezone(tz)
    if local.time() < rules.daily_at:
        return []
    due = [day_period(local.date() - timedelta(days=1), tz)]
    if rules.weekly and local.isoweekday() == 1:
        due.append(week_of(local.date() - timedelta(days=7), tz))
    return due


# --- what people read --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    period: Period
    orders: OrderMetrics
    revenue: dict[tuple[str, str], Total]
    refunds: dict[str, Total]
    sessions: SessionMetrics
    nps: Metric
    csat: Metric
    csi: Metric
    fcr: Metric
    daily: list[tuple[str, OrderMetrics]]  # per day of the period (the weekly chart)


def money(total: Total, currency: str) -> str:
    return Money.from_minor(total.amount_minor, currency).display()


def revenue_text(revenue: dict[tuple[str, str], Total]) -> str:
    if not revenue:
        return "0"
    return "; ".join(
        f"{source}: {money(t, cur)} ({t.count})" for (source, cur), t in revenue.items()
    )


def refunds_text(refunds: dict[str, Total]) -> str:
    if not refunds:
        return "0"
    return "; ".join(f"{money(t, cur)} ({t.count})" for cur, t in refunds.items())


def with_count(metric: Metric, *, digits: int = 1) -> str:
    return f"{metric.text(digits=digits)} (n={metric.count})" if metric.has_data else NO_DATA_TEXT


def _count(metric: Metric) -> str:
    return NO_DATA_TEXT if metric.value is None else str(int(metric.value))


def sheet_row(data: ReportData) -> list[str]:
    """The report's row; column A is the period key (a rerun overwrites the same row, with the
    same values while the store says the same)."""
    o = data.orders
    s = data.sessions
    managers = "; ".join(
        f"{name}: {m.received}/{m.taken}/{m.paid}/{m.conversion.text(unit='%', none='—')}"
        for name, m in o.by_manager.items()
    )
    return [
        data.period.key,
        data.period.first.isoformat(),
        data.period.last.isoformat(),
        str(o.received),
        str(o.taken),
        str(o.paid),
        o.conversion.text(none=NO_DATA_TEXT),
        o.first_touch_median_min.text(digits=0, none=NO_DATA_TEXT),
        with_count(o.first_touch_p90_min, digits=0),
        revenue_text(data.revenue),
        refunds_text(data.refunds),
        " / ".join(_count(m) for m in (s.held, s.rescheduled, s.cancelled)),
        with_count(data.nps),
        with_count(data.csat),
        with_count(data.csi),
        with_count(data.fcr),
        managers or "—",
    ]


def digest(data: ReportData) -> str:
    """The five-line digest (Telegram HTML, from the ``report_digest`` template)."""
    period = data.period
    if period.kind == "daily":
        title = f"Отчёт за {period.first:%d.%m.%Y}"
    else:
        title = f"Отчёт за неделю {period.key} ({period.first:%d.%m}–{period.last:%d.%m})"
    o = data.orders
    return render(
        DIGEST_TEMPLATE,
        title=title,
        received=o.received,
        taken=o.taken,
        paid=o.paid,
        conversion=o.conversion.text(unit="%", none=NO_DATA_TEXT),
        touch=o.first_touch_median_min.text(digits=0, unit=" мин", none=NO_DATA_TEXT),
        revenue=revenue_text(data.revenue),
        refunds=refunds_text(data.refunds),
        nps=data.nps.text(none=NO_DATA_TEXT),
        csat=data.csat.text(unit="%", none=NO_DATA_TEXT),
        csi=data.csi.text(unit="%", none=NO_DATA_TEXT),
        fcr=data.fcr.text(unit="%", none=NO_DATA_TEXT),
    )
