"""``/_sandbox/*``: paying an invoice (which calls ResultURL), state and reset. No auth."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.robokassa.notify import deliver, result_fields
from schoolsync.sandbox.robokassa.shop import RobokassaSandbox


def _refuse(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


async def post_pay(sb: RobokassaSandbox, request: Request) -> Response:
    """A buyer pays: ``{"inv_id", "out_sum"?, "shp"?: {}, "is_test"?, "email"?,
    "payment_method"?, "result_url"?, "method"?, "bad_signature"?}``.

    ``out_sum``, ``shp``, ``is_test`` and ``email`` default to the invoice opened on the payment
    page with that ``InvId``. ResultURL (``result_url`` or the configured one) is called with
    the signed fields until it answers ``OK{InvId}``; ``bad_signature`` signs with a wrong
    password. Answers the fields sent, each attempt and whether it was delivered.
    """
    try:
        body = await _body(request)
    except ValueError as exc:
        return _refuse(f"bad body: {exc}")
    try:
        inv_id = int(str(body.get("inv_id", "")).strip())
    except ValueError:
        return _refuse("inv_id (a whole number) is required")
    with sb.lock:
        invoice = dict(sb.invoices.get(str(inv_id), {}))
    try:
        out_sum = Decimal(str(body.get("out_sum", invoice.get("out_sum", ""))).strip())
    except InvalidOperation:
        return _refuse("out_sum (an amount like 2500.00) is required")
    if not out_sum.is_finite() or out_sum <= 0:
        return _refuse("out_sum must be positive")
    shp = body.get("shp", invoice.get("shp", {}))
    if not isinstance(shp, dict):
        return _refuse("shp must be an object of name -> value")
    is_test = _truthy(body.get("is_test", invoice.get("is_test", False)))
    if sb.password2(is_test) is None:
        return _refuse("the shop has no test passwords", 409)
    fields = result_fields(
        sb,
        inv_id=inv_id,
        out_sum=out_sum,
        shp={str(k): str(v) for k, v in shp.items()},
        is_test=is_test,
        email=body.get("email", invoice.get("email")),
        payment_method=str(body.get("payment_method", "BankCard")),
        bad_signature=_truthy(body.get("bad_signature", False)),
    )
    url = body.get("result_url") or sb.config.result_url
    method = str(body.get("method") or sb.config.result_method)
    delivered, attempts = False, list[dict[str, Any]]()
    if url:
        delivered, attempts = await deliver(sb, str(url), method, fields, inv_id)
    payment = {
        "inv_id": inv_id,
        "out_sum": fields[0][1],
        "is_test": is_test,
        "fields": dict(fields),
        "result_url": url,
        "delivered": delivered,
        "attempts": attempts,
    }
    with sb.lock:
        sb.payments.append(payment)
        sb.counts["paid"] += 1
        sb.counts["attempts"] += len(attempts)
        if url:
            sb.counts["delivered" if delivered else "failed"] += 1
    return JSONResponse(payment)


async def get_state(sb: RobokassaSandbox, request: Request) -> Response:
    return JSONResponse(sb.state())


async def post_reset(sb: RobokassaSandbox, request: Request) -> Response:
    sb.reset()
    return JSONResponse({"reset": True})
