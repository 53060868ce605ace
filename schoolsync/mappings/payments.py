"""W5/W6: what a payment pays, and what follows, as config and pure rules. No I/O.

The school's ``rules.payments`` block (every key optional)::

    rules:
      payments:
        channel: finance_income            # one line per incoming payment
        getcourse_unseen: [paypal, card_transfer, bank_transfer]  # GetCourse must be told
        getcourse_payment_types: {card_transfer: CARD, bank_transfer: BILL, paypal: PAYPAL}
        amount_tolerance: 0                # roubles a payment may differ from the order's cost
        match_window_days: 60              # open orders looked at for a payment without a number

Only the direct cases are decided here: the order number the source or the person gave, or the
one open order with the same email or phone and the same amount. Anything else stays unmatched
for the reconciliation engine (W7), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.config import School
from schoolsync.core.domain import Money, Order, OrderStatus

SOURCE_LABELS = {
    "yookassa": "YooKassa",
    "robokassa": "Robokassa",
    "paypal": "PayPal",
    "card_transfer": "перевод на карту",
    "bank_transfer": "по счёту",
    "getcourse": "GetCourse",
}
OPEN_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.IN_WORK,
        OrderStatus.PAYMENT_WAITING,
        OrderStatus.PART_PAYED,
        OrderStatus.PENDING,
        OrderStatus.NOT_CONFIRMED,
    }
)


class PaymentRules(BaseModel):
    """``rules.payments`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = "finance_income"
    getcourse_unseen: list[str] = ["paypal", "card_transfer", "bank_transfer"]
    getcourse_payment_types: dict[str, str] = {
        "card_transfer": "CARD",
        "bank_transfer": "BILL",
        "paypal": "PAYPAL",
    }
    amount_tolerance: Decimal = Field(default=Decimal(0), ge=0)
    match_window_days: int = Field(default=60, ge=1, le=3650)

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("channel",), self.channel)]


def payment_rules(school: School) -> PaymentRules:
    return PaymentRules.model_validate(school.block("rules.payments") or {})


@dataclass(frozen=True)
class PaymentFacts:
    amount: Money
    reference: str | None
    email: str | None
    phone: str | None
    paid_at: datetime | None


@dataclass(frozen=True)
class Match:
    order_number: str
    rule: str  # reference | contact_amount
    note: str  # for people, in Russian
    flagged: bool  # the amount differs from the order's cost


def _same_amount(payment: Money, cost: Money | None, tolerance: Decimal) -> bool:
    return (
        cost is not None
        and cost.currency == payment.currency
        and abs(cost.amount - payment.amount) <= tolerance
    )


def direct_match(
    payment: PaymentFacts,
    by_reference: Order | None,
    open_orders: list[Order],
    rules: PaymentRules,
) -> Match | None:
    """The order ``payment`` pays, when it is certain; ``None`` leaves it to reconciliation.

    ``by_reference`` is the order whose number the payment carries (if any); ``open_orders``
    are the school's unpaid orders to consider.
    """
    if by_reference is not None:
        same = _same_amount(payment.amount, by_reference.cost, rules.amount_tolerance)
        note = f"номер заказа {by_reference.number} указан в платеже"
        if not same:
            cost = by_reference.cost.display() if by_reference.cost else "не указана"
            note += f"; сумма {payment.amount.display()} не совпадает со стоимостью заказа ({cost})"
        return Match(by_reference.number, "reference", note, flagged=not same)
    for kind, value in (("email", payment.email), ("телефон", payment.phone)):
        if not value:
            continue
        found = [
            order
            for order in open_orders
            if order.status in OPEN_STATUSES
            and value in (order.customer.email, order.customer.phone)
            and _same_amount(payment.amount, order.cost, rules.amount_tolerance)
        ]
        if len(found) == 1:
            return Match(found[0].number, "contact_amount", f"тот же {kind} и сумма", flagged=False)
        if len(found) > 1:
            return None  # two orders fit: a person (or W7) decides
    return None


def finance_line(
    amount: Money, payer: str | None, source: str, *, order: str | None, flag: str | None
) -> str:
    """The line for the finance group, as managers write it: ``2500 Демин Саша · YooKassa``."""
    whole = amount.amount == amount.amount.to_integral_value()
    number = f"{amount.amount:.0f}" if whole else f"{amount.amount:.2f}".replace(".", ",")
    if amount.currency != "RUB":
        number += f" {amount.currency}"
    parts = [f"{number} {payer or 'плательщик не указан'}", SOURCE_LABELS.get(source, source)]
    if order:
        parts.append(f"заказ {order}")
    line = " · ".join(parts)
    return f"{line} ⚠️ {flag}" if flag else line
