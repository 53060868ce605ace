"""GetCourse money strings, read exactly into ``Decimal`` + currency.

GetCourse prints amounts the Russian way, and callbacks and export cells carry them as text::

    "12 000,00"          12000.00 in the default currency
    "12 000 руб."        12000 RUB
    "12\u00a0000,50 руб."     12000.50 RUB (a no-break space groups thousands)
    "991", "991.00"      991, 991.00
    "1 234 567,89 ₽"     1234567.89 RUB
    "$ 50", "50 USD"     50 USD
    "-1 500 руб."        -1500 RUB ("−", U+2212, is a minus too)
    "", "   ", None      None (no amount)

Rules, chosen so that no amount is ever guessed:

- thousands are grouped by spaces of any kind (space, no-break, narrow no-break, thin, figure),
  in groups of three;
- the decimal separator is one comma or one dot followed by one or two digits; a separator
  followed by three digits (``1,234``, ``1.500``) could be a thousands separator and is refused,
  and so is a mix of comma and dot;
- the currency is a symbol or word before or after the number (``₽ руб. р. $ € ₸ тг ₴ грн £``),
  or any three-letter ISO code in capitals; without one, ``default_currency`` applies.

Anything else raises ``MalformedInputError`` naming the value (an amount is not personal data).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from schoolsync.core.domain import Money
from schoolsync.core.errors import MalformedInputError

SPACES: Final = "\u0020\u00a0\u202f\u2009\u2007"
MINUS: Final = "-\u2212"

CURRENCY_WORDS: Final[dict[str, str]] = {
    "₽": "RUB",
    "руб": "RUB",
    "р": "RUB",
    "rub": "RUB",
    "rur": "RUB",
    "$": "USD",
    "usd": "USD",
    "€": "EUR",
    "eur": "EUR",
    "₸": "KZT",
    "тг": "KZT",
    "kzt": "KZT",
    "₴": "UAH",
    "грн": "UAH",
    "uah": "UAH",
    "£": "GBP",
    "gbp": "GBP",
    "byn": "BYN",
}

# how format_money writes a currency after the amount
CURRENCY_SUFFIX: Final[dict[str, str]] = {"RUB": "руб."}

_NUMBER = re.compile(r"(?P<int>\d{1,3}(?: \d{3})+|\d+)(?:[.,](?P<frac>\d{1,2}))?", re.ASCII)
_ISO = re.compile(r"[A-Z]{3}")
_MAX_SHOWN = 60


def _refuse(value: object, why: str) -> MalformedInputError:
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[:_MAX_SHOWN] + "…"
    return MalformedInputError(
        f"not a GetCourse money amount: {shown} ({why})", platform="getcourse"
    )


def _currency(token: str, value: object) -> str | None:
    token = token.strip(SPACES)
    if not token:
        return None
    if _ISO.fullmatch(token):
        return token
    found = CURRENCY_WORDS.get(token.lower().rstrip("."))
    if found is None:
        raise _refuse(value, f"unknown currency {token!r}")
    return found


def parse_money(value: object, *, default_currency: str = "RUB") -> Money | None:
    """The exact amount and currency in ``value``, or None when it holds no amount.

    ``value`` is normally text; an ``int`` or ``Decimal`` is taken as is, a ``float`` through its
    shortest repr (at most two decimals). Raises ``MalformedInputError`` for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise _refuse(value, "a boolean is not an amount")
    if isinstance(value, int):
        return Money(amount=Decimal(value), currency=default_currency)
    if isinstance(value, float | Decimal):
        amount = Decimal(repr(value)) if isinstance(value, float) else value
        if not amount.is_finite():
            raise _refuse(value, "not a finite number")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            raise _refuse(value, "more than two decimals")
        return Money(amount=amount, currency=default_currency)
    if not isinstance(value, str):
        raise _refuse(value, f"a {type(value).__name__} is not an amount")

    text = " ".join(value.translate({ord(c): " " for c in SPACES}).split())
    if not text:
        return None
    digits = [i for i, char in enumerate(text) if char in "0123456789"]
    if not digits:
        raise _refuse(value, "no digits")
    prefix, core, suffix = (
        text[: digits[0]],
        text[digits[0] : digits[-1] + 1],
        text[digits[-1] + 1 :],
    )

    sign = 1
    minuses = sum(prefix.count(char) for char in MINUS)
    if minuses > 1 or ("+" in prefix and minuses):
        raise _refuse(value, "more than one sign")
    if minuses:
        sign = -1
        prefix = prefix.translate({ord(c): None for c in MINUS})
    prefix = prefix.replace("+", "", 1)
    before, after = _currency(prefix, value), _currency(suffix, value)
    if before and after:
        raise _refuse(value, "two currencies")

    if "," in core and "." in core:
        raise _refuse(value, "both comma and dot; cannot tell thousands from decimals")
    match = _NUMBER.fullmatch(core)
    if match is None:
        raise _refuse(value, "digits must be grouped by three, with at most two decimals")
    number = match["int"].replace(" ", "")
    if match["frac"] is not None:
        number += "." + match["frac"]
    amount = Decimal(number)
    return Money(
        amount=-amount if sign < 0 else amount, currency=before or after or default_currency
    )


def format_money(amount: Decimal, currency: str | None = None, *, nbsp: bool = False) -> str:
    """``amount`` written the GetCourse way: ``"12 000,50 руб."``, ``"-991 USD"``, ``"0"``.

    Thousands are grouped by a space (a no-break space with ``nbsp``), decimals keep the
    amount's own exponent and follow a comma. ``parse_money`` reads the result back exactly.
    """
    if not amount.is_finite():
        raise ValueError(f"cannot format {amount!r}")
    sign = "-" if amount.is_signed() and amount != 0 else ""
    whole, _, fraction = f"{abs(amount):f}".partition(".")
    space = "\u00a0" if nbsp else " "
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = sign + space.join(groups) + ("," + fraction if fraction else "")
    if currency:
        text += " " + CURRENCY_SUFFIX.get(currency, currency)
    return text
