"""The order mirror as the engine reads it (``mappings.reconciliation.order_in``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.mappings.reconciliation import order_in


def mirrored(customer: Customer) -> Order:
    return Order(
        platform="getcourse",
        account="school",
        number="4100123",
        status=OrderStatus.NEW,
        cost=Money(amount=Decimal(2500)),
        customer=customer,
        created_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )


def test_the_name_is_the_customers_name_never_the_email_or_phone() -> None:
    nameless = order_in(
        mirrored(Customer(email="ivan.petrov@mail.ru", phone="+79231112233")), unpaid_orders=True
    )
    assert nameless is not None and nameless.name is None
    assert nameless.email == "ivan.petrov@mail.ru"
    named = order_in(
        mirrored(Customer(email="ivan.petrov@mail.ru", first_name="Иван", last_name="Петров")),
        unpaid_orders=True,
    )
    assert named is not None and named.name == "Петров Иван"
    first_only = order_in(mirrored(Customer(first_name="Иван")), unpaid_orders=True)
    assert first_only is not None and first_only.name == "Иван"
