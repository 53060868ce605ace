"""Forgeries of amoCRM: the webhook secret in the query string, a PHP-style form body."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from tests.security.forgeries.common import (
    FORM,
    Expect,
    Forgery,
    near_misses,
    oversize,
    reencoded,
    truncated,
)
from tests.security.harness import (
    AMOCRM_SECRET,
    Delivery,
)

AMO_NO_SECRET = "signature: webhook URL carries no secret"
AMO_WRONG_SECRET = "signature: webhook secret matches no amoCRM account"


def amocrm_fields(lead: int, status_id: int, price: int, modified: int) -> list[tuple[str, str]]:
    return [
        ("leads[status][0][id]", str(lead)),
        ("leads[status][0][status_id]", str(status_id)),
        ("leads[status][0][old_status_id]", "1002"),
        ("leads[status][0][pipeline_id]", "1000"),
        ("leads[status][0][price]", str(price)),
        ("leads[status][0][last_modified]", str(modified)),
        ("account[subdomain]", "fitness"),
        ("account[id]", "29000001"),
    ]


def amocrm_delivery(
    query: str, fields: list[tuple[str, str]], body: bytes | None = None, content_type: str = FORM
) -> Delivery:
    return Delivery(
        "amocrm",
        query=query,
        body=urlencode(fields).encode() if body is None else body,
        headers=(("content-type", content_type),),
    )


def amocrm_genuine(serial: int) -> Delivery:
    fields = amocrm_fields(serial, 142, 22500, 1_732_356_000 + serial)
    return amocrm_delivery(urlencode([("secret", AMOCRM_SECRET)]), fields)


@st.composite
def amocrm_forgeries(draw: DrawFn) -> Forgery:
    lead = draw(st.integers(1, 10**9))
    status_id, price = draw(st.sampled_from([142, 143, 1003])), draw(st.integers(0, 10**6))
    fields = amocrm_fields(lead, status_id, price, draw(st.integers(1_500_000_000, 1_900_000_000)))
    body = urlencode(fields).encode()
    change = draw(
        st.sampled_from(["none", "changed status", "changed price", "truncated", "content type"])
    )
    content_type = FORM
    if change == "changed status":
        fields[1] = (
            fields[1][0],
            str(draw(st.sampled_from([142, 143, 1003]).filter(lambda s: s != status_id))),
        )
        body = urlencode(fields).encode()
    elif change == "changed price":
        fields[4] = (fields[4][0], str(draw(st.integers(0, 10**6).filter(lambda p: p != price))))
        body = urlencode(fields).encode()
    elif change == "truncated":
        body = truncated(draw, body)
    elif change == "content type":
        document = {"leads": {"status": [{k.split("[")[-1][:-1]: v for k, v in fields[:6]}]}}
        body, content_type = draw(reencoded(fields, document, FORM))
    label = f" ({change})" if change != "none" else ""
    attack = draw(st.sampled_from(["secret", "secret twice", "secret elsewhere", "oversize"]))
    if attack == "secret":
        what, value = draw(near_misses(AMOCRM_SECRET))
        query = "" if value is None else urlencode([("secret", value)])
        expect = Expect(401, (AMO_NO_SECRET if not value else AMO_WRONG_SECRET,))
        return Forgery(
            f"secret: {what}{label}", amocrm_delivery(query, fields, body, content_type), expect
        )
    if attack == "secret twice":
        what, value = draw(near_misses(AMOCRM_SECRET).filter(lambda p: p[1] is not None))
        assert value is not None
        pairs = draw(st.permutations([("secret", value), ("secret", AMOCRM_SECRET)]))
        delivery = amocrm_delivery(urlencode(pairs), fields, body, content_type)
        return Forgery(f"secret twice ({what}){label}", delivery, Expect(401, (AMO_NO_SECRET,)))
    if attack == "secret elsewhere":
        where = draw(st.sampled_from(["body", "header", "renamed parameter"]))
        if where == "body":
            moved = amocrm_delivery("", [*fields, ("secret", AMOCRM_SECRET)])
        elif where == "header":
            moved = replace(
                amocrm_delivery("", fields, body, content_type),
                headers=(("content-type", content_type), ("x-secret", AMOCRM_SECRET)),
            )
        else:
            name = draw(st.sampled_from(["Secret", "SECRET", "secret[]", "token"]))
            moved = amocrm_delivery(urlencode([(name, AMOCRM_SECRET)]), fields, body, content_type)
        return Forgery(f"secret in the {where}{label}", moved, Expect(401, (AMO_NO_SECRET,)))
    genuine = amocrm_delivery(urlencode([("secret", AMOCRM_SECRET)]), fields)
    return oversize(draw, genuine)
