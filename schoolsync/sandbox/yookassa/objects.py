"""Ids, times and the shapes of YooKassa's objects (OpenAPI ``Payment``, ``Refund``, ``Me``).

Ids are 36 characters like YooKassa's (``22d6d597-000f-5000-9000-145f6df21d6f``: a time-based
first group, then fixed and random parts). Times are UTC ISO 8601 with milliseconds and ``Z``.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schoolsync.sandbox.yookassa import money

CARD = {
    "first6": "555555",
    "last4": "4444",
    "expiry_month": "07",
    "expiry_year": "2030",
    "card_type": "MasterCard",
    "issuer_country": "RU",
    "issuer_name": "Sberbank",
}
CAPTURE_WINDOW = timedelta(days=7)  # waiting_for_capture is canceled after this (bank cards)


def new_id() -> str:
    head = int(time.time()) & 0xFFFFFFFF
    return f"{head:08x}-000f-5000-{secrets.choice('89ab')}000-{secrets.token_hex(6)}"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset); ``ValueError`` otherwise or without a zone."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def payment_method(kind: str, payment_id: str) -> dict[str, Any]:
    method: dict[str, Any] = {"type": kind, "id": payment_id, "saved": False}
    if kind == "bank_card":
        method["card"] = dict(CARD)
        method["title"] = f"Bank card *{CARD['last4']}"
    return method


def new_payment(
    *,
    payment_id: str,
    value: Decimal,
    currency: str,
    created: datetime,
    shop_id: str,
    gateway_id: str,
    test: bool,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "id": payment_id,
        "status": "pending",
        "paid": False,
        "amount": money.amount(value, currency),
        "created_at": iso(created),
        "metadata": dict(metadata or {}),
        "recipient": {"account_id": shop_id, "gateway_id": gateway_id},
        "refundable": False,
        "test": test,
    }
    if description:
        payment["description"] = description
    return payment


def mark_waiting(payment: dict[str, Any], at: datetime) -> None:
    payment.update(status="waiting_for_capture", paid=True, expires_at=iso(at + CAPTURE_WINDOW))
    payment.setdefault("payment_method", payment_method("bank_card", payment["id"]))


def mark_succeeded(payment: dict[str, Any], at: datetime, fee_percent: Decimal) -> None:
    value = money.value_of(payment["amount"])
    fee = (value * fee_percent / 100).quantize(money.CENTS)
    payment.update(
        status="succeeded",
        paid=True,
        captured_at=iso(at),
        income_amount=money.amount(value - fee, payment["amount"]["currency"]),
        refundable=True,
    )
    payment.pop("expires_at", None)
    payment.pop("confirmation", None)
    payment.setdefault("payment_method", payment_method("bank_card", payment["id"]))


def mark_canceled(payment: dict[str, Any], party: str, reason: str) -> None:
    payment.update(
        status="canceled",
        paid=False,
        refundable=False,
        cancellation_details={"party": party, "reason": reason},
    )
    payment.pop("expires_at", None)
    payment.pop("confirmation", None)


def new_refund(
    *,
    payment_id: str,
    value: Decimal,
    currency: str,
    created: datetime,
    description: str | None,
) -> dict[str, Any]:
    refund: dict[str, Any] = {
        "id": new_id(),
        "payment_id": payment_id,
        "status": "succeeded",
        "created_at": iso(created),
        "amount": money.amount(value, currency),
    }
    if description:
        refund["description"] = description
    return refund
