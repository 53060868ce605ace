"""Signing and delivering webhook events the way PayPal does.

Each delivery (the first and every retry or resend) is a new transmission: a new
``PAYPAL-TRANSMISSION-ID`` and ``PAYPAL-TRANSMISSION-TIME``, and ``PAYPAL-TRANSMISSION-SIG`` =
base64 RSA-SHA256 (PKCS#1 v1.5) over ``transmission_id|transmission_time|webhook_id|crc32``,
where crc32 is the unsigned decimal CRC-32 of the exact body bytes (the algorithm of PayPal's
SDKs). ``PAYPAL-CERT-URL`` names the certificate, ``PAYPAL-AUTH-ALGO`` is ``SHA256withRSA``.
Any 2xx answer is a delivery; anything else is tried again with a doubling pause.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from typing import Any

import httpx

from schoolsync.sandbox.paypal.state import PayPalSandbox


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    crc = zlib.crc32(body) & 0xFFFFFFFF
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{crc}".encode()


def transmission_headers(
    sb: PayPalSandbox, body: bytes, *, bad_signature: bool = False
) -> dict[str, str]:
    transmission_id = str(uuid.uuid1())
    transmission_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    webhook_id = sb.config.webhook_id + ("-not" if bad_signature else "")
    signature = sb.signing.sign(
        signed_message(transmission_id, transmission_time, webhook_id, body)
    )
    return {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": signature,
        "PAYPAL-CERT-URL": sb.config.cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "PAYPAL-AUTH-VERSION": "v2",
        "User-Agent": "PayPal/AUHD-214.0-58723478",
    }


async def deliver(
    sb: PayPalSandbox, url: str, body: bytes, first: dict[str, str], *, bad_signature: bool
) -> tuple[bool, list[dict[str, Any]]]:
    """POST ``body`` to ``url`` until a 2xx, at most ``webhook_retries + 1`` times."""
    config = sb.config
    attempts: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=config.webhook_timeout_s) as client:
        for attempt in range(config.webhook_retries + 1):
            if attempt:
                await asyncio.sleep(config.webhook_retry_delay_s * 2 ** (attempt - 1))
            headers = (
                first
                if not attempt
                else transmission_headers(sb, body, bad_signature=bad_signature)
            )
            record: dict[str, Any] = {
                "attempt": attempt + 1,
                "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
            }
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                record["error"] = type(exc).__name__
                attempts.append(record)
                continue
            record["status"] = response.status_code
            attempts.append(record)
            if 200 <= response.status_code < 300:
                return True, attempts
    return False, attempts
