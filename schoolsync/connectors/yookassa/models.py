"""YooKassa API v3 wire formats we read: Payment, Refund, lists, errors, notifications.

Field names are YooKassa's (OpenAPI spec at https://yookassa.ru/developers/using-api/openapi-specification).
Lenient on input (``extra="ignore"``, most fields optional): an unknown payment status or method
is kept as text and judged by the mapping, never a reason to drop a page.

Money is exact: ``amount.value`` is a string on the wire (``"2500.00"``) and becomes a
``Decimal`` as written. A JSON number (YooKassa's own SDK tests use ``250.0``) is read from its
shortest decimal form, never through binary float arithmetic. Times are ISO 8601 in UTC
(``2018-07-10T14:27:54.691Z``) and come out timezone-aware.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.core.domain import Money

PAYMENT_STATUSES: Final = frozenset({"pending", "waiting_for_capture", "succeeded", "canceled"})
FINAL_PAYMENT_STATUSES: Final = frozenset({"succeeded", "canceled"})
REFUND_STATUSES: Final = frozenset({"pending", "succeeded", "canceled"})
# documented events; others (deal.closed, payout.*, payment_method.active) parse as EventObject
PAYMENT_EVENTS: Final = frozenset(
    {"payment.waiting_for_capture", "payment.succeeded", "payment.canceled"}
)
REFUND_EVENTS: Final = frozenset({"refund.succeeded"})

_DECIMAL = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def exact_decimal(value: Any) -> Any:
    """``"2500.00"`` / ``2500`` / ``250.0`` -> ``Decimal`` exactly as written; else unchanged
    (and refused by the field)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        return Decimal(value.strip())
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        try:
            return Decimal(repr(value))  # the shortest form that reads back as this float
        except InvalidOperation:
            return value
    return value


class Amount(_Wire):
    """``{"value": "2500.00", "currency": "RUB"}``."""

    value: Decimal = Field(allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("value", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        return exact_decimal(value)

    @property
    def money(self) -> Money:
        return Money(amount=self.value, currency=self.currency)


class Card(_Wire):
    last4: str | None = None
    card_type: str | None = None  # MasterCard, Visa, Mir, ...
    issuer_country: str | None = None
    issuer_name: str | None = None


class PaymentMethod(_Wire):
    type: str  # bank_card, sbp, yoo_money, sberbank, tinkoff_bank, ...
    id: str | None = None
    saved: bool | None = None
    title: str | None = None  # "Bank card *4444"
    card: Card | None = None


class Recipient(_Wire):
    account_id: str | None = None  # the shopId
    gateway_id: str | None = None


class CancellationDetails(_Wire):
    party: str | None = None  # yoo_money | payment_network | merchant
    reason: str | None = None  # general_decline, expired_on_confirmation, ...


class _Object(_Wire):
    @field_validator("metadata", mode="before", check_fields=False)
    @classmethod
    def _metadata(cls, value: Any) -> Any:
        """YooKassa returns strings; a CMS that stored a number gets it back as text."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return {
                str(k): v if isinstance(v, str) else str(v)
                for k, v in value.items()
                if v is not None
            }
        return value


class Payment(_Object):
    """A payment as YooKassa knows it now (``GET /payments/{id}``) or as of a notification."""

    id: str = Field(min_length=1, max_length=64)
    status: str  # see PAYMENT_STATUSES; kept as text, judged by the mapping
    paid: bool = False
    amount: Amount
    income_amount: Amount | None = None  # amount less YooKassa's fee
    created_at: datetime
    captured_at: datetime | None = None
    expires_at: datetime | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    payment_method: PaymentMethod | None = None
    refunded_amount: Amount | None = None
    refundable: bool = False
    test: bool = False
    recipient: Recipient | None = None
    cancellation_details: CancellationDetails | None = None
    merchant_customer_id: str | None = None

    @property
    def shop_id(self) -> str | None:
        return self.recipient.account_id if self.recipient is not None else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_PAYMENT_STATUSES


class Refund(_Object):
    id: str = Field(min_length=1, max_length=64)
    payment_id: str = Field(min_length=1, max_length=64)
    status: str  # see REFUND_STATUSES
    amount: Amount
    created_at: datetime
    description: str | None = None
    receipt_registration: str | None = None
    cancellation_details: CancellationDetails | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class EventObject(_Wire):
    """The object of an event we do not type (deals, payouts, payment methods)."""

    id: str = Field(min_length=1, max_length=64)
    status: str | None = None


class PaymentList(_Wire):
    """``GET /payments``: newest first; ``next_cursor`` is absent on the last page."""

    type: Literal["list"] = "list"
    items: list[Payment]
    next_cursor: str | None = None


class Me(_Wire):
    """``GET /me``: the shop behind the credentials."""

    account_id: str
    status: str | None = None  # enabled | disabled
    test: bool = False


class ApiErrorBody(_Wire):
    """``{"type": "error", "id", "code", "description", "parameter", "retry_after"}``; also the
    body of a 202 (``{"type": "processing", "description", "retry_after"}``, per the PHP SDK)."""

    type: str | None = None
    id: str | None = None  # for YooKassa's support
    code: str | None = None  # invalid_request, invalid_credentials, not_found, ...
    description: str | None = None
    parameter: str | None = None
    retry_after: float | None = None  # milliseconds


class Notification(_Wire):
    """``{"type": "notification", "event": "payment.succeeded", "object": {...}}``.

    Build it with ``webhooks.parse_notification``, which types ``object`` by the event: a
    ``Payment`` for ``payment.*``, a ``Refund`` for ``refund.*``, an ``EventObject`` otherwise.
    """

    type: Literal["notification"]
    event: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    object: Payment | Refund | EventObject = Field(union_mode="left_to_right")

    @property
    def kind(self) -> str:
        """``payment``, ``refund``, ``deal``, ...: the part of ``event`` before the dot."""
        return self.event.partition(".")[0]
