"""W5: payment providers' notifications into the ledger.

A notification is never trusted for the money: YooKassa's is re-fetched through the API (its
status and amount are what counts); Robokassa's and PayPal's are verified by their signatures
before they are stored (``connectors/*/webhooks.py``). Each becomes one ledger row
(``services.payments.record``), settled by its own job.
"""

from __future__ import annotations

from decimal import Decimal

from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.paypal.models import Capture, Sale
from schoolsync.connectors.paypal.models import Refund as PayPalRefund
from schoolsync.connectors.paypal.webhooks import event_resource
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
    """A PayPal webhook event (verified before it was stored): a completed capture or sale."""
    school, body, _query = _row(ctx, inbox_id)
    event = parse_paypal_event(body)
    resource = event_resource(event)
    if isinstance(resource, Capture) and event.event_type == "PAYMENT.CAPTURE.COMPLETED":
        payer = resource.payer
        payment = NewPayment(
            source="paypal",
            external_id=resource.id,
            amount=Money(amount=resource.amount.value, currency=resource.amount.currency_code),
            fee=(
                Money(amount=resource.fee.value, currency=resource.fee.currency_code)
                if resource.fee is not None
                else None
            ),
            paid_at=resource.create_time,
            payer_name=payer.name.full if payer is not None and payer.name is not None else None,
            payer_email=normalize_email(payer.email_address) if payer is not None else None,
            reference=resource.invoice_id or resource.custom_id,
            inbox_id=inbox_id,
            data={"order_id": resource.order_id, "custom_id": resource.custom_id},
        )
        record(ctx, school, payment)
    elif isinstance(resource, Sale) and event.event_type == "PAYMENT.SALE.COMPLETED":
        record(
            ctx,
            school,
            NewPayment(
                source="paypal",
                external_id=resource.id,
                amount=Money(amount=resource.amount.total, currency=resource.amount.currency),
                paid_at=resource.create_time,
                reference=resource.invoice_number or resource.custom,
                inbox_id=inbox_id,
                data={"parent_payment": resource.parent_payment},
            ),
        )
    elif isinstance(resource, PayPalRefund) and event.event_type == "PAYMENT.CAPTURE.REFUNDED":
        if resource.capture_id is None:
            raise MalformedInputError("paypal refund names no capture (no 'up' link)")
        amount = Money(amount=resource.amount.value, currency=resource.amount.currency_code)
        _refund(ctx, school, "paypal", resource.capture_id, resource.id, amount)
    else:
        log.info("paypal event noted", school=school, event_type=event.event_type)
    _done(ctx, inbox_id)


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
