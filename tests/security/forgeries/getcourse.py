"""Forgeries of GetCourse: the callback secret in the query string."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from tests.security.forgeries.common import (
    Expect,
    Forgery,
    emails,
    money,
    near_misses,
    other_money,
    oversize,
    reencoded,
)
from tests.security.harness import (
    GETCOURSE_SECRET,
    Delivery,
)

GC_NO_SECRET = "signature: callback has no secret parameter"
GC_WRONG_SECRET = "signature: callback secret is not one we issued"
GC_STATUSES = ["new", "payed", "in_work", "part_payed", "cancelled"]


def getcourse_params(number: int, status: str, payed: Decimal, email: str) -> list[tuple[str, str]]:
    return [
        ("id", str(number + 90_000_000)),
        ("number", str(number)),
        ("status", status),
        ("cost", str(payed + 500)),
        ("payed", str(payed)),
        ("email", email),
        ("phone", "+79231234567"),
        ("first_name", "Мария"),
    ]


def getcourse_delivery(
    secret_pairs: list[tuple[str, str]], params: list[tuple[str, str]]
) -> Delivery:
    return Delivery("getcourse", query=urlencode([*secret_pairs, *params]))


def getcourse_genuine(serial: int) -> Delivery:
    params = getcourse_params(serial, "payed", Decimal("12000"), "buyer@example.org")
    return getcourse_delivery([("secret", GETCOURSE_SECRET)], params)


@st.composite
def getcourse_forgeries(draw: DrawFn) -> Forgery:
    number = draw(st.integers(10_000, 99_999))
    status, payed, email = draw(st.sampled_from(GC_STATUSES)), draw(money()), draw(emails())
    params = getcourse_params(number, status, payed, email)
    attack = draw(
        st.sampled_from(
            ["secret", "secret twice", "secret renamed", "truncated", "content type", "oversize"]
        )
    )
    # what else the callback says: a changed status or amount does not make a wrong secret right
    change = draw(st.sampled_from(["none", "changed status", "changed amount"]))
    if change == "changed status":
        params[2] = ("status", draw(st.sampled_from(GC_STATUSES).filter(lambda s: s != status)))
    elif change == "changed amount":
        params[4] = ("payed", str(draw(other_money(payed))))
    label = f" ({change})" if change != "none" else ""
    if attack == "secret":
        what, value = draw(
            st.one_of(near_misses(GETCOURSE_SECRET), st.just(("placeholder", "{secret}")))
        )
        pairs = [] if value is None else [("secret", value)]
        expect = Expect(
            401, (GC_NO_SECRET if not value or what == "placeholder" else GC_WRONG_SECRET,)
        )
        return Forgery(f"secret: {what}{label}", getcourse_delivery(pairs, params), expect)
    if attack == "secret twice":  # the first one counts
        what, value = draw(near_misses(GETCOURSE_SECRET).filter(lambda p: bool(p[1])))
        assert value is not None
        pairs = [("secret", value), ("secret", GETCOURSE_SECRET)]
        expect = Expect(401, (GC_WRONG_SECRET,))
        return Forgery(
            f"secret twice, {what} first{label}", getcourse_delivery(pairs, params), expect
        )
    if attack == "secret renamed":
        name = draw(st.sampled_from(["Secret", "SECRET", "secret_", "key", "token", "s"]))
        delivery = getcourse_delivery([(name, GETCOURSE_SECRET)], params)
        return Forgery(f"{attack}: {name}{label}", delivery, Expect(401, (GC_NO_SECRET,)))
    genuine = getcourse_delivery([("secret", GETCOURSE_SECRET)], params)
    if attack == "truncated":  # cut inside the secret, which comes first
        cut = draw(st.integers(0, len("secret=") + len(GETCOURSE_SECRET) - 1))
        delivery = replace(genuine, query=genuine.query[:cut])
        expect = Expect(401, (GC_NO_SECRET, GC_WRONG_SECRET))
        return Forgery(f"{attack}{label}", delivery, expect)
    if attack == "oversize":
        return oversize(draw, genuine)
    # the callback's fields, secret included, sent in a body: GetCourse reads the query only
    fields = [("secret", GETCOURSE_SECRET), *params]
    body, content_type = draw(reencoded(fields, dict(fields), "query"))
    delivery = Delivery("getcourse", body=body, headers=(("content-type", content_type),))
    return Forgery(f"{attack}: {content_type}{label}", delivery, Expect(401, (GC_NO_SECRET,)))
