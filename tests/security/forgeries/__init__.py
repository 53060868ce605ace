"""Hypothesis strategies of forged and mutated webhook deliveries, one family per source.

Each forgery is a genuine delivery (fields drawn at random, signed or addressed as the platform
would) with one attack applied, and the answer it must get: the status and what the stored
``reject_reason`` says (it starts with ``signature:``, ``source:`` or ``malformed:``).

The attacker holds no credential of the source: not the generic HMAC key, not the URL secret
of GetCourse or amoCRM, not Telegram's secret token, not Robokassa's Password #2, not PayPal's
signing key, and sends from outside YooKassa's networks. They may have seen a genuine delivery
(its body, its signature headers; a URL secret as the inbox keeps it: ``secret=***``), and may
replay it changed. Sources whose secret rides in the URL or a header (GetCourse, amoCRM,
Telegram) authenticate the request only by that secret, so every forgery of theirs carries a
wrong one, with or without a changed body; signed sources (generic, Robokassa, PayPal) are
also replayed with their genuine signature over a changed body.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis.strategies import SearchStrategy

from tests.connectors.paypal.signing import Signer
from tests.security.forgeries.amocrm import amocrm_forgeries, amocrm_genuine
from tests.security.forgeries.common import Expect, Forgery, dumps
from tests.security.forgeries.generic import generic_forgeries, generic_genuine
from tests.security.forgeries.getcourse import getcourse_forgeries, getcourse_genuine
from tests.security.forgeries.paypal import paypal_event, paypal_forgeries, paypal_genuine
from tests.security.forgeries.robokassa import robokassa_forgeries, robokassa_genuine
from tests.security.forgeries.telegram import telegram_forgeries, telegram_genuine
from tests.security.forgeries.yookassa import yookassa_forgeries, yookassa_genuine
from tests.security.harness import Delivery

FORGERIES: dict[str, Callable[[Signer, Signer], SearchStrategy[Forgery]]] = {
    "generic": lambda _s, _a: generic_forgeries(),
    "getcourse": lambda _s, _a: getcourse_forgeries(),
    "amocrm": lambda _s, _a: amocrm_forgeries(),
    "telegram": lambda _s, _a: telegram_forgeries(),
    "yookassa": lambda _s, _a: yookassa_forgeries(),
    "robokassa": lambda _s, _a: robokassa_forgeries(),
    "paypal": paypal_forgeries,
}

GENUINE: dict[str, Callable[[Signer, int], Delivery]] = {
    "generic": lambda _s, n: generic_genuine(f"genuine-{n}"),
    "getcourse": lambda _s, n: getcourse_genuine(n),
    "amocrm": lambda _s, n: amocrm_genuine(n),
    "telegram": lambda _s, n: telegram_genuine(n),
    "yookassa": lambda _s, n: yookassa_genuine(n),
    "robokassa": lambda _s, n: robokassa_genuine(n),
    "paypal": paypal_genuine,
}

__all__ = ["FORGERIES", "GENUINE", "Expect", "Forgery", "dumps", "paypal_event"]
