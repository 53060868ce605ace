"""W8: payment-link follow-ups, as config and a pure decision. No I/O.

The school's ``rules.followups`` block (every key optional)::

    rules:
      followups:
        enabled: true
        after_hours: 24                  # the link went out this long ago and nothing was paid
        statuses: [in_work, payment_waiting]
        task_text: "Дожать: вчера отправлена ссылка на оплату"
        due_hours: 4                     # the task is due this long after it is made
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus


class FollowupRules(BaseModel):
    """``rules.followups`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    after_hours: int = Field(default=24, ge=1, le=24 * 30)
    statuses: list[OrderStatus] = [OrderStatus.IN_WORK, OrderStatus.PAYMENT_WAITING]
    task_text: str = Field(default="Дожать: вчера отправлена ссылка на оплату", min_length=1)
    due_hours: int = Field(default=4, ge=1, le=24 * 7)


def followup_rules(school: School) -> FollowupRules:
    return FollowupRules.model_validate(school.block("rules.followups") or {})


def needs_followup(
    order: Order, link_since: datetime | None, paid: bool, now: datetime, rules: FollowupRules
) -> bool:
    """A payment link went out (the order in a waiting status, with a link, since
    ``link_since``) ``after_hours`` ago, and no money came."""
    return (
        not paid
        and order.status in rules.statuses
        and bool(order.payment_link)
        and link_since is not None
        and now - link_since >= timedelta(hours=rules.after_hours)
    )
