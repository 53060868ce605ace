"""Orders, captures, refunds, v1 sales and webhook events shaped as PayPal sends them.

Shapes from the Orders v2, Payments v2 and (for sales) Payments v1 references and PayPal's
webhook event samples (developer.paypal.com/api/rest/webhooks/event-names): ids of 17 capitals
and digits, amounts as strings, times in UTC with a ``Z``; the capture carries
``supplementary_data.related_ids.order_id`` and ``seller_receivable_breakdown``; the refund
links ``up`` to its capture; a v1 sale has ``amount: {"total", "currency"}``, ``state`` and
``transaction_fee``; events are
``{"id": "WH-...", "event_version": "1.0", "create_time", "resource_type", "resource_version",
"event_type", "summary", "resource", "links"}``.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

API = "https://api.sandbox.paypal.com"
_ALNUM = string.ascii_uppercase + string.digits
_CENT = Decimal("0.01")


def new_id(length: int = 17) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": f"{value.quantize(_CENT, ROUND_HALF_UP):f}"}


def capture(
    *,
    amount: Decimal,
    currency: str,
    fee: Decimal,
    order_id: str,
    custom_id: str | None,
    invoice_id: str | None,
) -> dict[str, Any]:
    capture_id = new_id()
    when = now_text()
    body: dict[str, Any] = {
        "id": capture_id,
        "status": "COMPLETED",
        "amount": money(amount, currency),
        "final_capture": True,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "seller_receivable_breakdown": {
            "gross_amount": money(amount, currency),
            "paypal_fee": money(fee, currency),
            "net_amount": money(amount - fee, currency),
        },
        "supplementary_data": {"related_ids": {"order_id": order_id}},
        "create_time": when,
        "update_time": when,
        "links": [
            {"href": f"{API}/v2/payments/captures/{capture_id}", "rel": "self", "method": "GET"},
            {
                "href": f"{API}/v2/payments/captures/{capture_id}/refund",
                "rel": "refund",
                "method": "POST",
            },
            {"href": f"{API}/v2/checkout/orders/{order_id}", "rel": "up", "method": "GET"},
        ],
    }
    if custom_id:
        body["custom_id"] = custom_id
    if invoice_id:
        body["invoice_id"] = invoice_id
    return body


def order(
    *,
    order_id: str,
    amount: Decimal,
    currency: str,
    payer: dict[str, Any],
    custom_id: str | None,
    invoice_id: str | None,
    captured: dict[str, Any],
) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "reference_id": "default",
        "amount": money(amount, currency),
        "payments": {"captures": [captured]},
    }
    if custom_id:
        unit["custom_id"] = custom_id
    if invoice_id:
        unit["invoice_id"] = invoice_id
    return {
        "id": order_id,
        "intent": "CAPTURE",
        "status": "COMPLETED",
        "payer": payer,
        "purchase_units": [unit],
        "create_time": captured["create_time"],
        "update_time": captured["update_time"],
        "links": [{"href": f"{API}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"}],
    }


def payer(given: dict[str, Any]) -> dict[str, Any]:
    """An Orders v2 ``payer`` from ``{"given_name", "surname", "email", "payer_id"?}``."""
    body: dict[str, Any] = {"payer_id": str(given.get("payer_id") or new_id(13))}
    name = {key: str(given[key]) for key in ("given_name", "surname") if given.get(key) is not None}
    if name:
        body["name"] = name
    email = given.get("email") or given.get("email_address")
    if email:
        body["email_address"] = str(email)
    body["address"] = {"country_code": str(given.get("country_code") or "DE")}
    return body


def refund(*, capture_body: dict[str, Any], amount: Decimal, currency: str) -> dict[str, Any]:
    refund_id = new_id()
    when = now_text()
    body: dict[str, Any] = {
        "id": refund_id,
        "status": "COMPLETED",
        "amount": money(amount, currency),
        "seller_payable_breakdown": {
            "gross_amount": money(amount, currency),
            "paypal_fee": money(Decimal(0), currency),
            "net_amount": money(amount, currency),
            "total_refunded_amount": money(amount, currency),
        },
        "create_time": when,
        "update_time": when,
        "links": [
            {"href": f"{API}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
            {
                "href": f"{API}/v2/payments/captures/{capture_body['id']}",
                "rel": "up",
                "method": "GET",
            },
        ],
    }
    for key in ("custom_id", "invoice_id"):
        if capture_body.get(key):
            body[key] = capture_body[key]
    return body


def sale(
    *,
    amount: Decimal,
    currency: str,
    fee: Decimal,
    custom: str | None,
    invoice_number: str | None,
) -> dict[str, Any]:
    """A completed v1 sale (``GET /v1/payments/sale/{id}``, the resource of
    ``PAYMENT.SALE.COMPLETED``): ``amount`` is ``{"total", "currency"}``, the fee
    ``transaction_fee``, the payment it belongs to ``parent_payment`` (``PAY-...``)."""
    sale_id = new_id()
    parent = f"PAY-{new_id(24)}"
    when = now_text()
    body: dict[str, Any] = {
        "id": sale_id,
        "create_time": when,
        "update_time": when,
        "amount": {"total": f"{amount.quantize(_CENT, ROUND_HALF_UP):f}", "currency": currency},
        "payment_mode": "INSTANT_TRANSFER",
        "state": "completed",
        "protection_eligibility": "ELIGIBLE",
        "protection_eligibility_type": "ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE",
        "parent_payment": parent,
        "transaction_fee": {
            "value": f"{fee.quantize(_CENT, ROUND_HALF_UP):f}",
            "currency": currency,
        },
        "links": [
            {"href": f"{API}/v1/payments/sale/{sale_id}", "rel": "self", "method": "GET"},
            {"href": f"{API}/v1/payments/sale/{sale_id}/refund", "rel": "refund", "method": "POST"},
            {
                "href": f"{API}/v1/payments/payment/{parent}",
                "rel": "parent_payment",
                "method": "GET",
            },
        ],
    }
    if custom:
        body["custom"] = custom
    if invoice_number:
        body["invoice_number"] = invoice_number
    return body


def event(
    event_type: str,
    resource_type: str,
    resource: dict[str, Any],
    summary: str,
    *,
    resource_version: str = "2.0",
) -> dict[str, Any]:
    event_id = f"WH-{new_id()}-{new_id()}"
    return {
        "id": event_id,
        "event_version": "1.0",
        "create_time": now_text(),
        "resource_type": resource_type,
        "resource_version": resource_version,
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
        "links": [
            {
                "href": f"{API}/v1/notifications/webhooks-events/{event_id}",
                "rel": "self",
                "method": "GET",
            },
            {
                "href": f"{API}/v1/notifications/webhooks-events/{event_id}/resend",
                "rel": "resend",
                "method": "POST",
            },
        ],
    }
