"""``/_sandbox/*``: what tests and the demo use to read, feed and disturb the shop.

No auth, no limit, not counted; the secret key is never shown.

- ``POST /_sandbox/payments``: a payment as if a customer had started (or finished) paying:
  ``{"amount": "2500.00" | {"value", "currency"}, "currency"?, "status"?, "description"?,
  "metadata"?, "created_at"?, "payment_method"?, "notify"?}``; any status; a payment created
  as ``waiting_for_capture``, ``succeeded`` or ``canceled`` is notified unless ``notify`` is
  false.
- ``POST /_sandbox/payments/{id}/succeed|wait|cancel``: move a payment (``cancel`` takes
  ``{"party", "reason"}``) and notify ``payment.<status>``.
- ``POST /_sandbox/payments/{id}/notify``: notify the payment's current status again (a
  redelivery).
- ``POST /_sandbox/webhook {"url": ... | null}``: where notifications go.
- ``GET /_sandbox/payments``, ``/_sandbox/refunds``, ``/_sandbox/notifications``,
  ``/_sandbox/state``; ``POST|DELETE /_sandbox/faults``; ``POST /_sandbox/limits
  {"rate_per_s"}``; ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.yookassa import money, objects
from schoolsync.sandbox.yookassa.errors import ApiError
from schoolsync.sandbox.yookassa.faults import FaultRule
from schoolsync.sandbox.yookassa.payments import check_metadata
from schoolsync.sandbox.yookassa.shop import YooKassaSandbox, payment_now

Status = Literal["pending", "waiting_for_capture", "succeeded", "canceled"]
_EVENTS = {
    "waiting_for_capture": "payment.waiting_for_capture",
    "succeeded": "payment.succeeded",
    "canceled": "payment.canceled",
}


class NewPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str | dict[str, str]
    currency: str = "RUB"
    status: Status = "pending"
    description: str | None = Field(None, max_length=128)
    metadata: dict[str, str] | None = None
    created_at: str | None = None
    payment_method: str = "bank_card"
    party: str = "yoo_money"
    reason: str = "expired_on_confirmation"
    notify: bool = True


class Cancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party: str | None = None
    reason: str | None = None
    notify: bool = True


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, pattern=r"^https?://")


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_per_s: int = Field(ge=1, le=100_000)


def _refuse(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def post_payment(sb: YooKassaSandbox, request: Request) -> Response:
    try:
        spec = NewPayment.model_validate(await _body(request))
        data = (
            spec.amount
            if isinstance(spec.amount, dict)
            else {"value": spec.amount, "currency": spec.currency}
        )
        value, currency = money.parse_amount(data)
        metadata = check_metadata(spec.metadata)
        created = objects.parse_time(spec.created_at) if spec.created_at else objects.now()
    except ApiError as error:
        return _refuse(f"bad payment: {error.description}")
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad payment: {exc}")
    with sb.lock:
        payment_id = objects.new_id()
        payment = objects.new_payment(
            payment_id=payment_id,
            value=value,
            currency=currency,
            created=created,
            shop_id=sb.config.shop_id,
            gateway_id=sb.config.gateway_id,
            test=sb.config.test,
            description=spec.description,
            metadata=metadata,
        )
        payment["payment_method"] = objects.payment_method(spec.payment_method, payment_id)
        if spec.status == "waiting_for_capture":
            objects.mark_waiting(payment, created)
        elif spec.status == "succeeded":
            objects.mark_succeeded(payment, created, Decimal(sb.config.fee_percent))
        elif spec.status == "canceled":
            objects.mark_canceled(payment, spec.party, spec.reason)
        record = sb.add_payment(payment, created)
        if spec.notify and spec.status in _EVENTS:
            sb.notify(_EVENTS[spec.status], payment)
        return JSONResponse(payment_now(record))


async def post_move(sb: YooKassaSandbox, request: Request) -> Response:
    """``succeed`` (pending or waiting_for_capture), ``wait`` (pending), ``cancel`` (either)."""
    action = str(request.path_params["action"])
    try:
        spec = Cancel.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad move: {exc}")
    with sb.lock:
        record = sb.payments.get(str(request.path_params["id"]))
        if record is None:
            return _refuse("unknown payment", 404)
        payment = record.body
        status = payment["status"]
        at = objects.now()
        if action == "succeed" and status in ("pending", "waiting_for_capture"):
            objects.mark_succeeded(payment, at, Decimal(sb.config.fee_percent))
        elif action == "wait" and status == "pending":
            objects.mark_waiting(payment, at)
        elif action == "cancel" and status in ("pending", "waiting_for_capture"):
            default = (
                ("merchant", "canceled_by_merchant")
                if status != "pending"
                else ("yoo_money", "expired_on_confirmation")
            )
            objects.mark_canceled(payment, spec.party or default[0], spec.reason or default[1])
        elif action in ("succeed", "wait", "cancel"):
            return _refuse(f"a {status} payment cannot {action}", 409)
        else:
            return _refuse("unknown action: succeed, wait or cancel", 404)
        if spec.notify:
            sb.notify(_EVENTS[payment["status"]], payment)
        return JSONResponse(payment_now(record))


async def post_notify(sb: YooKassaSandbox, request: Request) -> Response:
    with sb.lock:
        record = sb.payments.get(str(request.path_params["id"]))
        if record is None:
            return _refuse("unknown payment", 404)
        event = _EVENTS.get(record.body["status"])
        if event is None:
            return _refuse("a pending payment has nothing to notify", 409)
        if not sb.webhook_url:
            return _refuse("no webhook URL is set", 409)
        sb.notify(event, record.body)
        return JSONResponse({"event": event, "object_id": record.body["id"]})


async def get_payments(sb: YooKassaSandbox, request: Request) -> Response:
    with sb.lock:
        return JSONResponse({"payments": [payment_now(r) for r in sb.newest_first()]})


async def get_refunds(sb: YooKassaSandbox, request: Request) -> Response:
    with sb.lock:
        return JSONResponse({"refunds": [dict(r) for r in sb.refunds.values()]})


async def get_notifications(sb: YooKassaSandbox, request: Request) -> Response:
    return JSONResponse({"notifications": sb.notifier.log()})


async def post_webhook(sb: YooKassaSandbox, request: Request) -> Response:
    try:
        spec = Webhook.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad webhook: {exc}")
    with sb.lock:
        sb.webhook_url = spec.url
    return JSONResponse({"webhook_set": spec.url is not None})


async def get_state(sb: YooKassaSandbox, request: Request) -> Response:
    return JSONResponse(sb.state())


async def post_faults(sb: YooKassaSandbox, request: Request) -> Response:
    try:
        rule = FaultRule.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad fault settings: {exc}")
    sb.faults.set(rule)
    return JSONResponse({"faults": sb.faults.rules()})


async def delete_faults(sb: YooKassaSandbox, request: Request) -> Response:
    sb.faults.clear()
    return JSONResponse({"faults": []})


async def post_limits(sb: YooKassaSandbox, request: Request) -> Response:
    try:
        limits = Limits.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad limits: {exc}")
    sb.limit.configure(limits.rate_per_s)
    return JSONResponse({"rate_per_s": limits.rate_per_s})


async def post_reset(sb: YooKassaSandbox, request: Request) -> Response:
    sb.reset()
    return JSONResponse({"reset": True})
