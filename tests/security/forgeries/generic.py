"""Forgeries of generic events: HMAC-SHA256 of the body in X-Signature."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from tests.security.forgeries.common import (
    JSON,
    Expect,
    Forgery,
    dumps,
    emails,
    flat,
    money,
    near_misses,
    other_money,
    oversize,
    reencoded,
    truncated,
)
from tests.security.harness import (
    GENERIC_SECRET,
    Delivery,
)


def generic_sign(body: bytes, key: str = GENERIC_SECRET) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def generic_event(serial: str, amount: Decimal, status: str, email: str) -> dict[str, Any]:
    return {
        "id": serial,
        "type": "payment.updated",
        "data": {"amount": str(amount), "status": status, "email": email},
    }


def generic_delivery(body: bytes, signature: str | None, content_type: str = JSON) -> Delivery:
    headers = [("content-type", content_type)]
    if signature is not None:
        headers.append(("x-signature", signature))
    return Delivery("generic", body=body, headers=tuple(headers))


def generic_genuine(serial: str) -> Delivery:
    body = dumps(generic_event(serial, Decimal("2500.00"), "paid", "buyer@example.org"))
    return generic_delivery(body, generic_sign(body))


@st.composite
def generic_forgeries(draw: DrawFn) -> Forgery:
    serial = str(draw(st.uuids()))
    amount, status, email = draw(money()), draw(st.sampled_from(["paid", "new"])), draw(emails())
    event = generic_event(serial, amount, status, email)
    body = dumps(event)
    genuine = generic_delivery(body, generic_sign(body))
    mismatch = Expect(401, ("signature: X-Signature does not match the body",))
    attack = draw(
        st.sampled_from(
            [
                "signature",
                "signed with another key",
                "signature of another body",
                "signature in another header",
                "changed amount",
                "changed status",
                "truncated body",
                "padded body",
                "content type",
                "oversize",
            ]
        )
    )
    if attack == "signature":
        what, value = draw(near_misses(generic_sign(body)))
        # a hex digest is compared case-insensitively, after "sha256=": not a forgery
        if value is not None and value.lower() == generic_sign(body):
            value = value + "0"
        missing = Expect(401, ("signature: missing X-Signature header",))
        expect = missing if not value else mismatch
        return Forgery(f"signature: {what}", generic_delivery(body, value), expect)
    if attack == "signed with another key":
        what, key = draw(near_misses(GENERIC_SECRET).filter(lambda p: p[1] is not None))
        assert key is not None
        return Forgery(
            f"signed with a key that is {what}",
            generic_delivery(body, generic_sign(body, key)),
            mismatch,
        )
    if attack == "signature of another body":
        other = dumps(generic_event(str(draw(st.uuids())), amount, status, email))
        return Forgery(attack, generic_delivery(body, generic_sign(other)), mismatch)
    if attack == "signature in another header":
        name = draw(st.sampled_from(["x-hub-signature-256", "signature", "x-signature-256"]))
        changed = Delivery("generic", body=body, headers=((name, generic_sign(body)),))
        return Forgery(attack, changed, Expect(401, ("signature: missing X-Signature header",)))
    signature = generic_sign(body)
    if attack == "changed amount":
        event["data"]["amount"] = str(draw(other_money(amount)))
        return Forgery(attack, generic_delivery(dumps(event), signature), mismatch)
    if attack == "changed status":
        event["data"]["status"] = draw(st.sampled_from(["refunded", "cancelled", "paid "]))
        return Forgery(attack, generic_delivery(dumps(event), signature), mismatch)
    if attack == "truncated body":
        return Forgery(attack, generic_delivery(truncated(draw, body), signature), mismatch)
    if attack == "padded body":
        pad = draw(st.sampled_from([b" ", b"\n", b"\r\n", b"\t"]))
        return Forgery(attack, generic_delivery(body + pad, signature), mismatch)
    if attack == "content type":
        other, content_type = draw(reencoded(flat(event), event, JSON))
        return Forgery(attack, generic_delivery(other, signature, content_type), mismatch)
    return oversize(draw, genuine)
