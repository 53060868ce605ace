from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schoolsync.connectors.getcourse.money import format_money, parse_money
from schoolsync.core.domain import Money
from schoolsync.core.errors import MalformedInputError


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("12 000,00", "12000.00", "RUB"),
        ("12 000 руб.", "12000", "RUB"),
        ("12\u00a0000,50 руб.", "12000.50", "RUB"),
        ("991", "991", "RUB"),
        ("991.00", "991.00", "RUB"),
        ("1 234 567,89 ₽", "1234567.89", "RUB"),
        ("$ 50", "50", "USD"),
        ("50 USD", "50", "USD"),
        ("0", "0", "RUB"),
        ("-1 500 руб.", "-1500", "RUB"),
        ("\u2212$50", "-50", "USD"),
        ("  7,5 р.  ", "7.5", "RUB"),
        ("1\u202f000 €", "1000", "EUR"),
    ],
)
def test_reads_getcourse_amounts_exactly(text: str, amount: str, currency: str) -> None:
    money = parse_money(text)
    assert money == Money(amount=Decimal(amount), currency=currency)
    assert str(money.amount) == amount  # exponent kept: "991.00" stays two decimals


@pytest.mark.parametrize("text", ["", "   ", "\u00a0", None])
def test_no_amount_is_none(text: str | None) -> None:
    assert parse_money(text) is None


def test_default_currency_applies_only_without_one_in_the_text() -> None:
    assert parse_money("100", default_currency="KZT") == Money(amount=Decimal(100), currency="KZT")
    assert parse_money("100 руб.", default_currency="KZT") == Money(amount=Decimal(100))


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "12 00",  # not grouped by three
        "1,234",  # comma + three digits could be a thousands separator
        "1.500",
        "1.000,50",  # both separators
        "12,345.6",
        "5 XYZW",
        "$ 5 €",
        "--5",
        "12 руб. 50 коп.",
        "1,2,3",
    ],
)
def test_refuses_garbage_and_names_the_value(text: str) -> None:
    with pytest.raises(MalformedInputError) as caught:
        parse_money(text)
    assert repr(text) in str(caught.value)


def test_numbers_are_taken_exactly() -> None:
    assert parse_money(1500) == Money(amount=Decimal(1500))
    assert parse_money(Decimal("12.50")) == Money(amount=Decimal("12.50"))
    assert parse_money(64.24) == Money(amount=Decimal("64.24"))
    with pytest.raises(MalformedInputError):
        parse_money(0.1 + 0.2)  # 0.30000000000000004: more decimals than money has
    with pytest.raises(MalformedInputError):
        parse_money(True)


def test_formats_the_getcourse_way() -> None:
    assert format_money(Decimal("12000.50"), "RUB") == "12 000,50 руб."
    assert format_money(Decimal("-1234567"), "USD") == "-1 234 567 USD"
    assert format_money(Decimal("991"), nbsp=True) == "991"
    assert format_money(Decimal("1000000"), nbsp=True) == "1\u00a0000\u00a0000"


amounts = st.one_of(
    st.decimals(min_value=-(10**10), max_value=10**10, places=2),
    st.decimals(min_value=-(10**10), max_value=10**10, places=0),
    st.integers(min_value=-(10**12), max_value=10**12).map(Decimal),
)
currencies = st.sampled_from(["RUB", "USD", "EUR", "KZT", None])


@given(amount=amounts, currency=currencies, nbsp=st.booleans())
def test_format_then_parse_is_identity(amount: Decimal, currency: str | None, nbsp: bool) -> None:
    parsed = parse_money(format_money(amount, currency, nbsp=nbsp), default_currency="RUB")
    assert parsed is not None
    assert parsed.amount == amount
    assert parsed.amount.as_tuple().exponent == amount.as_tuple().exponent
    assert parsed.currency == (currency or "RUB")
