"""``/_sandbox/*``: making payments (v2 captures, v1 sales) and refunds, which send webhook
events; reading events, the certificate, state, reset. No auth."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.paypal import resources
from schoolsync.sandbox.paypal.state import PayPalSandbox
from schoolsync.sandbox.paypal.webhook import deliver, transmission_headers


def _refuse(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = json.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _amount(value: Any) -> Decimal:
    amount = Decimal(str(value).strip())
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidOperation
    return amount


def _optional(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


async def _send(
    sb: PayPalSandbox,
    event: dict[str, Any],
    *,
    url: str | None,
    bad_signature: bool,
) -> dict[str, Any]:
    """Record ``event`` and deliver it to ``url`` (if any); the record."""
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = transmission_headers(sb, body, bad_signature=bad_signature)
    record: dict[str, Any] = {
        "id": event["id"],
        "event_type": event["event_type"],
        "body": body.decode(),
        "headers": headers,
        "deliveries": [],
        "delivered": False,
    }
    with sb.lock:
        sb.events.append(record)
        sb.counts["events"] += 1
    if url:
        await _deliver(sb, record, url, headers, bad_signature=bad_signature)
    return record


async def _deliver(
    sb: PayPalSandbox,
    record: dict[str, Any],
    url: str,
    headers: dict[str, str],
    *,
    bad_signature: bool,
) -> None:
    delivered, attempts = await deliver(
        sb, url, record["body"].encode(), headers, bad_signature=bad_signature
    )
    with sb.lock:
        record["deliveries"].append({"url": url, "delivered": delivered, "attempts": attempts})
        record["delivered"] = record["delivered"] or delivered
        sb.counts["deliveries"] += 1
        sb.counts["attempts"] += len(attempts)
        sb.counts["delivered" if delivered else "failed"] += 1


async def post_capture(sb: PayPalSandbox, request: Request) -> Response:
    """A buyer pays: ``{"amount", "currency"?, "custom_id"?, "invoice_id"?, "payer"?:
    {"given_name", "surname", "email"}, "webhook_url"?, "bad_signature"?}``.

    Makes a COMPLETED order and its capture, and sends ``PAYMENT.CAPTURE.COMPLETED`` to
    ``webhook_url`` (or the configured one). Answers the order, the capture and the event (its
    exact body and the headers of its first transmission).
    """
    try:
        body = await _body(request)
        amount = _amount(body.get("amount"))
    except (ValueError, InvalidOperation):
        return _refuse("amount (like 2500.00) is required; the body must be a JSON object")
    currency = str(body.get("currency") or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        return _refuse("currency must be a three-letter code")
    given = body.get("payer") or {}
    if not isinstance(given, dict):
        return _refuse("payer must be an object")
    custom_id, invoice_id = _optional(body.get("custom_id")), _optional(body.get("invoice_id"))
    order_id = resources.new_id()
    captured = resources.capture(
        amount=amount,
        currency=currency,
        fee=sb.fee(amount),
        order_id=order_id,
        custom_id=custom_id,
        invoice_id=invoice_id,
    )
    order = resources.order(
        order_id=order_id,
        amount=amount,
        currency=currency,
        payer=resources.payer(given),
        custom_id=custom_id,
        invoice_id=invoice_id,
        captured=captured,
    )
    with sb.lock:
        sb.orders[order_id] = order
        sb.captures[captured["id"]] = captured
        sb.counts["captures"] += 1
    event = resources.event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        captured,
        f"Payment completed for {captured['amount']['value']} {currency}",
    )
    record = await _send(
        sb,
        event,
        url=body.get("webhook_url") or sb.config.webhook_url,
        bad_signature=bool(body.get("bad_signature")),
    )
    return JSONResponse({"order": order, "capture": captured, "event": record})


async def post_refund(sb: PayPalSandbox, request: Request) -> Response:
    """``{"amount"?, "webhook_url"?}``: refund a capture (all of it by default) and send
    ``PAYMENT.CAPTURE.REFUNDED``."""
    capture_id = request.path_params["id"]
    with sb.lock:
        captured = sb.captures.get(capture_id)
    if captured is None:
        return _refuse("no such capture", 404)
    try:
        body = await _body(request)
        total = Decimal(captured["amount"]["value"])
        amount = _amount(body["amount"]) if body.get("amount") is not None else total
    except (ValueError, InvalidOperation):
        return _refuse("amount must be like 10.00")
    if amount > total:
        return _refuse("the refund is larger than the capture")
    currency = captured["amount"]["currency_code"]
    refund = resources.refund(capture_body=captured, amount=amount, currency=currency)
    with sb.lock:
        sb.refunds[refund["id"]] = refund
        captured["status"] = "REFUNDED" if amount == total else "PARTIALLY_REFUNDED"
        sb.counts["refunds"] += 1
    event = resources.event(
        "PAYMENT.CAPTURE.REFUNDED",
        "refund",
        refund,
        f"A {captured['amount']['value']} {currency} capture payment was refunded",
    )
    record = await _send(
        sb, event, url=body.get("webhook_url") or sb.config.webhook_url, bad_signature=False
    )
    return JSONResponse({"refund": refund, "event": record})


async def post_sale(sb: PayPalSandbox, request: Request) -> Response:
    """A buyer pays through the older v1 payments API: ``{"amount", "currency"?, "custom"?,
    "invoice_number"?, "webhook_url"?, "bad_signature"?}``.

    Makes a completed v1 sale and sends ``PAYMENT.SALE.COMPLETED``. Answers the sale and the
    event (its exact body and the headers of its first transmission).
    """
    try:
        body = await _body(request)
        amount = _amount(body.get("amount"))
    except (ValueError, InvalidOperation):
        return _refuse("amount (like 2500.00) is required; the body must be a JSON object")
    currency = str(body.get("currency") or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        return _refuse("currency must be a three-letter code")
    sold = resources.sale(
        amount=amount,
        currency=currency,
        fee=sb.fee(amount),
        custom=_optional(body.get("custom")),
        invoice_number=_optional(body.get("invoice_number")),
    )
    with sb.lock:
        sb.sales[sold["id"]] = sold
        sb.counts["sales"] += 1
    event = resources.event(
        "PAYMENT.SALE.COMPLETED",
        "sale",
        sold,
        f"Payment completed for {sold['amount']['total']} {currency}",
        resource_version="1.0",
    )
    record = await _send(
        sb,
        event,
        url=body.get("webhook_url") or sb.config.webhook_url,
        bad_signature=bool(body.get("bad_signature")),
    )
    return JSONResponse({"sale": sold, "event": record})


async def get_events(sb: PayPalSandbox, request: Request) -> Response:
    """Every event made, oldest first, with its exact body, the headers of its first
    transmission and its deliveries; ``?event_type=`` narrows."""
    wanted = request.query_params.get("event_type")
    with sb.lock:
        events = [dict(item) for item in sb.events]
    if wanted:
        events = [item for item in events if item["event_type"] == wanted]
    return JSONResponse({"events": events})


async def post_resend(sb: PayPalSandbox, request: Request) -> Response:
    """Deliver an event again as a new transmission (PayPal's "resend"); ``{"webhook_url"?}``."""
    record = sb.event(request.path_params["id"])
    if record is None:
        return _refuse("no such event", 404)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _refuse(str(exc))
    url = body.get("webhook_url") or sb.config.webhook_url
    if not url:
        return _refuse("no webhook_url", 409)
    headers = transmission_headers(sb, record["body"].encode())
    await _deliver(sb, record, str(url), headers, bad_signature=False)
    return JSONResponse({"event": record, "headers": headers})


async def get_cert_pem(sb: PayPalSandbox, request: Request) -> Response:
    """The certificate whose key signs every transmission (what ``PAYPAL-CERT-URL`` holds)."""
    return Response(sb.signing.pem, media_type="application/x-pem-file")


async def post_revoke_tokens(sb: PayPalSandbox, request: Request) -> Response:
    return JSONResponse({"revoked": sb.revoke_tokens()})


async def get_state(sb: PayPalSandbox, request: Request) -> Response:
    return JSONResponse(sb.state())


async def post_reset(sb: PayPalSandbox, request: Request) -> Response:
    sb.reset()
    return JSONResponse({"reset": True})
