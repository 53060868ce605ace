"""One line for people on why a verdict is what it is: evidence, amount, time.

No personal data: emails, phones and names are never quoted (the line goes to reports and
channels), only which of them agree, the amounts and the ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from schoolsync.core.domain import Money

HOUR = 3600.0
DAY = 24 * HOUR


def money(minor: int, currency: str) -> str:
    return Money.from_minor(minor, currency).display()


def delay(seconds: float) -> str:
    """``paid 3 h after the order``, ``paid 25 min before the order``."""
    side = "after" if seconds >= 0 else "before"
    gap = abs(seconds)
    if gap < 60:
        return "paid within a minute of the order"
    if gap < HOUR:
        amount = f"{gap / 60:.0f} min"
    elif gap < 2 * DAY:
        amount = f"{gap / HOUR:.0f} h"
    else:
        amount = f"{gap / DAY:.0f} days"
    return f"paid {amount} {side} the order"


def amount(paid: int, cost: int, currency: str) -> str:
    """How the payment's amount relates to the order's cost, when it fits."""
    if paid == cost:
        return "amount"
    if paid < cost:
        return f"amount less a {(cost - paid) * 100 / cost:.1f} % fee"
    return f"amount {money(paid - cost, currency)} over the cost"


def evidence_and_amount(says: str, paid: int, cost: int, currency: str) -> str:
    """``same email and amount``, ``order number in the payment, amount less a 3.4 % fee``."""
    part = amount(paid, cost, currency)
    if part == "amount":
        return f"{says} and amount" if says.startswith("same ") else f"{says}, same amount"
    return f"{says}, {part}"


def mismatch(says: str, paid: int, cost: int, currency: str, cost_currency: str) -> str:
    if currency != cost_currency:
        return f"{says}, but paid in {currency} for an order in {cost_currency}"
    share = paid * 100 / cost if cost else 0.0
    return (
        f"{says}, but paid {money(paid, currency)} for an order of {money(cost, currency)} "
        f"({share:.0f} % of it)"
    )


def ids(values: Sequence[str]) -> str:
    return ", ".join(values)
