from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from schoolsync.connectors.getcourse.callbacks import (
    CALLBACK_URL_TEMPLATE,
    GetCourseCallbacks,
    callback_url,
    parse_callback,
)
from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.core.domain import Money
from schoolsync.core.errors import MalformedInputError, VerificationError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "getcourse"
PAID = (FIXTURES / "callback_order_paid.query").read_text(encoding="utf-8")
UNSUBSTITUTED = (FIXTURES / "callback_unsubstituted.query").read_text(encoding="utf-8")
SECRET_A, SECRET_B = "S3cr3t-school-a", "another-secret-b"
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture
def source() -> GetCourseCallbacks:
    return GetCourseCallbacks(
        {SECRET_A: "school-a", SECRET_B: "school-b"},
        timezones={"school-b": "Asia/Novosibirsk"},
    )


def query(**values: str) -> str:
    return urlencode({"secret": SECRET_A, **values})


def test_is_a_webhook_source(source: GetCourseCallbacks) -> None:
    accepted: WebhookSource = source
    assert accepted.name == "getcourse"


def test_a_good_callback_is_accepted_for_its_school(source: GetCourseCallbacks) -> None:
    event = source.accept(RawRequest(body=b"", query=PAID))

    assert event.school == "school-a"
    assert event.dedup_key == "30046:payed:12000.00"


def test_parse_reads_every_documented_parameter() -> None:
    order = parse_callback(PAID, MSK)

    assert (order.id, order.number, order.status) == ("184467391", "30046", "payed")
    assert order.cost == Money(amount=Decimal(12000))
    assert order.payed == Money(amount=Decimal(12000))
    assert order.email == "vasiliy.pupkin@getcourse.ru"
    assert order.phone == "+79231234567"  # "+" survived URL decoding
    assert (order.first_name, order.last_name) == ("Василий", "Пупкин")
    assert order.positions == "Как заработать первый доллар"
    assert order.product == order.positions  # no "product" parameter: positions stand in
    assert order.payment_link and order.payment_link.startswith("https://school.getcourse.ru/")
    assert order.created_at == datetime(2026, 11, 23, 10, 15, tzinfo=MSK)


@pytest.mark.parametrize(
    "secret_part", ["secret=wrong", "secret=", "", f"secret={SECRET_A}x", "SECRET=" + SECRET_A]
)
def test_a_wrong_or_missing_secret_is_refused_without_echoing_it(
    source: GetCourseCallbacks, secret_part: str
) -> None:
    rest = "&".join(p for p in PAID.split("&") if not p.startswith("secret="))
    with pytest.raises(VerificationError) as caught:
        source.accept(RawRequest(body=b"", query=f"{secret_part}&{rest}"))
    assert SECRET_A not in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_the_secret_picks_the_school(source: GetCourseCallbacks) -> None:
    event = source.accept(
        RawRequest(body=b"", query=urlencode({"secret": SECRET_B, "number": "5", "status": "new"}))
    )
    assert event.school == "school-b"


def test_a_callback_without_number_and_id_names_the_parameter(source: GetCourseCallbacks) -> None:
    with pytest.raises(MalformedInputError, match="'number'"):
        source.accept(RawRequest(body=b"", query=query(status="new", email="a@example.org")))


def test_the_id_alone_identifies_the_order() -> None:
    assert parse_callback(query(id="77", status="new"), MSK).dedup_key == "id:77:new:"


def test_unsubstituted_placeholders_and_empty_values_count_as_missing() -> None:
    order = parse_callback(UNSUBSTITUTED, MSK)

    assert (order.number, order.status, order.email) == ("30047", "new", "maria@example.org")
    assert order.cost is None and order.payed is None
    assert order.phone is None and order.first_name is None and order.last_name is None
    assert order.positions is None and order.payment_link is None and order.created_at is None


