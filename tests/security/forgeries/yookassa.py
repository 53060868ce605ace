"""Forgeries of YooKassa: unsigned; believed only from YooKassa's networks."""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from schoolsync.connectors.yookassa.config import YOOKASSA_NETWORKS
from tests.security.forgeries.common import (
    JSON,
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
    PROXY_NETWORK,
    YOOKASSA_SHOP,
    Delivery,
)

NETWORKS = [ipaddress.ip_network(n) for n in YOOKASSA_NETWORKS]
PROXIES = ipaddress.ip_network(PROXY_NETWORK)
YK_OUTSIDE = "source: source address"  # "... 203.0.113.7 not in YooKassa's networks"
YK_NOT_IP = "source: yookassa notification source is not an IP address"
YK_NO_PEER = "source: yookassa notification has no source address"
YK_BAD_HOP = "source: X-Forwarded-For from a trusted proxy has an entry that is not an IP address"
YK_MALFORMED = "malformed: yookassa notification"
YK_EVENTS = [
    "payment.succeeded",
    "payment.waiting_for_capture",
    "payment.canceled",
    "refund.succeeded",
]


def yookassa_address(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> SearchStrategy[str]:
    return st.integers(0, network.num_addresses - 1).map(lambda i: str(network[i]))


def yookassa_ips() -> SearchStrategy[str]:
    return st.sampled_from(NETWORKS).flatmap(yookassa_address)


def _outside(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None) or address
    return (
        not any(mapped in n for n in NETWORKS)
        and mapped not in PROXIES
        and not mapped.is_loopback  # uvicorn believes X-Forwarded-For from 127.0.0.1
        and not mapped.is_unspecified
    )


def outside_ips() -> SearchStrategy[str]:
    v4 = st.integers(1, 2**32 - 1).map(ipaddress.IPv4Address)
    v6 = st.integers(1, 2**128 - 1).map(ipaddress.IPv6Address)
    near = st.sampled_from(NETWORKS).flatmap(  # just outside one of YooKassa's networks
        lambda n: st.sampled_from([n.network_address - 1, n.broadcast_address + 1])
    )
    mapped = v4.map(lambda a: ipaddress.IPv6Address(f"::ffff:{a}"))
    return st.one_of(v4, v6, near, mapped).filter(_outside).map(str)


def proxy_ips() -> SearchStrategy[str]:
    return st.integers(1, PROXIES.num_addresses - 2).map(lambda i: str(PROXIES[i]))


def yookassa_notification(
    event: str, object_id: str, amount: Decimal, shop: str | None
) -> dict[str, Any]:
    kind, _, status = event.partition(".")
    obj: dict[str, Any] = {
        "id": object_id,
        "status": {"canceled": "canceled", "waiting_for_capture": "waiting_for_capture"}.get(
            status, "succeeded"
        ),
        "amount": {"value": f"{amount:.2f}", "currency": "RUB"},
        "created_at": "2026-11-23T10:00:00.000Z",
    }
    if kind == "payment":
        obj.update(paid=status == "succeeded", metadata={"order_id": "72"})
        if shop is not None:
            obj["recipient"] = {"account_id": shop, "gateway_id": "100700"}
    else:
        obj["payment_id"] = "22d6d597-000f-5000-9000-145f6df21d6f"
    return {"type": "notification", "event": event, "object": obj}


def yookassa_delivery(
    body: bytes, peer: str, forwarded: str | None = None, query: str = "", content_type: str = JSON
) -> Delivery:
    headers = [("content-type", content_type)]
    if forwarded is not None:
        headers.append(("x-forwarded-for", forwarded))
    return Delivery("yookassa", body=body, peer=peer, query=query, headers=tuple(headers))


def yookassa_genuine(serial: int) -> Delivery:
    object_id = f"2f0e{serial:04x}-000f-5000-9000-1d2b3c4d5e6f"
    notification = yookassa_notification(
        "payment.succeeded", object_id, Decimal("2500"), YOOKASSA_SHOP
    )
    return yookassa_delivery(dumps(notification), "185.71.76.10")


@st.composite
def yookassa_genuine_routes(draw: DrawFn) -> tuple[str, str | None]:
    """(peer, X-Forwarded-For) of a notification that did come from YooKassa."""
    address = draw(yookassa_ips())
    how = draw(st.sampled_from(["direct", "our proxy", "a local proxy"]))
    if how == "direct":
        return address, None
    if how == "our proxy":  # entries left of YooKassa's address were written by someone else
        left = draw(st.lists(outside_ips(), max_size=2))
        return draw(proxy_ips()), ", ".join([*left, address])
    return "127.0.0.1", address


@st.composite
def yookassa_forgeries(draw: DrawFn) -> Forgery:
    event = draw(st.sampled_from(YK_EVENTS))
    amount = draw(money())
    notification = yookassa_notification(event, str(draw(st.uuids())), amount, YOOKASSA_SHOP)
    body = dumps(notification)
    attack = draw(
        st.sampled_from(
            [
                "outside",
                "outside, claiming YooKassa's address",
                "through our proxy",
                "through a local proxy",
                "our proxy itself",
                "garbage X-Forwarded-For",
                "no peer",
                "peer not an address",
                "truncated",
                "content type",
                "another shop in the URL",
                "another shop in the body",
                "shop_id twice",
                "oversize",
            ]
        )
    )
    # a replay with another amount or status from outside changes nothing of the verdict
    change = draw(st.sampled_from(["none", "changed amount", "changed status"]))
    if change == "changed amount":
        notification["object"]["amount"]["value"] = f"{draw(other_money(amount)):.2f}"
    elif change == "changed status":
        notification["object"]["status"] = draw(
            st.sampled_from(["succeeded", "canceled", "pending"])
        )
    changed_body = dumps(notification)
    label = f" ({change})" if change != "none" else ""
    outside = Expect(403, (YK_OUTSIDE,))
    if attack == "outside":
        return Forgery(
            attack + label, yookassa_delivery(changed_body, draw(outside_ips())), outside
        )
    if attack == "outside, claiming YooKassa's address":
        forwarded = ", ".join(draw(st.lists(yookassa_ips(), min_size=1, max_size=3)))
        delivery = yookassa_delivery(changed_body, draw(outside_ips()), forwarded)
        return Forgery(attack + label, delivery, outside)
    if attack in ("through our proxy", "through a local proxy"):
        # the proxy appends the address it saw; whatever the sender wrote stays on the left
        claimed = draw(st.lists(yookassa_ips(), min_size=1, max_size=2))
        forwarded = ", ".join([*claimed, draw(outside_ips())])
        peer = draw(proxy_ips()) if attack == "through our proxy" else "127.0.0.1"
        return Forgery(attack + label, yookassa_delivery(changed_body, peer, forwarded), outside)
    if attack == "our proxy itself":
        return Forgery(attack + label, yookassa_delivery(changed_body, draw(proxy_ips())), outside)
    if attack == "garbage X-Forwarded-For":
        junk = draw(st.sampled_from(["unknown", "_hidden", "not-an-ip", "999.1.1.1", "[::1"]))
        forwarded = f"{draw(yookassa_ips())}, {junk}"
        delivery = yookassa_delivery(changed_body, draw(proxy_ips()), forwarded)
        return Forgery(attack + label, delivery, Expect(403, (YK_BAD_HOP, YK_OUTSIDE)))
    if attack == "no peer":
        return Forgery(
            attack + label, yookassa_delivery(changed_body, ""), Expect(403, (YK_NO_PEER,))
        )
    if attack == "peer not an address":
        peer = draw(st.sampled_from(["testclient", "localhost", "yookassa.ru", "unix:/tmp/s"]))
        return Forgery(
            attack + label, yookassa_delivery(changed_body, peer), Expect(403, (YK_NOT_IP,))
        )
    # from YooKassa's own networks: what is wrong is in the request itself
    origin, hops = draw(yookassa_genuine_routes())
    if attack == "truncated":
        delivery = yookassa_delivery(truncated(draw, body), origin, hops)
        return Forgery(attack, delivery, Expect(400, (YK_MALFORMED,)))
    if attack == "content type":
        other, content_type = draw(reencoded(flat(notification), notification, JSON))
        delivery = yookassa_delivery(other, origin, hops, content_type=content_type)
        return Forgery(f"{attack}: {content_type}", delivery, Expect(400, (YK_MALFORMED,)))
    other_shop = draw(st.from_regex(r"\A[0-9]{3,8}\Z").filter(lambda s: s != YOOKASSA_SHOP))
    if attack == "another shop in the URL":
        query = urlencode([("shop_id", other_shop)])
        expect = Expect(
            401,
            (
                f"signature: notification for YooKassa shop {YOOKASSA_SHOP} arrived at the URL "
                f"of shop {other_shop}",
                f"signature: notification is for YooKassa shop {other_shop}, which no school has",
            ),
        )
        return Forgery(attack, yookassa_delivery(body, origin, hops, query), expect)
    if attack == "another shop in the body":
        if event.startswith("refund."):  # a refund names no shop: say it in the URL
            delivery = yookassa_delivery(body, origin, hops, urlencode([("shop_id", other_shop)]))
        else:
            notification["object"]["recipient"]["account_id"] = other_shop
            delivery = yookassa_delivery(dumps(notification), origin, hops)
        expect = Expect(
            401,
            (f"signature: notification is for YooKassa shop {other_shop}, which no school has",),
        )
        return Forgery(attack, delivery, expect)
    if attack == "shop_id twice":
        query = urlencode([("shop_id", YOOKASSA_SHOP), ("shop_id", other_shop)])
        expect = Expect(400, ("malformed: notification URL names shop_id more than once",))
        return Forgery(attack, yookassa_delivery(body, origin, hops, query), expect)
    return oversize(draw, yookassa_delivery(body, origin, hops))
