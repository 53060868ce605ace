"""What in a payment's reference may name an order."""

from __future__ import annotations

import pytest

from schoolsync.reconciliation.contacts import reference_keys


@pytest.mark.parametrize(
    ("reference", "number"),
    [
        ("Оплата заказа №1002", "1002"),
        ("Оплата заказа 1002", "1002"),
        ("Заказ № 4100123, курс", "4100123"),
        ("order #12345", "12345"),
        ("Order No. 12345", "12345"),
        ("N12345 оплата", "12345"),
        ("оплата по №4100123 и №4100124", "4100124"),
    ],
)
def test_a_number_after_a_marker_is_an_order_number(reference: str, number: str) -> None:
    assert number in reference_keys(reference, min_digits=4)


@pytest.mark.parametrize(
    "reference",
    [
        "Оплата за март 2026",
        "за 2 урока",
        "Оплата 12 уроков по 2500",
        "Сбербанк онлайн 4100123",
        "заказ 12",  # shorter than the minimum
        "в 2026 году",
    ],
)
def test_other_numbers_are_not_order_numbers(reference: str) -> None:
    assert [key for key in reference_keys(reference, min_digits=4) if key.isdigit()] == []


def test_the_whole_reference_is_always_a_key_and_the_minimum_is_configurable() -> None:
    assert reference_keys(" 12 ", min_digits=4) == ("12",)  # an order id as the whole field
    assert "12" in reference_keys("заказ 12", min_digits=2)
    assert "gc-12345" in reference_keys("Оплата gc-12345", min_digits=4)
    assert reference_keys(None, min_digits=4) == reference_keys("  ", min_digits=4) == ()
