"""The payments ledger on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schoolsync.core.db import Database
from schoolsync.core.domain import Money
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores.payments import NewPayment


def payment(status: str = ledger.SUCCEEDED, **extra: object) -> NewPayment:
    return NewPayment(  # type: ignore[arg-type]
        source="yookassa",
        external_id="2f5a",
        amount=Money(amount=Decimal("1500.50")),
        status=status,
        **extra,
    )


def test_a_payment_is_stored_once_in_kopecks_and_only_its_status_moves(any_db: Database) -> None:
    with any_db.write() as conn:
        first = ledger.record(conn, "default", payment(ledger.PENDING))
        again = ledger.record(conn, "default", payment(ledger.PENDING))
        paid = ledger.record(conn, "default", payment(ledger.SUCCEEDED))
        twice = ledger.record(conn, "default", payment(ledger.SUCCEEDED))
        row = ledger.get(conn, first.id)
    assert (first.created, first.became_paid) == (True, False)
    assert (again.created, again.became_paid) == (False, False)
    assert (paid.id, paid.became_paid, twice.became_paid) == (first.id, True, False)
    assert row is not None and row["amount_minor"] == 150050 and row["status"] == "succeeded"
    assert ledger.amount_of(row) == Money(amount=Decimal("1500.50"))


def test_long_fields_from_a_source_fit_on_every_database(any_db: Database) -> None:
    with any_db.write() as conn:
        recorded = ledger.record(
            conn, "default", payment(reference="x" * 500, payer_name="Я" * 300)
        )
        row = ledger.get(conn, recorded.id)
    assert row is not None and len(row["reference"]) == 120 and len(row["payer_name"]) == 200


def test_a_full_refund_makes_the_payment_refunded_once(any_db: Database) -> None:
    with any_db.write() as conn:
        recorded = ledger.record(conn, "default", payment())
        row = ledger.get(conn, recorded.id)
        assert row is not None
        half = Money(amount=Decimal("750.25"))
        assert ledger.record_refund(
            conn, "default", payment_row=row, external_id="r1", amount=half, status="done", data={}
        )
        assert not ledger.record_refund(
            conn, "default", payment_row=row, external_id="r1", amount=half, status="done", data={}
        )
        after_half = ledger.get(conn, recorded.id)
        ledger.record_refund(
            conn, "default", payment_row=row, external_id="r2", amount=half, status="done", data={}
        )
        after_all = ledger.get(conn, recorded.id)
    assert after_half is not None and after_half["status"] == "succeeded"
    assert after_all is not None and after_all["status"] == "refunded"


def test_a_fraction_of_a_kopeck_is_refused() -> None:
    with pytest.raises(ValueError, match="smallest unit"):
        Money(amount=Decimal("10.005")).minor  # noqa: B018
