"""W5: payment providers' notifications into the ledger.

A notification is never trusted for the money where the provider can be asked:

- YooKassa signs nothing: the payment or refund it names is re-fetched through the API (its
  status and amount are what counts).
- PayPal's signature covers only a CRC-32 of the body, so anyone holding one genuine delivery
  can write another body with the same CRC-32 (another capture id, another amount) and send it
  with the genuine headers: it verifies. So a PayPal event is only a hint: the capture, refund
  or v1 sale it names is re-fetched from PayPal, and recorded as PayPal has it (status, amount,
  fee, time, invoice and custom ids; the payer from the capture's order), never as the body
  says. An id PayPal does not know is a ``NotFoundError`` (visible, replayable) and nothing is
  recorded; a capture that never completed (PENDING, DECLINED), or a refund of a capture PayPal
  does not show as refunded, records nothing.
- Robokassa's notification is verified by its signature, which covers the amount and the
  invoice id, before it is stored (``connectors/robokassa/webhooks.py``).

Each payment becomes one ledger row (``services.payments.record``), settled by its own job;
a refund becomes a refund of its ledger payment.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.paypal.client import PayPalClient
from schoolsync.connectors.paypal.models import Amount, Capture, Sale
from schoolsync.connectors.paypal.models import Refund as PayPalRefund
from schoolsync.connectors.paypal.webhooks import (
    CAPTURE_COMPLETED,
    CAPTURE_REFUNDED,
    SALE_COMPLETED,
    event_resource,
)
from schoolsync.connectors.paypal.webhooks import parse_event as parse_paypal_event
from schoolsync.connectors.robokassa.webhooks import read_params
from schoolsync.connectors.yookassa.models import Payment as YooKassaPayment
from schoolsync.connectors.yookassa.webhooks import parse_notification
from schoolsync.core.clock import utcnow
from schoolsync.core.domain import Money, normalize_email, normalize_phone
from schoolsync.core.errors import ConfigError, MalformedInputError, NotFoundError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores.payments import NewPayment
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.payments import record

log = get_logger(__name__)
R = TypeVar("R")

_YOOKASSA_STATUS = {
    "succeeded": ledger.SUCCEEDED,
    "canceled": ledger.CANCELED,
    "pending": ledger.PENDING,
    "waiting_for_capture": ledger.PENDING,
}


def _row(ctx: JobContext, inbox_id: int) -> tuple[str, bytes, str]:
    """``(school, body, query)`` of a stored notification."""
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    return str(row["school"]), bytes(row["body"]), str(row["query"] or "")


def _done(ctx: JobContext, inbox_id: int) -> None:
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)


def process_yookassa_notification(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    """A YooKassa notification: the payment as YooKassa tells it now, into the ledger."""
    school, body, _query = _row(ctx, inbox_id)
    notification = parse_notification(body)
    setup = ctx.platforms.of(school).yookassa if ctx.platforms else None
    if setup is None:
        raise ConfigError(f"school {school!r} has no YooKassa account (accounts.yookassa)")
    if notification.kind == "refund":
        refund = setup.client.get_refund(notification.object.id)  # as YooKassa has it now
        if refund.status == "succeeded":
            _refund(ctx, school, "yookassa", refund.payment_id, refund.id, refund.amount.money)
        _done(ctx, inbox_id)
        return
    if notification.kind != "payment":
        log.info("yookassa notification noted", school=school, notice=notification.event)
        _done(ctx, inbox_id)
        return
    payment = setup.client.get_payment(notification.object.id)
    recorded = record(ctx, school, yookassa_payment(payment, inbox_id))
    log.info(
        "yookassa payment re-fetched",
        school=school,
        notice=notification.event,
        status=payment.status,
        payment=recorded.id,
    )
    _done(ctx, inbox_id)


def yookassa_payment(payment: YooKassaPayment, inbox_id: int | None = None) -> NewPayment:
    amount = payment.amount.money
    fee = None
    if payment.income_amount is not None and payment.income_amount.money.amount < amount.amount:
        fee = amount.model_copy(
            update={"amount": amount.amount - payment.income_amount.money.amount}
        )
    metadata = payment.metadata
    method = payment.payment_method
    return NewPayment(
        source="yookassa",
        external_id=payment.id,
        amount=amount,
        status=_YOOKASSA_STATUS.get(payment.status, ledger.PENDING),
        fee=fee,
        paid_at=payment.captured_at or (payment.created_at if payment.paid else None),
        payer_name=metadata.get("payer_name") or metadata.get("name"),
        payer_email=normalize_email(metadata.get("email")),
        payer_phone=normalize_phone(metadata.get("phone")),
        reference=metadata.get("order_id")
        or metadata.get("order_number")
        or metadata.get("orderNumber"),
        inbox_id=inbox_id,
        data={
            "method": method.type if method is not None else None,
            "card_last4": method.card.last4 if method is not None and method.card else None,
            "description": payment.description,
            "test": payment.test,
        },
    )


def process_robokassa_result(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    """A Robokassa ResultURL notification (its signature was checked before it was stored)."""
    school, body, query = _row(ctx, inbox_id)
    params = read_params(RawRequest(body=body, query=query))
    fields = {k.lower(): v.strip() for k, v in params.items()}
    if fields.get("istest") == "1":
        log.info("a Robokassa test payment: no money, not in the ledger", school=school)
        _done(ctx, inbox_id)
        return
    try:
        raw_amount = Decimal(fields["outsum"])
        inv_id = str(int(fields["invid"]))
        amount = raw_amount.quantize(Decimal("0.01"))  # "1500.000000" is 1500.00
    except (KeyError, ValueError, ArithmeticError):
        raise MalformedInputError("stored Robokassa notification lacks OutSum or InvId") from None
    if amount != raw_amount or not amount.is_finite() or amount <= 0:
        raise MalformedInputError("Robokassa OutSum is not a whole number of kopecks")
    shp = {k[4:]: v for k, v in fields.items() if k.startswith("shp_")}
    record(
        ctx,
        school,
        NewPayment(
            source="robokassa",
            external_id=inv_id,
            amount=Money(amount=amount),
            paid_at=utcnow(),
            payer_email=normalize_email(fields.get("email")),
            reference=shp.get("order") or inv_id,
            inbox_id=inbox_id,
            data={"shp": shp, "method": fields.get("paymentmethod")},
        ),
    )
    _done(ctx, inbox_id)


def process_paypal_event(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    """A PayPal webhook event: what it names, as PayPal tells it now, into the ledger.

    Raises:
        NotFoundError: PayPal has no such capture, refund or sale (a forged body, or one from
            another PayPal account); nothing is recorded and the inbox row stays unprocessed.
        MalformedInputError: the event names no valid id, or a refund of another capture.
        ConfigError: the school has no PayPal account.
    """
    school, body, _query = _row(ctx, inbox_id)
    event = parse_paypal_event(body)
    resource = event_resource(event)
    if resource is None:
        log.info("paypal event noted", school=school, event_type=event.event_type)
        _done(ctx, inbox_id)
        return
    client = ctx.platforms.of(school).paypal if ctx.platforms else None
    if client is None:
        raise ConfigError(f"school {school!r} has no PayPal account (accounts.paypal)")
    if isinstance(resource, Capture) and event.event_type == CAPTURE_COMPLETED:
        _paypal_capture(ctx, client, school, resource.id, inbox_id)
    elif isinstance(resource, Sale) and event.event_type == SALE_COMPLETED:
        _paypal_sale(ctx, client, school, resource.id, inbox_id)
    elif isinstance(resource, PayPalRefund) and event.event_type == CAPTURE_REFUNDED:
        _paypal_refund(ctx, client, school, resource)
    _done(ctx, inbox_id)


def _fetched(what: str, resource_id: str, fetch: Callable[[str], R]) -> R:
    """``fetch(resource_id)``; PayPal not knowing the id is a failure that names it."""
    try:
        return fetch(resource_id)
    except ValueError:  # not a PayPal id: never sent anywhere
        raise MalformedInputError(
            f"paypal event names a {what} id that is not a PayPal id", platform="paypal"
        ) from None
    except NotFoundError as exc:
        raise NotFoundError(
            f"PayPal has no {what} {resource_id}: the notification was not recorded "
            "(forged or from another account?)",
            platform=exc.platform,
            account=exc.account,
            request_id=exc.request_id,
            status=exc.status,
        ) from exc


def _money(amount: Amount) -> Money:
    return Money(amount=amount.value, currency=amount.currency_code)


def _paypal_capture(
    ctx: JobContext, client: PayPalClient, school: str, capture_id: str, inbox_id: int
) -> None:
    capture = _fetched("capture", capture_id, client.get_capture)
    # refunded since: the money did come in, and the refund's own event takes it back out
    if capture.status not in ("COMPLETED", "REFUNDED", "PARTIALLY_REFUNDED"):
        log.info(
            "paypal capture not recorded: not completed at PayPal",
            school=school,
            capture=capture.id,
            status=capture.status,
        )
        return
    payer = None
    if capture.order_id is not None:
        try:
            payer = client.get_order(capture.order_id).payer
        except (NotFoundError, ValueError):  # the money is the capture's: record it without
            log.warning("paypal order of a capture not found", school=school, capture=capture.id)
    record(
        ctx,
        school,
        NewPayment(
            source="paypal",
            external_id=capture.id,
            amount=_money(capture.amount),
            fee=_money(capture.fee) if capture.fee is not None else None,
            paid_at=capture.create_time,
            payer_name=payer.name.full if payer is not None and payer.name is not None else None,
            payer_email=normalize_email(payer.email_address) if payer is not None else None,
            reference=capture.invoice_id or capture.custom_id,
            inbox_id=inbox_id,
            data={"order_id": capture.order_id, "custom_id": capture.custom_id},
        ),
    )


def _paypal_sale(
    ctx: JobContext, client: PayPalClient, school: str, sale_id: str, inbox_id: int
) -> None:
    sale = _fetched("sale", sale_id, client.get_sale)
    if sale.state != "completed":
        log.info(
            "paypal sale not recorded: not completed at PayPal",
            school=school,
            sale=sale.id,
            status=sale.state,
        )
        return
    fee = sale.transaction_fee
    record(
        ctx,
        school,
        NewPayment(
            source="paypal",
            external_id=sale.id,
            amount=Money(amount=sale.amount.total, currency=sale.amount.currency),
            fee=Money(amount=fee.value, currency=fee.currency) if fee is not None else None,
            paid_at=sale.create_time,
            reference=sale.invoice_number or sale.custom,
            inbox_id=inbox_id,
            data={"parent_payment": sale.parent_payment},
        ),
    )


def _paypal_refund(
    ctx: JobContext, client: PayPalClient, school: str, notified: PayPalRefund
) -> None:
    if notified.capture_id is None:
        raise MalformedInputError("paypal refund names no capture (no 'up' link)")
    capture = _fetched("capture", notified.capture_id, client.get_capture)
    if capture.status not in ("REFUNDED", "PARTIALLY_REFUNDED"):
        log.info(
            "paypal refund not recorded: the capture is not refunded at PayPal",
            school=school,
            capture=capture.id,
            status=capture.status,
        )
        return
    refund = _fetched("refund", notified.id, client.get_refund)
    if refund.capture_id is not None and refund.capture_id != capture.id:
        raise MalformedInputError(
            f"paypal refund {refund.id} refunds capture {refund.capture_id}, "
            f"not {capture.id} as the notification says",
            platform="paypal",
        )
    if refund.status != "COMPLETED":
        log.info(
            "paypal refund not recorded: not completed at PayPal",
            school=school,
            refund=refund.id,
            status=refund.status,
        )
        return
    amount, captured = _money(refund.amount), _money(capture.amount)
    if amount.currency == captured.currency and amount.amount > captured.amount:
        amount = captured  # a refund never returns more than its capture took
    _refund(ctx, school, "paypal", capture.id, refund.id, amount)


def _refund(
    ctx: JobContext, school: str, source: str, payment_ref: str, refund_id: str, amount: Money
) -> None:
    """A provider's refund of a ledger payment: recorded once; a payment refunded in full is
    ``refunded`` (it no longer counts as money received)."""
    with ctx.db.write() as conn:
        payment = ledger.find(conn, school, source, payment_ref)
        if payment is None:
            raise NotFoundError(
                f"{source} refunded payment {payment_ref}, which is not in the ledger; "
                "replay its notification first"
            )
        new = ledger.record_refund(
            conn,
            school,
            payment_row=payment,
            external_id=refund_id,
            amount=amount,
            status="done",
            data={"origin": f"{source} notification"},
        )
    log.info("refund recorded", school=school, source=source, payment=payment["id"], new=new)
