"""W2: the response-time rule for new orders, as config and pure decisions. No I/O.

The school's ``rules.sla`` block (every key optional)::

    rules:
      sla:
        enabled: true
        channel: sales
        remind_after_min: 20        # a reminder in «Продажи»
        escalate_after_min: 35      # an escalation, once
        night: {start: "02:00", end: "12:00"}   # no per-order alerts; one list at the end

An order needs attention while it is ``new`` and has no manager. Each alert is decided from the
order's age at the sweep's time, so a sweep that runs late still sends it, and the outbox key
(``sla-remind:<number>``) makes it once, however many sweeps see it.

``mode: psychology`` is the psychology platform's rule instead («Просмотр всех новых заявок — не
позднее чем через 1 час после поступления»; «Первичный контакт с клиентом — в течение рабочего
дня после поступления заявки»)::

    rules:
      sla:
        mode: psychology
        seen_within_min: 60         # working minutes: a request nobody has seen -> a reminder
        working_hours: {start: "10:00", end: "19:00", weekdays: [1, 2, 3, 4, 5, 6, 7]}

A request is *seen* once a manager is on it or it left ``new``, and *contacted* once it left
``new`` (the manager sets «В работе» after the first call or message). The hour counts working
time only (a request at 03:00 is due at 11:00, one at 18:30 at 10:30 the next working day).
Contact is due by the end of the working day the hour ends in, but never at the same moment:
a request that comes in the last hour of the day is the next working day's. There is no night
list in this mode: the working hours do that job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus


class Night(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(2, 0)
    end: time = time(12, 0)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class WorkingHours(BaseModel):
    """When managers work, in the school's timezone (``weekdays``: ISO, Monday is 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(10, 0)
    end: time = time(19, 0)
    weekdays: frozenset[int] = frozenset(range(1, 8))

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value or not value <= set(range(1, 8)):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday), at least one")
        return value

    @model_validator(mode="after")
    def _order(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("working_hours.end must be later than start (the same day)")
        return self

    def _days(self, after: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """Working days (opening, closing, in UTC) from the day of ``after``, for two weeks."""
        first = after.astimezone(tz).date()
        found = []
        for offset in range(15):
            day = first + timedelta(days=offset)
            if day.isoweekday() in self.weekdays:
                opens = datetime.combine(day, self.start, tzinfo=tz).astimezone(UTC)
                closes = datetime.combine(day, self.end, tzinfo=tz).astimezone(UTC)
                found.append((opens, closes))
        return found

    def add(self, since: datetime, minutes: int, tz: ZoneInfo) -> datetime:
        """The moment ``minutes`` of working time have passed since ``since`` (UTC)."""
        left = timedelta(minutes=minutes)
        cursor = since.astimezone(UTC)
        for opens, closes in self._days(since, tz):
            begin = max(cursor, opens)
            if begin >= closes:
                continue
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
        raise ValueError("more working time than two weeks hold")  # a week has a working day

    def day_end_after(self, when: datetime, tz: ZoneInfo) -> datetime:
        """The end of the first working day that ends strictly after ``when`` (UTC)."""
        for _opens, closes in self._days(when, tz):
            if closes > when:
                return closes
        raise ValueError("no working day within two weeks")  # a week has a working day


class SlaRules(BaseModel):
    """``rules.sla`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    mode: Literal["shop", "psychology"] = "shop"
    channel: str = "sales"
    remind_after_min: int = Field(default=20, ge=1, le=24 * 60)
    escalate_after_min: int = Field(default=35, ge=1, le=24 * 60)
    night: Night | None = Night()
    seen_within_min: int = Field(default=60, ge=1, le=24 * 60)
    working_hours: WorkingHours = WorkingHours()

    @model_validator(mode="after")
    def _order(self) -> SlaRules:
        if self.escalate_after_min <= self.remind_after_min:
            raise ValueError("escalate_after_min must be later than remind_after_min")
        return self

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("channel",), self.channel)] if self.enabled else []


def sla_rules(school: School) -> SlaRules:
    return SlaRules.model_validate(school.block("rules.sla") or {})


def untouched(order: Order) -> bool:
    """Still waiting for a manager: new, and nobody assigned."""
    return order.status == OrderStatus.NEW and not order.manager_email


def contacted(order: Order) -> bool:
    """Taken past ``new``: the manager has been in touch (psychology mode)."""
    return order.status != OrderStatus.NEW


@dataclass(frozen=True)
class Alert:
    kind: str  # remind | escalate (shop); seen | contact (psychology)
    order: Order
    minutes: int  # the order's age at the sweep
    due: datetime | None = None  # the deadline it missed (psychology)


# an alert this late (a sweep that did not run for a day, or the mode just switched on) is
# history, not something to act on
LATE_LIMIT = timedelta(days=1)
# how far back a psychology sweep looks: a request on Friday evening is due on Monday, or later
# with fewer working days
PSYCHOLOGY_LOOK_BACK = timedelta(days=9)


def alerts_due(orders: list[Order], now: datetime, tz: ZoneInfo, rules: SlaRules) -> list[Alert]:
    """Per-order alerts that are due at ``now`` (none while it is night)."""
    if rules.mode == "psychology":
        return psychology_alerts_due(orders, now, tz, rules)
    if rules.night is not None and rules.night.contains(now.astimezone(tz).time()):
        return []
    due: list[Alert] = []
    for order in sorted(orders, key=lambda o: (o.created_at or now, o.number)):
        if order.created_at is None or not untouched(order):
            continue
        if _created_at_night(order, tz, rules):
            continue  # it is in the night list instead
        minutes = int((now - order.created_at).total_seconds() // 60)
        if minutes >= rules.escalate_after_min:
            due.append(Alert("remind", order, minutes))
            due.append(Alert("escalate", order, minutes))
        elif minutes >= rules.remind_after_min:
            due.append(Alert("remind", order, minutes))
    return due


def deadlines(order: Order, tz: ZoneInfo, rules: SlaRules) -> tuple[datetime, datetime]:
    """When a request must have been seen, and contacted (psychology mode), in UTC."""
    assert order.created_at is not None
    seen_by = rules.working_hours.add(order.created_at, rules.seen_within_min, tz)
    return seen_by, rules.working_hours.day_end_after(seen_by, tz)


def psychology_alerts_due(
    orders: list[Order], now: datetime, tz: ZoneInfo, rules: SlaRules
) -> list[Alert]:
    """``seen`` for a request nobody has seen by its deadline, ``contact`` for one nobody has
    been in touch with by the end of its working day; oldest first, neither more than
    :data:`LATE_LIMIT` late."""
    due: list[Alert] = []
    for order in sorted(orders, key=lambda o: (o.created_at or now, o.number)):
        if order.created_at is None or contacted(order):
            continue
        seen_by, contact_by = deadlines(order, tz, rules)
        minutes = int((now - order.created_at).total_seconds() // 60)
        if untouched(order) and seen_by <= now < seen_by + LATE_LIMIT:
            due.append(Alert("seen", order, minutes, seen_by))
        if contact_by <= now < contact_by + LATE_LIMIT:
            due.append(Alert("contact", order, minutes, contact_by))
    return due


def _created_at_night(order: Order, tz: ZoneInfo, rules: SlaRules) -> bool:
    if rules.night is None or order.created_at is None:
        return False
    return rules.night.contains(order.created_at.astimezone(tz).time())


def night_list_due(
    orders: list[Order], now: datetime, tz: ZoneInfo, rules: SlaRules
) -> tuple[date, list[Order]] | None:
    """At the end of the night (``now`` past it, the same day): the night's orders still
    untouched, oldest first, and the day they belong to; ``None`` before that or at night (and
    always in psychology mode)."""
    if rules.night is None or rules.mode == "psychology":
        return None
    local = now.astimezone(tz)
    if rules.night.contains(local.time()):
        return None
    day = local.date() if local.time() >= rules.night.end else local.date() - timedelta(days=1)
    start = datetime.combine(day, rules.night.start, tzinfo=tz)
    if rules.night.start > rules.night.end:  # a night across midnight began the day before
        start -= timedelta(days=1)
    end = datetime.combine(day, rules.night.end, tzinfo=tz)
    if local < end:
        return None
    found = [
        o
        for o in orders
        if o.created_at is not None and start <= o.created_at < end and untouched(o)
    ]
    found.sort(key=lambda o: (o.created_at, o.number))
    return day, found
