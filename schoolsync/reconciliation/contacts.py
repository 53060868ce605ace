"""Emails, phones and references as the engine compares them (cheap, no phonenumbers: a run
normalises hundreds of thousands of them)."""

from __future__ import annotations

import re

_NOT_DIGIT = re.compile(r"\D")
_REFERENCE_WORD = re.compile(r"[^\W_]+(?:[-_][^\W_]+)*")
_DIGITS = re.compile(r"\d{4,}")


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


def reference_keys(raw: str | None) -> tuple[str, ...]:
    """What in a payment's reference may be an order id: the whole text, each word
    (``gc-12345``), each run of four or more digits (``Заказ №12345`` -> ``12345``)."""
    if not raw or not raw.strip():
        return ()
    text = raw.strip()
    keys = dict.fromkeys([text, *_REFERENCE_WORD.findall(text), *_DIGITS.findall(text)])
    return tuple(keys)
