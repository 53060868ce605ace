"""``MonetaryAmount``: ``{"value": "2500.00", "currency": "RUB"}``. ``value`` is a string with a
dot and at most two decimals, no thousands separator; ``currency`` one of YooKassa's list
(OpenAPI ``CurrencyCode``). A JSON number is refused: the spec types ``value`` as a string, and
a client that sends a float has already lost exactness."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from schoolsync.sandbox.yookassa.errors import invalid

CURRENCIES = frozenset(
    {"RUB", "EUR", "USD", "KZT", "BYN", "UAH", "UZS", "TRY", "INR", "MDL", "AZN", "AMD"}
)
_VALUE = re.compile(r"^[0-9]{1,15}(?:\.[0-9]{1,2})?$")
CENTS = Decimal("0.01")


def text(value: Decimal) -> str:
    return format(value.quantize(CENTS), "f")


def amount(value: Decimal, currency: str) -> dict[str, str]:
    return {"value": text(value), "currency": currency}


def parse_amount(data: Any, where: str = "amount") -> tuple[Decimal, str]:
    """``(value, currency)`` of a positive amount, or YooKassa's 400 naming the parameter."""
    if not isinstance(data, dict):
        raise invalid(f"Parameter {where} is missing or is not an object", where)
    value, currency = data.get("value"), data.get("currency")
    if not isinstance(value, str) or not _VALUE.match(value):
        raise invalid(f"Invalid value of {where}.value", f"{where}.value")
    number = Decimal(value)
    if number <= 0:
        raise invalid(f"Invalid value of {where}.value: must be greater than 0", f"{where}.value")
    if currency not in CURRENCIES:
        raise invalid(f"Invalid value of {where}.currency", f"{where}.currency")
    return number, str(currency)


def value_of(data: dict[str, Any]) -> Decimal:
    return Decimal(str(data["value"]))
