"""Robokassa's ResultURL as a webhook source: the form or query, the shop, dedup, the reply."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import pytest

from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.connectors.robokassa import RobokassaRoute, RobokassaWebhook
from schoolsync.core.errors import MalformedInputError, VerificationError

FORM = {"content-type": "application/x-www-form-urlencoded"}


def signed(
    password: str, *, inv_id: str = "501", shp: dict[str, str] | None = None, test: bool = False
) -> list[tuple[str, str]]:
    pairs = sorted((shp or {}).items(), key=lambda p: p[0].lower())
    tail = "".join(f":{k}={v}" for k, v in pairs)
    base = f"1500.000000:{inv_id}:{password}{tail}"
    signature = hashlib.md5(base.encode()).hexdigest()  # noqa: S324 - Robokassa's default hash
    fields = [("OutSum", "1500.000000"), ("InvId", inv_id), ("SignatureValue", signature)]
    if test:
        fields.append(("IsTest", "1"))
    return fields + pairs


def post(fields: list[tuple[str, str]]) -> RawRequest:
    return RawRequest(body=urlencode(fields).encode(), headers=dict(FORM))


def get(fields: list[tuple[str, str]]) -> RawRequest:
    return RawRequest(body=b"", query=urlencode(fields))


@pytest.fixture
def one_shop() -> RobokassaWebhook:
    return RobokassaWebhook(
        [RobokassaRoute("fitness", "fit-shop", "pw2", test_password2="test-pw2")]
    )


@pytest.fixture
def two_shops() -> RobokassaWebhook:
    return RobokassaWebhook(
        [
            RobokassaRoute("fitness", "fit-shop", "fit-pw2"),
            RobokassaRoute("music", "music-shop", "music-pw2", hash="sha256"),
        ]
    )


def test_is_a_webhook_source(one_shop: RobokassaWebhook) -> None:
    checked: WebhookSource = one_shop
    assert checked.name == "robokassa"


def test_a_form_post_is_accepted(one_shop: RobokassaWebhook) -> None:
    event = one_shop.accept(post(signed("pw2")))
    assert (event.school, event.dedup_key) == ("fitness", "robokassa:fit-shop:501")


def test_a_get_with_a_query_is_accepted(one_shop: RobokassaWebhook) -> None:
    assert one_shop.accept(get(signed("pw2"))).dedup_key == "robokassa:fit-shop:501"


def test_the_reply_is_ok_and_the_invoice(one_shop: RobokassaWebhook) -> None:
    assert one_shop.success_body(post(signed("pw2", inv_id="77"))) == "OK77"
    assert RobokassaWebhook.success_body(get(signed("x", inv_id="5"))) == "OK5"
    with pytest.raises(MalformedInputError):
        RobokassaWebhook.success_body(RawRequest(body=b"OutSum=1"))


def test_a_repeated_notification_has_the_same_key(one_shop: RobokassaWebhook) -> None:
    first = one_shop.accept(post(signed("pw2")))
    assert one_shop.accept(get(signed("pw2"))) == first


def test_a_test_payment_has_its_own_key(one_shop: RobokassaWebhook) -> None:
    event = one_shop.accept(post(signed("test-pw2", test=True)))
    assert event.dedup_key == "robokassa:fit-shop:test:501"
    result = one_shop.verify(post(signed("test-pw2", test=True)))[1]
    assert result.is_test


def test_a_bad_signature_is_refused(one_shop: RobokassaWebhook) -> None:
    with pytest.raises(VerificationError) as raised:
        one_shop.accept(post(signed("guessed")))
    assert "pw2" not in str(raised.value)


def test_missing_fields_are_malformed(one_shop: RobokassaWebhook) -> None:
    with pytest.raises(MalformedInputError, match="OutSum, InvId, SignatureValue"):
        one_shop.accept(RawRequest(body=b"hello=world"))


def test_a_field_given_twice_is_refused(one_shop: RobokassaWebhook) -> None:
    fields = [*signed("pw2"), ("InvId", "502")]
    with pytest.raises(MalformedInputError, match="twice"):
        one_shop.accept(post(fields))
    fields = [*signed("pw2"), ("invid", "501")]
    with pytest.raises(MalformedInputError, match="twice"):
        one_shop.accept(post(fields))


def test_a_body_that_is_not_utf8_is_malformed(one_shop: RobokassaWebhook) -> None:
    with pytest.raises(MalformedInputError, match="UTF-8"):
        one_shop.accept(RawRequest(body=b"OutSum=\xff\xfe"))


def test_with_several_shops_the_password_finds_the_school(two_shops: RobokassaWebhook) -> None:
    assert two_shops.accept(post(signed("fit-pw2"))).school == "fitness"
    music = signed("music-pw2")
    music[2] = (
        "SignatureValue",
        hashlib.sha256(b"1500.000000:501:music-pw2").hexdigest(),
    )
    event = two_shops.accept(post(music))
    assert (event.school, event.dedup_key) == ("music", "robokassa:music-shop:501")
    with pytest.raises(VerificationError, match="none of 2 shops"):
        two_shops.accept(post(signed("nobody")))


def test_shp_school_picks_the_shop(two_shops: RobokassaWebhook) -> None:
    event = two_shops.accept(post(signed("fit-pw2", shp={"Shp_school": "fitness"})))
    assert event.school == "fitness"
    # signed by the fitness shop but claiming to be for music: music's password does not verify
    with pytest.raises(VerificationError):
        two_shops.accept(post(signed("fit-pw2", shp={"Shp_school": "music"})))
    with pytest.raises(VerificationError, match="names no school"):
        two_shops.accept(post(signed("fit-pw2", shp={"Shp_school": "nowhere"})))


def test_two_shops_with_one_password_are_ambiguous() -> None:
    source = RobokassaWebhook(
        [RobokassaRoute("a", "shop-a", "same"), RobokassaRoute("b", "shop-b", "same")]
    )
    with pytest.raises(VerificationError, match="more than one shop"):
        source.accept(post(signed("same")))


def test_routes_are_checked_when_built() -> None:
    with pytest.raises(ValueError):
        RobokassaWebhook([])
    with pytest.raises(ValueError):
        RobokassaWebhook([RobokassaRoute("a", "shop", "")])
    assert "pw-secret" not in repr(RobokassaRoute("a", "shop", "pw-secret", "tpw-secret"))
