"""PayPal REST wire formats we read: webhook events, v2 captures, refunds and orders, v1 sales,
the OAuth2 token and verify-webhook-signature answers, error bodies.

Lenient on input (``extra="ignore"``). Amounts are strings on the wire and ``Decimal`` here,
never float. Field names are PayPal's (developer.paypal.com/docs/api/payments/v2,
/orders/v2, /webhooks/v1). Personal fields (payer names and emails) are left out of ``repr``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Amount(_Wire):
    """v2 money: ``{"currency_code": "USD", "value": "2.51"}``."""

    currency_code: str
    value: Decimal


class Link(_Wire):
    href: str
    rel: str
    method: str | None = None


class PayerName(_Wire):
    given_name: str | None = Field(default=None, repr=False)
    surname: str | None = Field(default=None, repr=False)

    @property
    def full(self) -> str | None:
        parts = [part for part in (self.given_name, self.surname) if part]
        return " ".join(parts) or None


class Payer(_Wire):
    payer_id: str | None = None
    email_address: str | None = Field(default=None, repr=False)
    name: PayerName | None = None


class ReceivableBreakdown(_Wire):
    gross_amount: Amount | None = None
    paypal_fee: Amount | None = None
    net_amount: Amount | None = None


class RelatedIds(_Wire):
    order_id: str | None = None
    authorization_id: str | None = None


class SupplementaryData(_Wire):
    related_ids: RelatedIds | None = None


class Capture(_Wire):
    """A v2 capture (``/v2/payments/captures/{id}``, the resource of ``PAYMENT.CAPTURE.*``).

    ``status``: COMPLETED, PENDING, DECLINED, REFUNDED, PARTIALLY_REFUNDED, FAILED. ``payer``
    is not part of PayPal's capture; it is read when a sender includes it (the order has it).
    """

    id: str
    status: str
    amount: Amount
    final_capture: bool | None = None
    custom_id: str | None = None
    invoice_id: str | None = None
    seller_receivable_breakdown: ReceivableBreakdown | None = None
    supplementary_data: SupplementaryData | None = None
    payer: Payer | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    links: list[Link] = []

    @property
    def fee(self) -> Amount | None:
        breakdown = self.seller_receivable_breakdown
        return breakdown.paypal_fee if breakdown is not None else None

    @property
    def order_id(self) -> str | None:
        data = self.supplementary_data
        return data.related_ids.order_id if data is not None and data.related_ids else None


class Refund(_Wire):
    """A v2 refund, the resource of ``PAYMENT.CAPTURE.REFUNDED``; ``capture_id`` from its
    ``up`` link (``.../v2/payments/captures/{id}``)."""

    id: str
    status: str
    amount: Amount
    custom_id: str | None = None
    invoice_id: str | None = None
    note_to_payer: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    links: list[Link] = []

    @property
    def capture_id(self) -> str | None:
        for link in self.links:
            if link.rel == "up" and "/captures/" in link.href:
                return link.href.rstrip("/").rsplit("/", 1)[-1]
        return None


class SaleAmount(_Wire):
    """v1 money: ``{"total": "20.00", "currency": "USD"}``."""

    total: Decimal
    currency: str


class SaleFee(_Wire):
    value: Decimal
    currency: str


class Sale(_Wire):
    """A v1 sale, the resource of the older ``PAYMENT.SALE.COMPLETED``; ``state``: completed,
    partially_refunded, pending, refunded, denied."""

    id: str
    state: str
    amount: SaleAmount
    transaction_fee: SaleFee | None = None
    parent_payment: str | None = None
    custom: str | None = None
    invoice_number: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


class Payments(_Wire):
    captures: list[Capture] = []
    refunds: list[Refund] = []


class PurchaseUnit(_Wire):
    reference_id: str | None = None
    amount: Amount | None = None
    custom_id: str | None = None
    invoice_id: str | None = None
    description: str | None = Field(default=None, repr=False)
    payments: Payments | None = None


class Order(_Wire):
    """A v2 order (``/v2/checkout/orders/{id}``): the payer and what was bought."""

    id: str
    status: str
    intent: str | None = None
    payer: Payer | None = None
    purchase_units: list[PurchaseUnit] = []
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def captures(self) -> list[Capture]:
        return [c for unit in self.purchase_units if unit.payments for c in unit.payments.captures]


class WebhookEvent(_Wire):
    """The envelope of every webhook event; ``resource`` is read by event type."""

    id: str = Field(min_length=1, max_length=200)
    event_type: str
    create_time: datetime | None = None
    resource_type: str | None = None
    event_version: str | None = None
    resource_version: str | None = None
    summary: str | None = Field(default=None, repr=False)
    resource: dict[str, Any] = {}


class TokenResponse(_Wire):
    access_token: str
    token_type: str
    expires_in: int
    app_id: str | None = None
    scope: str | None = None


class OAuthErrorBody(_Wire):
    error: str
    error_description: str | None = None


class ErrorDetail(_Wire):
    issue: str | None = None
    field: str | None = None
    description: str | None = None


class ErrorBody(_Wire):
    name: str
    message: str | None = None
    debug_id: str | None = None
    details: list[ErrorDetail] = []


class VerifyResponse(_Wire):
    verification_status: str
