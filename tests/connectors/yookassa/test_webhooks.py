"""YooKassa notifications: the source address (YooKassa's networks, trusted proxies and
X-Forwarded-For), the body, the shop and school, the dedup key. No network calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.connectors.yookassa import (
    YooKassaAccount,
    YooKassaNotifications,
    YooKassaRoute,
    parse_notification,
)
from schoolsync.connectors.yookassa.config import parse_networks
from schoolsync.core.errors import ForbiddenSourceError, MalformedInputError, VerificationError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "yookassa"
WAITING = (FIXTURES / "payment_waiting_for_capture_notification.json").read_bytes()
SUCCEEDED = (FIXTURES / "payment_succeeded_notification.json").read_bytes()
REFUND = (FIXTURES / "refund_succeeded_notification.json").read_bytes()
YOOKASSA_IP = "77.75.153.10"  # inside 77.75.153.0/25
YOOKASSA_IPV6 = "2a02:5180:0:1509::42"


def route(school: str = "fitness", shop: str = "100500", **account: Any) -> YooKassaRoute:
    return YooKassaRoute.for_account(
        school, YooKassaAccount(shop_id=shop, secret_key_env="KEY", **account)
    )


def request(
    body: bytes = SUCCEEDED,
    remote: str | None = YOOKASSA_IP,
    forwarded: str | None = None,
    query: str = "",
) -> RawRequest:
    headers = {"content-type": "application/json"}
    if forwarded is not None:
        headers["x-forwarded-for"] = forwarded
    return RawRequest(body=body, headers=headers, query=query, remote_addr=remote)


def test_is_a_webhook_source() -> None:
    source: WebhookSource = YooKassaNotifications([route()])
    assert source.name == "yookassa"


@pytest.mark.parametrize("body", [WAITING, SUCCEEDED, REFUND])
def test_the_samples_are_accepted_from_yookassa(body: bytes) -> None:
    event = YooKassaNotifications([route()]).accept(request(body))
    assert event.school == "fitness"


def test_dedup_key_is_shop_event_and_object() -> None:
    source = YooKassaNotifications([route()])
    assert source.accept(request(SUCCEEDED)).dedup_key == (
        "yookassa:100500:payment.succeeded:22d6d597-000f-5000-9000-145f6df21d6f"
    )
    assert source.accept(request(WAITING)).dedup_key == (
        "yookassa:100500:payment.waiting_for_capture:22d6d597-000f-5000-9000-145f6df21d6f"
    )
    assert source.accept(request(REFUND)).dedup_key == (
        "yookassa:100500:refund.succeeded:21b23b5b-000f-5061-a000-0674e49a8c10"
    )


def test_a_redelivery_has_the_same_key() -> None:
    source = YooKassaNotifications([route()])
    again = json.dumps(json.loads(SUCCEEDED), ensure_ascii=True, indent=4).encode()
    assert source.accept(request(again)) == source.accept(request(SUCCEEDED))


@pytest.mark.parametrize(
    "address",
    [
        "77.75.153.0",
        "77.75.153.127",
        "77.75.156.11",
        "185.71.77.31",
        YOOKASSA_IPV6,
        "::ffff:77.75.153.10",
        "77.75.153.10:51234",
    ],
)
def test_every_published_network_is_trusted(address: str) -> None:
    assert YooKassaNotifications([route()]).accept(request(remote=address)).school == "fitness"


@pytest.mark.parametrize(
    "address",
    [
        "77.75.153.128",
        "77.75.156.12",
        "185.71.76.32",
        "127.0.0.1",
        "2a02:5180:0:1510::1",
        "10.0.0.7",
    ],
)
def test_outside_yookassa_is_refused_before_the_body_is_read(address: str) -> None:
    source = YooKassaNotifications([route()])
    with pytest.raises(ForbiddenSourceError, match=r"source address .* not in YooKassa's networks"):
        source.accept(request(b"not even json", remote=address))


@pytest.mark.parametrize("remote", [None, "", "somewhere"])
def test_an_unknown_source_is_refused(remote: str | None) -> None:
    with pytest.raises(VerificationError):
        YooKassaNotifications([route()]).accept(request(remote=remote))


def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    behind = YooKassaNotifications([route(trusted_proxies=["10.0.0.0/8"])])
    # the proxy at 10.0.0.5 says YooKassa connected to it
    assert behind.accept(request(remote="10.0.0.5", forwarded=YOOKASSA_IP)).school == "fitness"
    # anyone else saying so is not believed
    with pytest.raises(ForbiddenSourceError):
        behind.accept(request(remote="203.0.113.9", forwarded=YOOKASSA_IP))
    without = YooKassaNotifications([route()])
    with pytest.raises(ForbiddenSourceError):
        without.accept(request(remote="10.0.0.5", forwarded=YOOKASSA_IP))


def test_the_rightmost_untrusted_hop_is_the_source() -> None:
    source = YooKassaNotifications([route(trusted_proxies=["10.0.0.0/8", "192.168.0.0/16"])])
    # a forger puts YooKassa's address first; the hop our proxies saw is the forger's
    with pytest.raises(ForbiddenSourceError, match=re.escape("203.0.113.9")):
        source.accept(request(remote="10.0.0.5", forwarded=f"{YOOKASSA_IP}, 203.0.113.9"))
    # two proxies in a row: YooKassa -> 192.168.1.1 -> 10.0.0.5 -> us
    chain = f"198.51.100.1, {YOOKASSA_IP}, 192.168.1.1"
    assert source.accept(request(remote="10.0.0.5", forwarded=chain)).school == "fitness"
    # an IPv6 hop with brackets and a port
    assert source.accept(request(remote="10.0.0.5", forwarded=f"[{YOOKASSA_IPV6}]:443"))


def test_a_trusted_proxy_without_forwarded_for_is_the_source() -> None:
    source = YooKassaNotifications([route(trusted_proxies=["10.0.0.0/8"])])
    with pytest.raises(ForbiddenSourceError, match=re.escape("10.0.0.5")):
        source.accept(request(remote="10.0.0.5"))
    with pytest.raises(ForbiddenSourceError, match="not an IP address"):
        source.accept(request(remote="10.0.0.5", forwarded="unknown"))


def test_configured_networks_replace_the_default() -> None:
    local = YooKassaNotifications([route(trusted_networks=["127.0.0.1/32"])])
    assert local.accept(request(remote="127.0.0.1")).school == "fitness"
    with pytest.raises(ForbiddenSourceError):
        local.accept(request(remote=YOOKASSA_IP))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"", "empty"),
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"type": "notification", "object": {}}', "event"),
        (b'{"type": "something", "event": "payment.succeeded", "object": {"id": "x"}}', "type"),
        (
            b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "x"}}',
            "object.status",
        ),
        (
            b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "x", "status": "succeeded", "created_at": "2024-01-01T00:00:00Z", "amount": {"value": "1,5", "currency": "RUB"}}}',
            "object.amount.value",
        ),
        (
            b'{"type": "notification", "event": "refund.succeeded", "object": {"id": "x"}}',
            "object.payment_id",
        ),
    ],
)
def test_malformed_bodies_name_the_field(body: bytes, where: str) -> None:
    with pytest.raises(MalformedInputError, match=where) as raised:
        YooKassaNotifications([route()]).accept(request(body))
    assert "1,5" not in str(raised.value)


def test_other_events_parse_with_their_id() -> None:
    body = b'{"type": "notification", "event": "payout.succeeded", "object": {"id": "po-1", "status": "succeeded"}}'
    assert parse_notification(body).object.id == "po-1"
    event = YooKassaNotifications([route()]).accept(request(body))
    assert event.dedup_key == "yookassa:100500:payout.succeeded:po-1"


def test_several_schools_are_told_apart_by_the_shop() -> None:
    source = YooKassaNotifications([route("fitness", "100500"), route("languages", "200600")])
    assert source.accept(request(SUCCEEDED)).school == "fitness"
    other = json.loads(SUCCEEDED)
    other["object"]["recipient"]["account_id"] = "200600"
    event = source.accept(request(json.dumps(other).encode()))
    assert (event.school, event.dedup_key.split(":")[1]) == ("languages", "200600")
    # a refund names no shop: the notification URL does
    assert source.accept(request(REFUND, query="shop_id=200600")).school == "languages"
    with pytest.raises(MalformedInputError, match="shop_id"):
        source.accept(request(REFUND))
    # the URL of one shop, a payment of the other
    with pytest.raises(VerificationError, match="arrived at the URL"):
        source.accept(request(SUCCEEDED, query="shop_id=200600"))


def test_a_shop_no_school_has_is_refused() -> None:
    stranger = json.loads(SUCCEEDED)
    stranger["object"]["recipient"]["account_id"] = "999999"
    with pytest.raises(VerificationError, match="999999"):
        YooKassaNotifications([route()]).accept(request(json.dumps(stranger).encode()))


def test_each_school_trusts_its_own_networks() -> None:
    source = YooKassaNotifications(
        [
            route("fitness", "100500"),
            route("languages", "200600", trusted_networks=["127.0.0.1/32"]),
        ]
    )
    other = json.loads(SUCCEEDED)
    other["object"]["recipient"]["account_id"] = "200600"
    assert (
        source.accept(request(json.dumps(other).encode(), remote="127.0.0.1")).school == "languages"
    )
    with pytest.raises(ForbiddenSourceError, match="shop 100500"):
        source.accept(request(SUCCEEDED, remote="127.0.0.1"))


def test_routes_must_be_distinct_and_present() -> None:
    with pytest.raises(ValueError, match="twice"):
        YooKassaNotifications([route("a", "1"), route("b", "1")])
    with pytest.raises(ValueError, match="no YooKassa shop"):
        YooKassaNotifications([])
    with pytest.raises(ValueError, match="trusts no network"):
        YooKassaNotifications([YooKassaRoute("a", "1", networks=())])
    assert YooKassaRoute("a", "1").networks == parse_networks(
        YooKassaAccount(shop_id="1", secret_key_env="K").trusted_networks
    )
