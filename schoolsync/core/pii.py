"""Masking of personal data and secrets in free text (logs, error messages, channel posts).

Emails keep their first letter and domain, phones their last two digits, card numbers
(13-19 digits passing the Luhn check) their last four; bearer/basic credentials are removed.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
PHONE = re.compile(r"(?<![\w+-])(?:\+?\d[\s\-()]*){9,14}\d(?![\w-])")
AUTH = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
SECRET_PARAM = re.compile(r"(?i)\b(secret|token|password|access_token|refresh_token|key)=([^&\s]+)")
# names of fields, headers and log keys whose whole value is a secret (Sentry events, log lines)
SENSITIVE_KEY = re.compile(
    r"(?i)token|secret|passw|authori[sz]ation|cookie|credential|signature|api[_-]?key"
    r"|private[_-]?key|(?:^|[_-])key$|^dsn$|session"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_card(value: str) -> str:
    """``4111 1111 1111 1111`` -> ``**** 1111``: staff may see the last four digits, never more."""
    digits = re.sub(r"\D", "", value)
    return f"**** {digits[-4:]}"


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return mask_card(digits) if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"+***{digits[-2:]}" if 10 <= len(digits) <= 15 else match.group(0)


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def mask_text(text: str) -> str:
    """Mask emails, card numbers, phone numbers and credentials found anywhere in ``text``
    (also where a query string or form body percent-encodes them: it is decoded first)."""
    if _PERCENT.search(text):
        text = unquote(text)
    text = AUTH.sub(lambda m: f"{m.group(1)} ***", text)
    text = SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)
