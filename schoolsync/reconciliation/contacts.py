"""Emails, phones and references as the engine compares them (cheap, no phonenumbers: a run
normalises hundreds of thousands of them)."""

from __future__ import annotations

import re

_NOT_DIGIT = re.compile(r"\D")
_REFERENCE_WORD = re.compile(r"[^\W_]+(?:[-_][^\W_]+)*")
# a number that says it is an order's: after заказ/order (and №, N, No, номер), or after № or #
_ORDER_NUMBER = re.compile(
    r"(?:заказ\w*|зак\.|order)\s*(?:№|#|n|no\.?|nr\.?|номер)?\s*:?\s*(\d+)(?!\d)"
    r"|(?:[№#]|(?<![^\W\d_])(?:n|no\.?|nr\.?)(?=[\s\d]))\s*(\d+)(?!\d)",
    re.IGNORECASE,
)


def email_key(raw: str | None) -> str | None:
    """Lower case, trimmed; ``None`` unless it looks like an address."""
    if not raw:
        return None
    text = raw.strip().lower()
    return text if "@" in text and len(text) > 2 else None


def phone_key(raw: str | None) -> str | None:
    """Digits only; a Russian ``8 9xx`` or bare ``9xx`` number as ``79xx...``; ``None`` for
    fewer than ten digits (not a phone)."""
    if not raw:
        return None
    digits = _NOT_DIGIT.sub("", raw)
    if len(digits) == 11 and digits[0] == "8":
        return "7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "7" + digits
    return digits if len(digits) >= 10 else None


def reference_keys(raw: str | None, *, min_digits: int) -> tuple[str, ...]:
    """What in a payment's reference may be an order id: the whole text (a provider's order
    id, a number a person chose), each word mixing letters and at least ``min_digits`` digits
    (``gc-12345``), and each number of at least ``min_digits`` digits that the text says is an
    order's (``Заказ №12345``, ``order #12345``, ``N 12345``). Other numbers are not: a year
    (``за март 2026``), a count (``за 2 урока``), an amount."""
    if not raw or not raw.strip():
        return ()
    text = raw.strip()
    words = [
        word
        for word in _REFERENCE_WORD.findall(text)
        if not word.isdigit() and sum(ch.isdigit() for ch in word) >= min_digits
    ]
    numbers = [
        number
        for match in _ORDER_NUMBER.finditer(text)
        if len(number := match.group(1) or match.group(2)) >= min_digits
    ]
    return tuple(dict.fromkeys([text, *words, *numbers]))
