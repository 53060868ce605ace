"""W3: two unpaid orders of one person for one product, as config and a pure decision.

The school's ``rules.duplicates`` block (every key optional)::

    rules:
      duplicates:
        enabled: true
        window_hours: 72          # the two orders were created this close together
        channel: sales

The person is the buyer's email, else their phone. The later order becomes «Ложный» (``false``)
without a manager; the earlier stays (or becomes «В работе» when it is still new). A paid order
(or one partly paid) is never touched, and neither is a pair where either one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus

UNPAID = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.IN_WORK,
        OrderStatus.PAYMENT_WAITING,
        OrderStatus.NOT_CONFIRMED,
        OrderStatus.PENDING,
    }
)


class DuplicateRules(BaseModel):
    """``rules.duplicates`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window_hours: int = Field(default=72, ge=1, le=24 * 90)
    channel: str = "sales"

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("channel",), self.channel)] if self.enabled else []


def duplicate_rules(school: School) -> DuplicateRules:
    return DuplicateRules.model_validate(school.block("rules.duplicates") or {})


@dataclass(frozen=True)
class Duplicate:
    keep: Order  # the earlier order
    drop: Order  # the later one: becomes «Ложный»


def person_of(order: Order) -> str | None:
    return order.customer.email or order.customer.phone


def find_duplicates(orders: list[Order], rules: DuplicateRules) -> list[Duplicate]:
    """Pairs to resolve, each later order once (against the earliest unpaid one before it).

    Every order of a person and product is looked at, paid ones too: a paid order in the
    group means nothing is touched (the person may be buying twice on purpose).
    """
    groups: dict[tuple[str, str], list[Order]] = {}
    for order in orders:
        person = person_of(order)
        if person is None or not order.product or order.created_at is None:
            continue
        groups.setdefault((person, order.product), []).append(order)
    window = timedelta(hours=rules.window_hours)
    found: list[Duplicate] = []
    for group in groups.values():
        group.sort(key=lambda o: (o.created_at, o.number))
        if any(o.status not in UNPAID and o.status != OrderStatus.FALSE for o in group):
            continue  # a paid (or cancelled) order among them: a person decides
        live = [o for o in group if o.status in UNPAID]
        if len(live) < 2:
            continue
        keep = live[0]
        for later in live[1:]:
            assert later.created_at is not None and keep.created_at is not None
            if later.created_at - keep.created_at <= window:
                found.append(Duplicate(keep=keep, drop=later))
    return found
