"""W7: the school's reconciliation settings, and the ledger and mirror as the engine reads them.

The school's ``rules.reconciliation`` block: the engine's rules (``reconciliation/rules.py``:
tolerance, windows, margin, grace) and, here, what the service does with the verdicts::

    rules:
      reconciliation:
        act_on: [matched, duplicate_manual]   # verdicts acted on without a person
        lookback_days: 45                     # payments and orders this recent are compared
        unpaid_orders: true                   # report orders marked paid with no money seen
        channel: finance_income               # the daily digest
        digest_at: "09:00"                    # school time; the first run after it posts it
        report: {spreadsheet: 1AbC..., tab: Сверка}   # optional: one row per finding per day

No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.clock import as_utc
from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.reconciliation import (
    OrderIn,
    PaymentIn,
    ReconcileRules,
    Verdict,
    VerdictKind,
)

PAID = (OrderStatus.PAYED,)  # marked paid in GetCourse: money is expected in the ledger
PERSON = "person"  # ``payments.match_rule`` of a match a person chose


class ReportSheet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spreadsheet: str = Field(min_length=10)
    tab: str = Field(default="Сверка", min_length=1)


class ReconciliationConfig(ReconcileRules):
    """``rules.reconciliation`` of a school: the engine's rules and the service's."""

    act_on: tuple[VerdictKind, ...] = (VerdictKind.MATCHED, VerdictKind.DUPLICATE_MANUAL)
    lookback_days: int = Field(default=45, ge=1, le=400)
    unpaid_orders: bool = True
    channel: str = "finance_income"
    digest_at: time = time(9, 0)
    report: ReportSheet | None = None


def reconciliation_config(school: School) -> ReconciliationConfig:
    return ReconciliationConfig.model_validate(school.block("rules.reconciliation") or {})


def payment_in(row: Any) -> PaymentIn | None:
    """A ledger row as the engine reads it; ``None`` when it has no time or amount to compare.

    A payment a person matched carries its order number as the reference, the strongest
    evidence, so the engine finds the same pair again."""
    paid_at = row["paid_at"] or row["created_at"]
    if paid_at is None or int(row["amount_minor"]) <= 0:
        return None
    reference = row["reference"]
    if row["match_rule"] == PERSON and row["order_number"]:
        reference = str(row["order_number"])
    return PaymentIn(
        payment_id=str(row["id"]),
        source=str(row["source"]),
        kind="manual" if row["kind"] == "manual" else "automatic",
        paid_at=as_utc(paid_at),  # SQLite gives the stored UTC time back without its zone
        amount_minor=int(row["amount_minor"]),
        currency=str(row["currency"]),
        payer_name=row["payer_name"],
        email=row["payer_email"],
        phone=row["payer_phone"],
        reference=reference,
    )


def order_in(order: Order, *, unpaid_orders: bool) -> OrderIn | None:
    """A mirrored order as the engine reads it; ``None`` without a cost or a creation time.

    The name is the customer's last and first name only (``Customer.full_name`` falls back to
    the email or phone, whose parts would become surnames: ``mail``, ``ru``); ``None`` without
    either."""
    if order.cost is None or order.created_at is None:
        return None
    try:
        amount = order.cost.minor
    except ValueError:
        return None
    customer = order.customer
    name = " ".join(part for part in (customer.last_name, customer.first_name) if part)
    return OrderIn(
        order_id=order.number,
        created_at=order.created_at,
        email=customer.email,
        phone=customer.phone,
        name=name or None,
        product=order.product,
        amount_minor=amount,
        currency=order.cost.currency,
        status=order.status.value,
        paid_manually=unpaid_orders and order.status in PAID,
    )


def subject(verdict: Verdict) -> str:
    """What a finding is about, stable across runs: its payments, else its order."""
    if verdict.payment_ids:
        return "p:" + ",".join(sorted(verdict.payment_ids, key=int))
    return "o:" + ",".join(sorted(verdict.order_ids))


def needs_nothing(verdict: Verdict, matched_to: Mapping[str, str | None]) -> bool:
    """A match the ledger already records (each payment to this one order): nothing to do
    and nothing to show."""
    return (
        verdict.kind == VerdictKind.MATCHED
        and len(verdict.order_ids) == 1
        and all(matched_to.get(p) == verdict.order_ids[0] for p in verdict.payment_ids)
    )


_NAMES = {
    VerdictKind.MATCHED: "сопоставлено",
    VerdictKind.DUPLICATE_MANUAL: "двойная оплата (ручной платёж снят)",
    VerdictKind.AMBIGUOUS: "неоднозначно",
    VerdictKind.UNMATCHED_PAYMENT: "платёж без заказа",
    VerdictKind.UNPAID_ORDER: "оплачен вручную, денег нет",
    VerdictKind.AMOUNT_MISMATCH: "сумма не совпадает",
    VerdictKind.OVERPAID: "переплата",
}


def kind_name(kind: str) -> str:
    try:
        return _NAMES[VerdictKind(kind)]
    except ValueError:
        return kind


def digest_lines(counts: Iterable[tuple[str, int]], open_count: int) -> list[str]:
    """The digest's lines: what was found by kind, and how many wait for a person."""
    lines = [f"{kind_name(kind)}: {n}" for kind, n in counts if n]
    lines.append(
        f"ждут решения: {open_count} (schoolsync reconcile queue)"
        if open_count
        else "ничего не ждёт решения"
    )
    return lines