def test_a_placeholder_in_place_of_the_number_is_missing(source: GetCourseCallbacks) -> None:
    with pytest.raises(MalformedInputError, match="'number'"):
        source.accept(RawRequest(body=b"", query=query(id="{object.id}", number="{object.number}")))


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Завершен", "payed"),
        ("Завершён", "payed"),
        ("Частично оплачен", "part_payed"),
        ("Ложный", "false"),
    ],
)
def test_a_russian_status_name_becomes_its_code(name: str, code: str) -> None:
    assert parse_callback(query(number="1", status=name), MSK).status == code


def test_money_with_no_break_spaces_is_exact() -> None:
    order = parse_callback(
        query(number="1", cost="12\u00a0000,50", payed="1\u00a0000 руб.", left="11\u00a0000,50"),
        MSK,
    )
    assert order.cost == Money(amount=Decimal("12000.50"))
    assert order.payed == Money(amount=Decimal("1000"))
    assert order.left == Money(amount=Decimal("11000.50"))


def test_unreadable_money_or_time_names_the_parameter() -> None:
    with pytest.raises(MalformedInputError, match=r"'payed'.*'много'"):
        parse_callback(query(number="1", payed="много"), MSK)
    with pytest.raises(MalformedInputError, match="'created_at'"):
        parse_callback(query(number="1", created_at="вчера"), MSK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23 10:15:00", datetime(2026, 11, 23, 10, 15, tzinfo=MSK)),
        ("2026-11-23 10:15", datetime(2026, 11, 23, 10, 15, tzinfo=MSK)),
        ("23.11.2026 10:15", datetime(2026, 11, 23, 10, 15, tzinfo=MSK)),
        ("23.11.2026", datetime(2026, 11, 23, tzinfo=MSK)),
        ("2026-11-23T07:15:00+00:00", datetime(2026, 11, 23, 10, 15, tzinfo=MSK)),
    ],
)
def test_created_at_is_account_local(text: str, expected: datetime) -> None:
    created = parse_callback(query(number="1", created_at=text), MSK).created_at
    assert created == expected
    assert created is not None and created.tzinfo is not None


def test_post_with_empty_body_reads_the_query(source: GetCourseCallbacks) -> None:
    event = source.accept(
        RawRequest(
            body=b"", headers={"content-type": "application/x-www-form-urlencoded"}, query=PAID
        )
    )
    assert event.dedup_key == "30046:payed:12000.00"


def test_the_body_is_ignored(source: GetCourseCallbacks) -> None:
    body = urlencode({"number": "999", "status": "cancelled"}).encode()
    assert source.accept(RawRequest(body=body, query=PAID)).dedup_key == "30046:payed:12000.00"


def test_a_repeated_payment_event_dedupes_and_a_status_change_does_not(
    source: GetCourseCallbacks,
) -> None:
    paid = source.accept(
        RawRequest(body=b"", query=query(number="9", status="payed", payed="500 руб."))
    )
    again = source.accept(
        RawRequest(body=b"", query=query(number="9", status="Завершен", payed="500,00"))
    )
    refund = source.accept(
        RawRequest(body=b"", query=query(number="9", status="waiting_for_return", payed="500"))
    )
    partial = source.accept(
        RawRequest(body=b"", query=query(number="9", status="payed", payed="200"))
    )

    assert paid.dedup_key == again.dedup_key
    assert len({paid.dedup_key, refund.dedup_key, partial.dedup_key}) == 3


def test_an_empty_secret_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        GetCourseCallbacks({"": "school-a"})


def test_the_documented_url_carries_every_parameter_we_read() -> None:
    url = callback_url("https://sync.school.ru/webhooks/getcourse", "a b&c")
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["secret"] == "a b&c"
    assert params["number"] == "{object.number}"
    assert params["payed"] == "{object.payed_money}"
    assert CALLBACK_URL_TEMPLATE.endswith(urlsplit(url).query.split("&", 1)[1])
    # what GetCourse would send for that URL without substituting anything is "no order"
    with pytest.raises(MalformedInputError):
        parse_callback(urlsplit(url).query, MSK)
