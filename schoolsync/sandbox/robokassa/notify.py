"""ResultURL: the signed notification Robokassa sends after a payment, and its delivery.

Fields (docs.robokassa.ru/ru/notifications-and-redirects): ``OutSum`` (written with six
decimals, as Robokassa sends it: ``100.000000``), ``InvId``, ``Fee``, ``EMail``,
``SignatureValue`` (upper-case hex here, to keep receivers honest about case),
``PaymentMethod``, ``IncCurrLabel``, ``IncSum``, ``IsTest=1`` in test mode, and the shop's
``Shp_*`` parameters echoed back. UTF-8, POST as a form or GET with a query, as configured. The
shop must answer ``OK{InvId}``; anything else is a failed delivery, tried again.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from schoolsync.sandbox.robokassa.shop import RobokassaSandbox
from schoolsync.sandbox.robokassa.signing import result_signature

_SIX = Decimal("0.000001")


def result_fields(
    sb: RobokassaSandbox,
    *,
    inv_id: int,
    out_sum: Decimal,
    shp: dict[str, str],
    is_test: bool,
    email: str | None,
    payment_method: str,
    bad_signature: bool,
) -> list[tuple[str, str]]:
    out_sum_text = f"{out_sum.quantize(_SIX):f}"
    password = sb.password2(is_test) or ""
    if bad_signature:
        password = f"not-{password}"
    pairs = [
        (key if key.lower().startswith("shp_") else f"Shp_{key}", value)
        for key, value in shp.items()
    ]
    signature = result_signature(sb.algorithm, out_sum_text, str(inv_id), password, pairs)
    fields = [
        ("OutSum", out_sum_text),
        ("InvId", str(inv_id)),
        ("Fee", f"{sb.fee(out_sum):f}"),
        ("EMail", email or ""),
        ("SignatureValue", signature.upper()),
        ("PaymentMethod", payment_method),
        ("IncSum", out_sum_text),
        ("IncCurrLabel", "BankCardPSR" if payment_method == "BankCard" else payment_method),
    ]
    if is_test:
        fields.append(("IsTest", "1"))
    fields.extend(pairs)
    return fields


async def deliver(
    sb: RobokassaSandbox, url: str, method: str, fields: list[tuple[str, str]], inv_id: int
) -> tuple[bool, list[dict[str, Any]]]:
    """Call ResultURL until it answers ``OK{InvId}``, at most ``result_retries + 1`` times."""
    expected = f"OK{inv_id}"
    attempts: list[dict[str, Any]] = []
    config = sb.config
    async with httpx.AsyncClient(timeout=config.result_timeout_s) as client:
        for attempt in range(config.result_retries + 1):
            if attempt:
                await asyncio.sleep(config.result_retry_delay_s * 2 ** (attempt - 1))
            record: dict[str, Any] = {"attempt": attempt + 1}
            try:
                if method.upper() == "GET":
                    response = await client.get(url, params=dict(fields))
                else:
                    response = await client.post(url, data=dict(fields))
            except httpx.HTTPError as exc:
                record["error"] = type(exc).__name__
                attempts.append(record)
                continue
            reply = response.text.strip()
            record.update(status=response.status_code, reply=reply[:200])
            attempts.append(record)
            if response.status_code == 200 and reply == expected:
                return True, attempts
    return False, attempts
