"""What the ``/v3`` methods do to the shop, called with ``lock`` held; each returns the object
YooKassa would answer with, or raises its ``ApiError``.

- ``POST /payments``: ``amount`` required; ``description`` at most 128 characters;
  ``metadata`` at most 16 string values, keys at most 32 and values at most 512 characters;
  ``confirmation.type`` ``redirect`` gets a ``confirmation_url``. A new payment is ``pending``.
- ``GET /payments``: newest first (``created_at``, then creation order); ``limit`` 1-100
  (default 10); filters ``created_at.gte|gt|lte|lt`` (ISO 8601) and ``status``; ``cursor`` is
  the previous page's ``next_cursor``, given with the same filters; ``next_cursor`` is absent on
  the last page.
- ``POST /refunds``: the payment must be ``succeeded``; the amount in its currency and at most
  what is left of it; ``description`` at most 250 characters. Refunds succeed at once and are
  notified (``refund.succeeded``); the payment gets ``refunded_amount``.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from schoolsync.sandbox.yookassa import money, objects
from schoolsync.sandbox.yookassa.errors import ApiError, invalid
from schoolsync.sandbox.yookassa.shop import Record, YooKassaSandbox, payment_now

STATUSES = ("pending", "waiting_for_capture", "succeeded", "canceled")
_FILTERS: dict[str, Callable[[datetime, datetime], bool]] = {
    "created_at.gte": operator.ge,
    "created_at.gt": operator.gt,
    "created_at.lte": operator.le,
    "created_at.lt": operator.lt,
}


def check_metadata(data: Any) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict) or len(data) > 16:
        raise invalid("Invalid metadata: an object of at most 16 keys", "metadata")
    for key, value in data.items():
        if len(key) > 32 or not isinstance(value, str) or len(value) > 512:
            raise invalid(
                "Invalid metadata: keys of at most 32 characters, string values of at most 512",
                "metadata",
            )
    return dict(data)


def _description(data: Any, limit: int) -> str | None:
    if data is None:
        return None
    if not isinstance(data, str) or len(data) > limit:
        raise invalid(f"Invalid description: a string of at most {limit} characters", "description")
    return data


def create_payment(sb: YooKassaSandbox, body: dict[str, Any]) -> dict[str, Any]:
    value, currency = money.parse_amount(body.get("amount"))
    description = _description(body.get("description"), 128)
    metadata = check_metadata(body.get("metadata"))
    capture = body.get("capture", False)
    if not isinstance(capture, bool):
        raise invalid("Invalid value of capture", "capture")
    payment_id = objects.new_id()
    created = objects.now()
    payment = objects.new_payment(
        payment_id=payment_id,
        value=value,
        currency=currency,
        created=created,
        shop_id=sb.config.shop_id,
        gateway_id=sb.config.gateway_id,
        test=sb.config.test,
        description=description,
        metadata=metadata,
    )
    confirmation = body.get("confirmation")
    if isinstance(confirmation, dict):
        if confirmation.get("type") != "redirect":
            raise invalid("Only confirmation.type redirect is supported here", "confirmation.type")
        payment["confirmation"] = {
            "type": "redirect",
            "confirmation_url": f"https://yoomoney.ru/checkout/payments/v2/contract?orderId={payment_id}",
        }
    method = body.get("payment_method_data")
    if isinstance(method, dict) and isinstance(method.get("type"), str):
        payment["payment_method"] = objects.payment_method(method["type"], payment_id)
    sb.add_payment(payment, created)
    return payment_now(sb.payments[payment_id])


def find_payment(sb: YooKassaSandbox, payment_id: str) -> Record:
    record = sb.payments.get(payment_id)
    if record is None:
        raise ApiError(
            404,
            "Incorrect payment_id. Payment doesn't exist or access denied",
            parameter="payment_id",
        )
    return record


def get_payment(sb: YooKassaSandbox, payment_id: str) -> dict[str, Any]:
    return payment_now(find_payment(sb, payment_id))


def _cursor(record: Record) -> str:
    raw = json.dumps({"c": objects.iso(record.created), "s": record.seq}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(text: str) -> tuple[datetime, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return objects.parse_time(str(data["c"])), int(data["s"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid("Invalid cursor", "cursor") from None


def list_payments(sb: YooKassaSandbox, params: Mapping[str, str]) -> dict[str, Any]:
    try:
        limit = int(params.get("limit", "10"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: an integer from 1 to 100", "limit")
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("Invalid status", "status")
    bounds = []
    for name, test in _FILTERS.items():
        if name in params:
            try:
                bounds.append((test, objects.parse_time(params[name])))
            except ValueError:
                raise invalid(f"Invalid {name}: ISO 8601 date and time expected", name) from None
    items = [
        record
        for record in sb.newest_first()
        if (status is None or record.body["status"] == status)
        and all(test(record.created, value) for test, value in bounds)
    ]
    if "cursor" in params:
        after = _after(params["cursor"])
        items = [r for r in items if (r.created, r.seq) < after]
    page = items[:limit]
    answer: dict[str, Any] = {"type": "list", "items": [payment_now(r) for r in page]}
    if len(items) > limit:
        answer["next_cursor"] = _cursor(page[-1])
    return answer


def create_refund(sb: YooKassaSandbox, body: dict[str, Any]) -> dict[str, Any]:
    payment_id = body.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id:
        raise invalid("Parameter payment_id is missing", "payment_id")
    value, currency = money.parse_amount(body.get("amount"))
    description = _description(body.get("description"), 250)
    record = sb.payments.get(payment_id)
    if record is None:
        raise invalid("Payment doesn't exist or access denied", "payment_id")
    payment = record.body
    if payment["status"] != "succeeded":
        raise invalid(f"Payment in status {payment['status']} can't be refunded", "payment_id")
    if currency != payment["amount"]["currency"]:
        raise invalid("Refund currency differs from the payment's", "amount.currency")
    refunded = (
        money.value_of(payment["refunded_amount"]) if "refunded_amount" in payment else Decimal(0)
    )
    left = money.value_of(payment["amount"]) - refunded
    if value > left:
        raise invalid("Refund amount exceeds what is left of the payment", "amount.value")
    refund = objects.new_refund(
        payment_id=payment_id,
        value=value,
        currency=currency,
        created=objects.now(),
        description=description,
    )
    sb.refunds[refund["id"]] = refund
    sb.counts["refunds_created"] += 1
    payment["refunded_amount"] = money.amount(refunded + value, currency)
    payment["refundable"] = left - value > 0
    sb.notify("refund.succeeded", refund)
    return dict(refund)


def get_refund(sb: YooKassaSandbox, refund_id: str) -> dict[str, Any]:
    refund = sb.refunds.get(refund_id)
    if refund is None:
        raise ApiError(
            404, "Incorrect refund_id. Refund doesn't exist or access denied", parameter="refund_id"
        )
    return dict(refund)


def me(sb: YooKassaSandbox) -> dict[str, Any]:
    return {
        "account_id": sb.config.shop_id,
        "test": sb.config.test,
        "status": "enabled",
        "fiscalization_enabled": False,
        "payment_methods": ["bank_card", "sbp", "yoo_money"],
    }
