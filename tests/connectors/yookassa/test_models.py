"""Wire models: the published notification samples parse, money stays exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from schoolsync.connectors.yookassa.models import Amount, Payment, PaymentList
from schoolsync.connectors.yookassa.webhooks import parse_notification
from schoolsync.core.domain import Money

FIXTURES = Path(__file__).parents[2] / "fixtures" / "yookassa"


def test_the_waiting_for_capture_sample_parses() -> None:
    notification = parse_notification(
        (FIXTURES / "payment_waiting_for_capture_notification.json").read_bytes()
    )
    assert notification.event == "payment.waiting_for_capture"
    assert notification.kind == "payment"
    payment = notification.object
    assert isinstance(payment, Payment)
    assert payment.id == "22d6d597-000f-5000-9000-145f6df21d6f"
    assert (payment.status, payment.paid, payment.test) == ("waiting_for_capture", True, False)
    assert payment.amount.money == Money(amount=Decimal("2.00"), currency="RUB")
    assert payment.created_at == datetime(2018, 7, 10, 14, 27, 54, 691000, tzinfo=UTC)
    assert payment.expires_at is not None and payment.expires_at.tzinfo is not None
    assert payment.payment_method is not None and payment.payment_method.card is not None
    assert (payment.payment_method.card.last4, payment.payment_method.card.card_type) == (
        "4444",
        "MasterCard",
    )
    assert payment.metadata == {}
    assert payment.shop_id is None and not payment.is_final


def test_the_refund_sample_parses_with_its_number_amount_exactly() -> None:
    notification = parse_notification(
        (FIXTURES / "refund_succeeded_notification.json").read_bytes()
    )
    refund = notification.object
    assert notification.event == "refund.succeeded"
    assert refund.id == "21b23b5b-000f-5061-a000-0674e49a8c10"
    assert refund.payment_id == "21b23365-000f-500b-9000-070fa3554403"  # type: ignore[union-attr]
    assert refund.amount.value == Decimal("250.0")  # type: ignore[union-attr]
    assert refund.created_at == datetime(2017, 11, 30, 15, 11, 33, tzinfo=UTC)  # type: ignore[union-attr]


def test_the_succeeded_sample_names_its_shop_and_order() -> None:
    payment = parse_notification(
        (FIXTURES / "payment_succeeded_notification.json").read_bytes()
    ).object
    assert isinstance(payment, Payment)
    assert payment.shop_id == "100500"
    assert payment.metadata == {"order_id": "72"}
    assert payment.income_amount is not None and payment.income_amount.value == Decimal("2412.50")
    assert payment.is_final


def test_a_fetched_payment_parses() -> None:
    payment = Payment.model_validate_json((FIXTURES / "payment_pending.json").read_bytes())
    assert (payment.status, payment.paid, payment.description) == ("pending", False, "Заказ №1")
    assert payment.amount.value == Decimal("100.00")


@pytest.mark.parametrize(
    ("wire", "exact"),
    [
        ("2500.00", Decimal("2500.00")),
        ("0.10", Decimal("0.10")),
        ("12345678901234567.89", Decimal("12345678901234567.89")),
        (2500, Decimal(2500)),
        (0.1, Decimal("0.1")),
    ],
)
def test_amounts_are_exact(wire: object, exact: Decimal) -> None:
    value = Amount.model_validate({"value": wire, "currency": "RUB"}).value
    assert value == exact and str(value) == str(exact)


@pytest.mark.parametrize("wire", ["2 500", "2500,00", "NaN", "Infinity", True, None, ""])
def test_amounts_that_are_not_numbers_are_refused(wire: object) -> None:
    with pytest.raises(ValidationError):
        Amount.model_validate({"value": wire, "currency": "RUB"})


def test_unknown_statuses_and_fields_do_not_break_a_page() -> None:
    page = {
        "type": "list",
        "items": [
            {
                "id": "a",
                "status": "some_new_status",
                "paid": False,
                "amount": {"value": "1.00", "currency": "RUB"},
                "created_at": "2024-01-01T00:00:00.000Z",
                "new_field": {"x": 1},
                "metadata": {"order_id": 12345, "none": None},
            }
        ],
    }
    parsed = PaymentList.model_validate_json(json.dumps(page))
    assert parsed.items[0].status == "some_new_status"
    assert parsed.items[0].metadata == {"order_id": "12345"}
    assert parsed.next_cursor is None
