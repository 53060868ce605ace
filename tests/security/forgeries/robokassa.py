"""Forgeries of Robokassa: MD5 of OutSum:InvId:Password#2[:Shp_...] in SignatureValue."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from tests.security.forgeries.common import (
    FORM,
    TOKEN_CHARS,
    Expect,
    Forgery,
    emails,
    money,
    near_misses,
    other_money,
    oversize,
    reencoded,
    truncated,
)
from tests.security.harness import (
    ROBOKASSA_PASSWORD2,
    Delivery,
)

RK_MISMATCH = "signature: robokassa SignatureValue does not match"
RK_LACKS = "malformed: robokassa notification lacks"
RK_TWICE = "is given twice"
RK_TEST = "signature: robokassa test payment (IsTest=1) for a shop without test passwords"


def robokassa_signature(
    out_sum: str,
    inv_id: str,
    shp: list[tuple[str, str]],
    password: str = ROBOKASSA_PASSWORD2,
    algorithm: str = "md5",
) -> str:
    tail = "".join(f":{k}={v}" for k, v in sorted(shp, key=lambda p: p[0].casefold()))
    return (
        hashlib.new(algorithm, f"{out_sum}:{inv_id}:{password}{tail}".encode()).hexdigest().upper()
    )


def robokassa_fields(
    out_sum: str, inv_id: str, order: str, email: str, signature: str | None = None
) -> list[tuple[str, str]]:
    """The signed fields last, so that any truncation cuts into them."""
    shp = [("Shp_order", order)]
    sig = robokassa_signature(out_sum, inv_id, shp) if signature is None else signature
    return [
        ("EMail", email),
        ("Fee", "97.50"),
        ("IncSum", out_sum),
        ("PaymentMethod", "BankCard"),
        ("IncCurrLabel", "BankCardPSR"),
        ("OutSum", out_sum),
        ("InvId", inv_id),
        *shp,
        ("SignatureValue", sig),
    ]


def robokassa_delivery(
    fields: list[tuple[str, str]] | bytes, method: str, content_type: str = FORM
) -> Delivery:
    text = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    if method == "GET":
        return Delivery("robokassa", method="GET", query=text.decode("utf-8", "replace"))
    return Delivery("robokassa", body=text, headers=(("content-type", content_type),))


def robokassa_genuine(serial: int) -> Delivery:
    fields = robokassa_fields("2500.000000", str(serial), f"GC-{serial}", "buyer@example.org")
    return robokassa_delivery(fields, "POST")


def _replaced(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == name else v) for k, v in fields]


@st.composite
def robokassa_forgeries(draw: DrawFn) -> Forgery:
    amount = draw(money())
    out_sum, inv_id = f"{amount:.6f}", str(draw(st.integers(1, 10**9)))
    order, email = f"GC-{draw(st.integers(1, 10**6))}", draw(emails())
    fields = robokassa_fields(out_sum, inv_id, order, email)
    signature = fields[-1][1]
    method = draw(st.sampled_from(["POST", "GET"]))
    mismatch = Expect(400, (RK_MISMATCH,))
    attack = draw(
        st.sampled_from(
            [
                "signature",
                "signed with another password",
                "signed with another algorithm",
                "changed amount",
                "amount written otherwise",
                "changed invoice",
                "changed shop parameter",
                "added shop parameter",
                "marked as a test",
                "field twice",
                "truncated",
                "content type",
                "oversize",
            ]
        )
    )
    if attack == "signature":
        what, value = draw(near_misses(signature.lower()))
        if value is not None and value.strip().lower() == signature.lower():
            value += "0"  # compared without case: not a forgery
        if value is None:
            changed = [f for f in fields if f[0] != "SignatureValue"]
        else:
            changed = _replaced(fields, "SignatureValue", value)
        expect = Expect(400, (RK_LACKS,)) if not value else mismatch
        return Forgery(f"signature: {what}", robokassa_delivery(changed, method), expect)
    if attack == "signed with another password":
        what, password = draw(near_misses(ROBOKASSA_PASSWORD2).filter(lambda p: p[1] is not None))
        assert password is not None
        sig = robokassa_signature(out_sum, inv_id, [("Shp_order", order)], password)
        changed = _replaced(fields, "SignatureValue", sig)
        return Forgery(
            f"signed with a password that is {what}", robokassa_delivery(changed, method), mismatch
        )
    if attack == "signed with another algorithm":
        algorithm = draw(st.sampled_from(["sha1", "sha256", "sha384", "sha512"]))
        sig = robokassa_signature(out_sum, inv_id, [("Shp_order", order)], algorithm=algorithm)
        changed = _replaced(fields, "SignatureValue", sig)
        return Forgery(f"signed with {algorithm}", robokassa_delivery(changed, method), mismatch)
    if attack == "changed amount":
        other = f"{draw(other_money(amount)):.6f}"
        changed = _replaced(_replaced(fields, "OutSum", other), "IncSum", other)
        return Forgery(attack, robokassa_delivery(changed, method), mismatch)
    if attack == "amount written otherwise":  # Robokassa signs the text it sends
        other = draw(
            st.sampled_from([f"{amount:.2f}", f"{amount:.0f}", f"{amount:.7f}", f" {out_sum}"])
        )
        changed = _replaced(fields, "OutSum", other)
        return Forgery(f"{attack}: {other!r}", robokassa_delivery(changed, method), mismatch)
    if attack == "changed invoice":
        other = str(draw(st.integers(1, 10**9).filter(lambda n: str(n) != inv_id)))
        return Forgery(
            attack, robokassa_delivery(_replaced(fields, "InvId", other), method), mismatch
        )
    if attack == "changed shop parameter":
        other = f"GC-{draw(st.integers(1, 10**6))}"
        if other == order:
            other += "0"
        return Forgery(
            attack, robokassa_delivery(_replaced(fields, "Shp_order", other), method), mismatch
        )
    if attack == "added shop parameter":
        name = draw(st.sampled_from(["Shp_school", "Shp_label", "shp_promo"]))
        value = draw(st.text(TOKEN_CHARS, min_size=1, max_size=8))
        changed = [*fields[:-1], (name, value), fields[-1]]
        # Shp_school picks the shop before any signature is checked
        expect = Expect(400, (RK_MISMATCH, "signature: robokassa Shp_school names no school"))
        return Forgery(f"{attack}: {name}", robokassa_delivery(changed, method), expect)
    if attack == "marked as a test":
        changed = [*fields[:-1], ("IsTest", "1"), fields[-1]]
        return Forgery(attack, robokassa_delivery(changed, method), Expect(400, (RK_TEST,)))
    if attack == "field twice":
        name = draw(st.sampled_from(["OutSum", "outsum", "OUTSUM", "InvId", "SignatureValue"]))
        value = draw(st.sampled_from(["1.000000", "0", inv_id, signature]))
        changed = [(name, value), *fields]
        return Forgery(
            f"{attack}: {name}", robokassa_delivery(changed, method), Expect(400, (RK_TWICE,))
        )
    if attack == "truncated":
        text = urlencode(fields).encode()
        return Forgery(
            attack,
            robokassa_delivery(truncated(draw, text), method),
            Expect(400, (RK_LACKS, RK_MISMATCH)),
        )
    if attack == "content type":
        text = urlencode(fields).encode()
        body, content_type = draw(reencoded(fields, dict(fields), FORM, text))
        delivery = robokassa_delivery(body, "POST", content_type)
        return Forgery(f"{attack}: {content_type}", delivery, Expect(400, (RK_LACKS, RK_TWICE)))
    return oversize(draw, robokassa_delivery(fields, "POST"))
