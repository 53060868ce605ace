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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class SlaRules(BaseModel):
    """``rules.sla`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    channel: str = "sales"
    remind_after_min: int = Field(default=20, ge=1, le=24 * 60)
    escalate_after_min: int = Field(default=35, ge=1, le=24 * 60)
    night: Night | None = Night()

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


@dataclass(frozen=True)
class Alert:
    kind: str  # remind | escalate
    order: Order
    minutes: int


def alerts_due(orders: list[Order], now: datetime, tz: ZoneInfo, rules: SlaRules) -> list[Alert]:
    """Per-order alerts that are due at ``now`` (none while it is night)."""
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


def _created_at_night(order: Order, tz: ZoneInfo, rules: SlaRules) -> bool:
    if rules.night is None or order.created_at is None:
        return False
    return rules.night.contains(order.created_at.astimezone(tz).time())


def night_list_due(
    orders: list[Order], now: datetime, tz: ZoneInfo, rules: SlaRules
) -> tuple[date, list[Order]] | None:
    """At the end of the night (``now`` past it, the same day): the night's orders still
    untouched, oldest first, and the day they belong to; ``None`` before that or at night."""
    if rules.night is None:
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
