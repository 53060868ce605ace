"""Domain types shared by every workflow: what an order, a customer and money are to us.

Platform wire formats (``connectors``) translate into these in ``mappings``; the stores keep them
as JSON. Money is ``Decimal`` with a currency, never float; times are timezone-aware.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator


class OrderStatus(StrEnum):
    """GetCourse deal statuses (our order statuses), with the names managers see."""

    NEW = "new"
    IN_WORK = "in_work"
    PAYMENT_WAITING = "payment_waiting"
    PART_PAYED = "part_payed"
    PAYED = "payed"
    CANCELLED = "cancelled"
    FALSE = "false"
    PENDING = "pending"
    NOT_CONFIRMED = "not_confirmed"
    WAITING_FOR_RETURN = "waiting_for_return"

    @property
    def russian(self) -> str:
        return _RUSSIAN[self]


_RUSSIAN = {
    OrderStatus.NEW: "Новый",
    OrderStatus.IN_WORK: "В работе",
    OrderStatus.PAYMENT_WAITING: "Ожидаем оплаты",
    OrderStatus.PART_PAYED: "Частично оплачен",
    OrderStatus.PAYED: "Завершен",
    OrderStatus.CANCELLED: "Отменен",
    OrderStatus.FALSE: "Ложный",
    OrderStatus.PENDING: "Отложен",
    OrderStatus.NOT_CONFIRMED: "Не подтвержден",
    OrderStatus.WAITING_FOR_RETURN: "Ожидаем возврата",
}


_NO_MINOR_UNITS = frozenset({"JPY", "KRW", "VND", "CLP", "ISK"})


class Money(BaseModel):
    """An amount in a currency; stored as whole minor units (kopecks, cents), never a float."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str = "RUB"

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    @property
    def exponent(self) -> int:
        return 0 if self.currency in _NO_MINOR_UNITS else 2

    @property
    def minor(self) -> int:
        """Whole minor units. Raises ``ValueError`` for a fraction of a kopeck."""
        scaled = self.amount.scaleb(self.exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self} has a fraction of the currency's smallest unit")
        return int(scaled)

    @classmethod
    def from_minor(cls, minor: int, currency: str = "RUB") -> Money:
        exponent = 0 if currency in _NO_MINOR_UNITS else 2
        return cls(amount=Decimal(minor).scaleb(-exponent), currency=currency)

    def display(self) -> str:
        """For people: ``2 500 ₽``, ``1 500,50 ₽``, ``30 USD``."""
        whole = self.amount.quantize(Decimal(1)) == self.amount
        text = f"{self.amount:,.0f}" if whole else f"{self.amount:,.2f}"
        text = text.replace(",", "\u00a0").replace(".", ",")
        return f"{text} ₽" if self.currency == "RUB" else f"{text} {self.currency}"


def normalize_phone(raw: str | None, region: str = "RU") -> str | None:
    """E.164 (``+79231234567``) from what people type (``8 923 123-45-67``, ``+7 (923)...``,
    ``923...``), or None when it is not a plausible phone number."""
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if region == "RU" and not text.startswith("+"):
        if len(digits) == 11 and digits[0] in "78":
            text = "+7" + digits[1:]
        elif len(digits) == 10 and digits[0] == "9":
            text = "+7" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str | None) -> str | None:
    if not raw or "@" not in raw:
        return None
    return raw.strip().lower()


class Customer(BaseModel):
    """The person behind an order (a parent or a student)."""

    email: str | None = None
    phone: str | None = None  # E.164
    first_name: str | None = None
    last_name: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalize_phone(value)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name) if p) or (
            self.email or self.phone or ""
        )


class Order(BaseModel):
    """An order on the course platform, as every workflow sees it."""

    platform: str  # "getcourse"
    account: str
    number: str
    external_id: str | None = None
    status: OrderStatus
    product: str | None = None
    cost: Money | None = None
    payed: Money | None = None
    customer: Customer = Customer()
    manager_email: str | None = None
    payment_link: str | None = None
    created_at: datetime | None = None
