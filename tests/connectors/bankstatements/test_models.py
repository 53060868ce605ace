from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from schoolsync.connectors.bankstatements.models import (
    BadValue,
    clean_inn,
    find_order_number,
    line_id,
    parse_amount,
    parse_date,
)


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("12354.00", "12354.00"),
        ("12354,00", "12354.00"),
        ("100.5", "100.50"),
        ("450000.0", "450000.00"),
        ("1 500,50", "1500.50"),
        ("1\u00a0500,50", "1500.50"),
        ("-349,90", "-349.90"),
        ("\u2212349,90", "-349.90"),
        ("+2500", "2500.00"),
        ("1,500.50", "1500.50"),
        ("1.500,50", "1500.50"),
        ("2500,00 ₽", "2500.00"),
        ("2500.00 RUB", "2500.00"),
    ],
)
def test_parse_amount(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)
    assert str(parse_amount(text)) == amount


@pytest.mark.parametrize("text", ["", "abc", "12.3.4", "1.234", "2 5OO", "12,345"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(BadValue):
        parse_amount(text)


@pytest.mark.parametrize(
    "text", ["09.12.2015", "2015-12-09", "09.12.15", "09.12.2015 10:33:20", "2015-12-09T10:33:20"]
)
def test_parse_date(text: str) -> None:
    assert parse_date(text) == date(2015, 12, 9)


@pytest.mark.parametrize("text", ["", "35.12.2015", "завтра"])
def test_parse_date_refuses(text: str) -> None:
    with pytest.raises(BadValue):
        parse_date(text)


@pytest.mark.parametrize(
    ("purpose", "number"),
    [
        ("Оплата по заказу 12345", "12345"),
        ("Оплата заказа №12345 НДС не облагается", "12345"),
        ("заказ: 12345", "12345"),
        ("Заказ N 12345", "12345"),
        ("Order #12345", "12345"),
        ("Оплата № 12345", "12345"),
        ("#12345", "12345"),
        ("Оплата по счету № 105 от 09.12.2015, заказ 777", "777"),
        ("Оплата по счету № 105 от 09.12.2015", None),
        ("Оплата по договору № 15/2024", None),
        ("Мерчант №7612345. Дата реестра 12.03.2025", None),
        ("Оплата обучения", None),
        ("", None),
        (None, None),
    ],
)
def test_find_order_number(purpose: str | None, number: str | None) -> None:
    assert find_order_number(purpose) == number


@pytest.mark.parametrize(
    ("raw", "inn"),
    [("7701234567", "7701234567"), ("", None), ("0", None), ("000", None), (None, None)],
)
def test_clean_inn(raw: str | None, inn: str | None) -> None:
    assert clean_inn(raw) == inn


def test_line_id_is_stable_and_hides_what_it_is_made_of() -> None:
    one = line_id(
        account="40702810938000012345",
        on=date(2025, 3, 3),
        number="48",
        amount=Decimal("2500"),
        payer_inn="7701234567",
    )
    assert one == line_id(
        account="40702810938000012345",
        on=date(2025, 3, 3),
        number="48",
        amount=Decimal("2500.00"),
        payer_inn="7701234567",
        payer_name="ignored when there is a number",
    )
    assert len(one) == 32
    assert "7701234567" not in one
