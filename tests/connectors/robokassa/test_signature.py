"""Robokassa signatures, each computed here by hand from the documented formula:
``OutSum:InvId:Password#2[:Shp_...]`` for ResultURL, ``MerchantLogin:OutSum:InvId:Password#1``
for payment links (docs.robokassa.ru; see tests/fixtures/robokassa/README.md)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import ValidationError

from schoolsync.connectors.inbound import RawRequest
from schoolsync.connectors.robokassa import (
    HASHES,
    RobokassaAccount,
    RobokassaLinks,
    read_params,
    verify_result,
)
from schoolsync.core.errors import ConfigError, MalformedInputError, VerificationError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "robokassa"
PASSWORD2 = "password2-for-tests"
TEST_PASSWORD2 = "test-password2-for-tests"


def by_hand(algorithm: str, text: str) -> str:
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def notification(
    algorithm: str = "md5",
    *,
    out_sum: str = "2500.000000",
    inv_id: str = "12345",
    password: str = PASSWORD2,
    shp_text: str = "",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    signature = by_hand(algorithm, f"{out_sum}:{inv_id}:{password}{shp_text}")
    return {"OutSum": out_sum, "InvId": inv_id, "SignatureValue": signature, **(extra or {})}


def changed_one_byte(signature: str) -> str:
    first = "0" if signature[0] != "0" else "1"
    return first + signature[1:]


@pytest.mark.parametrize("algorithm", HASHES)
def test_a_hand_computed_signature_verifies_for_every_hash(algorithm: str) -> None:
    params = notification(algorithm, extra={"Fee": "97.50", "EMail": "a@example.com"})
    result = verify_result(params, PASSWORD2, None, algorithm)
    assert result.out_sum == Decimal("2500")
    assert result.out_sum_raw == "2500.000000"
    assert result.inv_id == 12345
    assert result.fee == Decimal("97.50")
    assert result.email == "a@example.com"
    assert result.is_test is False


@pytest.mark.parametrize("algorithm", HASHES)
def test_one_changed_byte_fails(algorithm: str) -> None:
    params = notification(algorithm)
    params["SignatureValue"] = changed_one_byte(params["SignatureValue"])
    with pytest.raises(VerificationError):
        verify_result(params, PASSWORD2, None, algorithm)


@pytest.mark.parametrize("field", ["OutSum", "InvId"])
def test_a_changed_field_fails(field: str) -> None:
    params = notification()
    params[field] = params[field].replace("5", "6", 1)
    with pytest.raises(VerificationError):
        verify_result(params, PASSWORD2, None, "md5")


def test_the_hash_is_compared_in_any_case() -> None:
    params = notification("sha256")
    params["SignatureValue"] = params["SignatureValue"].upper()
    assert verify_result(params, PASSWORD2, None, "sha256").inv_id == 12345


def test_another_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError):
        verify_result(notification(), PASSWORD2, None, "crc32")
    with pytest.raises(ValidationError):
        RobokassaAccount(
            merchant_login="shop", password1_env="p1", password2_env="p2", hash="sha224"
        )


def test_the_out_sum_is_signed_as_received() -> None:
    # the link said 100.00; Robokassa notifies 100.000000 and signs that
    params = notification(out_sum="100.000000")
    assert verify_result(params, PASSWORD2, None, "md5").out_sum == Decimal("100.00")
    reformatted = dict(params, OutSum="100.00")
    with pytest.raises(VerificationError):
        verify_result(reformatted, PASSWORD2, None, "md5")


def test_shp_pairs_are_signed_sorted_case_insensitively() -> None:
    # the official WordPress plugin signs shp_label before Shp_merchant_id
    shp = {"Shp_order_id": "42", "shp_label": "official", "Shp_merchant_id": "shop"}
    text = ":shp_label=official:Shp_merchant_id=shop:Shp_order_id=42"
    params = notification(shp_text=text, extra=shp)
    result = verify_result(params, PASSWORD2, None, "md5")
    assert result.shp == {"order_id": "42", "label": "official", "merchant_id": "shop"}

    # byte order (capitals first) is not what Robokassa signs
    ascii_order = ":Shp_merchant_id=shop:Shp_order_id=42:shp_label=official"
    wrong = notification(shp_text=ascii_order, extra=shp)
    with pytest.raises(VerificationError):
        verify_result(wrong, PASSWORD2, None, "md5")


def test_a_shp_pair_left_out_of_the_signature_fails() -> None:
    params = notification(shp_text=":Shp_order=1", extra={"Shp_order": "1", "Shp_added": "x"})
    with pytest.raises(VerificationError):
        verify_result(params, PASSWORD2, None, "md5")


def test_test_mode_uses_the_test_pair() -> None:
    params = notification(password=TEST_PASSWORD2, extra={"IsTest": "1"})
    result = verify_result(params, PASSWORD2, TEST_PASSWORD2, "md5")
    assert result.is_test is True

    live_signed = notification(password=PASSWORD2, extra={"IsTest": "1"})
    with pytest.raises(VerificationError):
        verify_result(live_signed, PASSWORD2, TEST_PASSWORD2, "md5")

    test_signed_without_flag = notification(password=TEST_PASSWORD2)
    with pytest.raises(VerificationError):
        verify_result(test_signed_without_flag, PASSWORD2, TEST_PASSWORD2, "md5")

    with pytest.raises(VerificationError, match="without test passwords"):
        verify_result(params, PASSWORD2, None, "md5")


def test_missing_fields_are_named() -> None:
    with pytest.raises(MalformedInputError) as raised:
        verify_result({"InvId": "5"}, PASSWORD2, None, "md5")
    assert "OutSum" in raised.value.message
    assert "SignatureValue" in raised.value.message
    assert "InvId" not in raised.value.message


def test_field_names_are_case_insensitive() -> None:
    params = notification()
    lowered = {key.lower(): value for key, value in params.items()}
    assert verify_result(lowered, PASSWORD2, None, "md5").inv_id == 12345


def test_a_signed_but_unreadable_amount_is_malformed() -> None:
    with pytest.raises(MalformedInputError, match="OutSum"):
        verify_result(notification(out_sum="1,5"), PASSWORD2, None, "md5")


def test_the_password_is_never_in_the_error() -> None:
    params = notification(password="wrong-password")
    with pytest.raises(VerificationError) as raised:
        verify_result(params, PASSWORD2, None, "md5")
    assert PASSWORD2 not in str(raised.value)


def test_the_stored_notification_verifies() -> None:
    body = (FIXTURES / "result_notification.txt").read_bytes()
    params = read_params(RawRequest(body=body))
    result = verify_result(params, PASSWORD2, None, "md5")
    assert (result.inv_id, result.out_sum) == (12345, Decimal("2500"))
    assert result.shp == {"order": "GC-12345", "label": "schoolsync"}
    assert result.payment_method == "BankCard"
    assert result.inc_curr_label == "BankCardPSR"
    assert "buyer@example.com" not in repr(result)


# --- payment links (Password #1) --------------------------------------------------------------


def account(hash_name: str = "md5", login: str = "test") -> RobokassaAccount:
    return RobokassaAccount.model_validate(
        {
            "merchant_login": login,
            "password1_env": "p1",
            "password2_env": "p2",
            "test_password1_env": "t1",
            "test_password2_env": "t2",
            "hash": hash_name,
        }
    )


def link_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_the_documented_link_example() -> None:
    # docs.robokassa.ru/code-examples: test:5.12:5:securepass1 (the MD5 computed locally)
    reference = (FIXTURES / "reference.txt").read_text()
    assert "base_string=test:5.12:5:securepass1" in reference
    assert "computed_locally_md5_lowercase_hex=d33ad746fefb057705993fc6662c5beb" in reference
    url = RobokassaLinks(account(), "securepass1").payment_link(Decimal("5.12"), 5, "Покупка")
    params = link_params(url)
    assert url.startswith("https://auth.robokassa.ru/Merchant/Index.aspx?")
    assert params["SignatureValue"] == "d33ad746fefb057705993fc6662c5beb"
    assert params["MerchantLogin"] == "test"
    assert params["OutSum"] == "5.12"
    assert params["InvId"] == "5"
    assert params["Description"] == "Покупка"
    assert "IsTest" not in params


@pytest.mark.parametrize("algorithm", HASHES)
def test_link_signature_with_shp_for_every_hash(algorithm: str) -> None:
    links = RobokassaLinks(account(algorithm, "my-school"), "pass-one")
    url = links.payment_link(
        Decimal("2500"), 77, "Курс", shp={"order": "GC-1", "school": "main"}, email="a@b.ru"
    )
    params = link_params(url)
    expected = by_hand(algorithm, "my-school:2500.00:77:pass-one:Shp_order=GC-1:Shp_school=main")
    assert params["SignatureValue"] == expected
    assert params["Shp_order"] == "GC-1"
    assert params["Shp_school"] == "main"
    assert params["Email"] == "a@b.ru"


def test_a_test_link_uses_the_test_password() -> None:
    links = RobokassaLinks(account(), "live-one", test_password1="test-one")
    params = link_params(links.payment_link(Decimal("10.5"), 3, "x", is_test=True))
    assert params["IsTest"] == "1"
    assert params["SignatureValue"] == by_hand("md5", "test:10.50:3:test-one")
    with pytest.raises(ValueError, match="test"):
        RobokassaLinks(account(), "live-one").payment_link(Decimal(1), 1, "x", is_test=True)


@pytest.mark.parametrize(
    ("amount", "inv_id", "description"),
    [
        (Decimal("0"), 1, "x"),
        (Decimal("-5"), 1, "x"),
        (Decimal("1.005"), 1, "x"),
        (Decimal("1"), 0, "x"),
        (Decimal("1"), 2**31, "x"),
        (Decimal("1"), 1, ""),
        (Decimal("1"), 1, "x" * 101),
    ],
)
def test_links_robokassa_would_refuse_are_not_made(
    amount: Decimal, inv_id: int, description: str
) -> None:
    with pytest.raises(ValueError):
        RobokassaLinks(account(), "p").payment_link(amount, inv_id, description)


def test_the_test_passwords_go_in_pairs() -> None:
    with pytest.raises(ValidationError, match="together"):
        RobokassaAccount(
            merchant_login="shop", password1_env="p1", password2_env="p2", test_password1_env="t"
        )


def test_the_passwords_stay_out_of_repr() -> None:
    links = RobokassaLinks(account(), "secret-pass-1", test_password1="secret-pass-t")
    assert "secret-pass" not in repr(links)
