"""Forgeries of PayPal: RSA over transmission id|time|webhook id|crc32(body)."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from tests.connectors.paypal.signing import Signer
from tests.security.forgeries.common import (
    JSON,
    TOKEN_CHARS,
    Expect,
    Forgery,
    dumps,
    flat,
    money,
    other_money,
    oversize,
    reencoded,
    truncated,
)
from tests.security.harness import (
    PAYPAL_WEBHOOK_ID,
    Delivery,
)

PP_MISMATCH = "signature: paypal transmission signature does not match"
PP_HEADERS = {
    "paypal-transmission-id": "PAYPAL-TRANSMISSION-ID",
    "paypal-transmission-time": "PAYPAL-TRANSMISSION-TIME",
    "paypal-transmission-sig": "PAYPAL-TRANSMISSION-SIG",
    "paypal-cert-url": "PAYPAL-CERT-URL",
    "paypal-auth-algo": "PAYPAL-AUTH-ALGO",
}
PP_FOREIGN_CERT_URLS = [
    "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-tests-0001",
    "https://evil.example/v1/notifications/certs/CERT-tests-0001",
    "https://paypal.com.evil.example/cert.pem",
    "https://evilpaypal.com/cert.pem",
    "https://api.paypal.com@evil.example/cert.pem",
    "https://user:pass@api.paypal.com/cert.pem",
    "https://.paypal.com/cert.pem",
    "ftp://api.paypal.com/cert.pem",
    "file:///etc/ssl/certs/paypal.pem",
    "https:///cert.pem",
    "//api.paypal.com/cert.pem",
]


def paypal_event(
    event_id: str, capture_id: str, amount: Decimal, status: str = "COMPLETED"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "create_time": "2026-11-23T10:00:07.940Z",
        "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "summary": f"Payment completed for $ {amount} USD",
        "resource": {
            "id": capture_id,
            "status": status,
            "amount": {"currency_code": "USD", "value": f"{amount:.2f}"},
            "final_capture": True,
            "create_time": "2026-11-23T10:00:00Z",
            "update_time": "2026-11-23T10:00:00Z",
        },
        "event_version": "1.0",
        "resource_version": "2.0",
    }


def paypal_delivery(body: bytes, headers: dict[str, str]) -> Delivery:
    return Delivery("paypal", body=body, headers=tuple(headers.items()))


def paypal_genuine(signer: Signer, serial: int) -> Delivery:
    body = dumps(paypal_event(f"WH-SERIAL-{serial}", f"CAPTURE{serial}", Decimal("25.10")))
    return paypal_delivery(
        body, signer.headers(body, PAYPAL_WEBHOOK_ID, transmission_id=f"t-{serial}")
    )


def paypal_forgeries(signer: Signer, attacker: Signer) -> SearchStrategy[Forgery]:
    @st.composite
    def forgeries(draw: DrawFn) -> Forgery:
        amount = draw(money())
        event = paypal_event(
            f"WH-{draw(st.uuids()).hex[:20].upper()}", f"C{draw(st.integers(1, 10**12))}", amount
        )
        body = dumps(event)
        transmission = str(draw(st.uuids()))
        time = f"2026-11-{draw(st.integers(1, 28)):02d}T10:00:05Z"
        headers = signer.headers(
            body, PAYPAL_WEBHOOK_ID, transmission_id=transmission, transmission_time=time
        )
        mismatch = Expect(401, (PP_MISMATCH,))
        attack = draw(
            st.sampled_from(
                [
                    "header missing",
                    "algorithm",
                    "certificate URL",
                    "signature not base64",
                    "signature bytes",
                    "signed by another key",
                    "signed for another webhook",
                    "transmission changed",
                    "changed amount",
                    "changed status",
                    "changed id",
                    "truncated",
                    "content type",
                    "oversize",
                ]
            )
        )
        if attack == "header missing":
            name = draw(st.sampled_from(sorted(PP_HEADERS)))
            blank = draw(st.sampled_from([None, "", "  "]))
            changed = {k: v for k, v in headers.items() if k != name}
            if blank is not None:
                changed[name] = blank
            return Forgery(
                f"{name} {'missing' if blank is None else 'blank'}",
                paypal_delivery(body, changed),
                Expect(401, (f"signature: paypal webhook lacks {PP_HEADERS[name]}",)),
            )
        if attack == "algorithm":
            algo = draw(
                st.sampled_from(
                    [
                        "SHA1withRSA",
                        "sha256withrsa",
                        "SHA512withRSA",
                        "none",
                        "HS256",
                        "SHA256withECDSA",
                    ]
                )
            )
            changed = {**headers, "paypal-auth-algo": algo}
            return Forgery(
                f"{attack}: {algo}",
                paypal_delivery(body, changed),
                Expect(401, ("is not SHA256withRSA",)),
            )
        if attack == "certificate URL":
            url = draw(st.sampled_from(PP_FOREIGN_CERT_URLS))
            changed = {**headers, "paypal-cert-url": url}
            return Forgery(
                f"{attack}: {url}",
                paypal_delivery(body, changed),
                Expect(401, ("signature: paypal PAYPAL-CERT-URL",)),
            )
        if attack == "signature not base64":
            value = draw(
                st.sampled_from(
                    ["***", "abc", "not base64!", headers["paypal-transmission-sig"][:-1] + "%"]
                )
            )
            changed = {**headers, "paypal-transmission-sig": value}
            return Forgery(
                attack,
                paypal_delivery(body, changed),
                Expect(401, ("signature: paypal PAYPAL-TRANSMISSION-SIG is not base64",)),
            )
        if attack == "signature bytes":
            raw = bytearray(base64.b64decode(headers["paypal-transmission-sig"]))
            how = draw(st.sampled_from(["one byte", "truncated", "random"]))
            if how == "one byte":
                index = draw(st.integers(0, len(raw) - 1))
                raw[index] ^= draw(st.integers(1, 255))
            elif how == "truncated":
                raw = raw[: draw(st.integers(1, len(raw) - 1))]
            else:
                raw = bytearray(draw(st.binary(min_size=1, max_size=300)))
            changed = {**headers, "paypal-transmission-sig": base64.b64encode(bytes(raw)).decode()}
            return Forgery(f"signature: {how}", paypal_delivery(body, changed), mismatch)
        if attack == "signed by another key":  # the cached certificate's URL, someone else's key
            changed = attacker.headers(
                body, PAYPAL_WEBHOOK_ID, transmission_id=transmission, transmission_time=time
            )
            return Forgery(attack, paypal_delivery(body, changed), mismatch)
        if attack == "signed for another webhook":
            other = draw(
                st.from_regex(r"\A[0-9A-Z]{17}\Z").filter(lambda w: w != PAYPAL_WEBHOOK_ID)
            )
            changed = signer.headers(
                body, other, transmission_id=transmission, transmission_time=time
            )
            return Forgery(attack, paypal_delivery(body, changed), mismatch)
        if attack == "transmission changed":
            name = draw(st.sampled_from(["paypal-transmission-id", "paypal-transmission-time"]))
            value = draw(
                st.text(TOKEN_CHARS + ":", min_size=1, max_size=40).filter(
                    lambda v: v != headers[name]
                )
            )
            return Forgery(
                f"{name} changed", paypal_delivery(body, {**headers, name: value}), mismatch
            )
        if attack == "changed amount":
            event["resource"]["amount"]["value"] = f"{draw(other_money(amount)):.2f}"
            return Forgery(attack, paypal_delivery(dumps(event), headers), mismatch)
        if attack == "changed status":
            event["resource"]["status"] = draw(st.sampled_from(["DECLINED", "PENDING", "REFUNDED"]))
            event["event_type"] = draw(
                st.sampled_from(["PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"])
            )
            return Forgery(attack, paypal_delivery(dumps(event), headers), mismatch)
        if attack == "changed id":
            event["id"] = f"WH-{draw(st.uuids()).hex[:20].upper()}"
            return Forgery(attack, paypal_delivery(dumps(event), headers), mismatch)
        if attack == "truncated":
            return Forgery(attack, paypal_delivery(truncated(draw, body), headers), mismatch)
        if attack == "content type":
            other_body, content_type = draw(reencoded(flat(event), event, JSON))
            changed = {**headers, "content-type": content_type}
            delivery = paypal_delivery(other_body, changed)
            return Forgery(f"{attack}: {content_type}", delivery, mismatch)
        return oversize(draw, paypal_delivery(body, headers))

    return forgeries()
