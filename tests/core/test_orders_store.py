"""The order mirror and its way to the CRM, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.tables import orders
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.stores import orders as store

SCHOOL = "default"


def order(number: str, status: OrderStatus = OrderStatus.NEW, **changes: object) -> Order:
    base = Order(
        platform="getcourse",
        account="main",
        number=number,
        status=status,
        product="Пакет Эконом",
        cost=Money(amount=Decimal("991.00")),
        customer=Customer(email="Parent@Example.org", phone="+7 (923) 123-45-67"),
    )
    return base.model_copy(update=changes)


def state(db: Database, number: str) -> dict[str, object]:
    with db.read() as conn:
        row = store.get(conn, SCHOOL, "getcourse", "main", number)
    assert row is not None
    return dict(row)


def test_a_new_order_is_pending_and_a_repeat_changes_nothing(any_db: Database) -> None:
    with any_db.write() as conn:
        assert store.upsert_many(conn, SCHOOL, [order("1")]) == 1
    first = state(any_db, "1")
    assert (first["crm_state"], first["version"]) == ("pending", 1)
    # contact details are normalised for matching
    assert first["data"]["customer"] == {
        "email": "parent@example.org",
        "phone": "+79231234567",
        "first_name": None,
        "last_name": None,
    }
    with any_db.write() as conn:
        claimed = store.claim(
            conn, SCHOOL, limit=10, claim_id="c1", stale_before=utcnow() - timedelta(minutes=10)
        )
        store.mark_synced(conn, [(claimed[0].id, claimed[0].version)], claim_id="c1")
        assert store.upsert_many(conn, SCHOOL, [order("1")]) == 0  # the same callback again
    assert state(any_db, "1")["crm_state"] == "synced"


def test_a_change_while_sending_goes_out_after_the_send(any_db: Database) -> None:
    with any_db.write() as conn:
        store.upsert_many(conn, SCHOOL, [order("2")])
        (sent,) = store.claim(
            conn, SCHOOL, limit=10, claim_id="c1", stale_before=utcnow() - timedelta(minutes=10)
        )
    with any_db.write() as conn:  # the manager took it into work meanwhile
        assert store.upsert_many(conn, SCHOOL, [order("2", OrderStatus.IN_WORK)]) == 1
    assert state(any_db, "2")["crm_state"] == "sending"
    with any_db.write() as conn:
        store.mark_synced(conn, [(sent.id, sent.version)], claim_id="c1")
    after = state(any_db, "2")
    assert (after["crm_state"], after["version"], after["status"]) == ("pending", 2, "in_work")


def test_a_push_that_lost_its_claim_cannot_mark_the_orders(any_db: Database) -> None:
    with any_db.write() as conn:
        store.upsert_many(conn, SCHOOL, [order("3")])
        (first,) = store.claim(
            conn, SCHOOL, limit=1, claim_id="old", stale_before=utcnow() - timedelta(minutes=10)
        )
        conn.execute(
            sa.update(orders).values(crm_claimed_at=utcnow() - timedelta(minutes=11))
        )  # the old push hangs; its claim goes stale and another push takes over
    with any_db.write() as conn:
        (again,) = store.claim(
            conn, SCHOOL, limit=1, claim_id="new", stale_before=utcnow() - timedelta(minutes=10)
        )
        assert again.maybe_sent_at is not None  # the old push may have reached the CRM
        store.release(conn, [first.id], claim_id="old")
        store.mark_synced(conn, [(first.id, first.version)], claim_id="old")
    assert state(any_db, "3")["crm_state"] == "sending"  # still the new push's
    with any_db.write() as conn:
        store.release(conn, [again.id], claim_id="new")
    released = state(any_db, "3")
    assert released["crm_state"] == "pending"
    assert released["crm_maybe_sent_at"] is not None  # kept for the next push to look


def test_an_export_snapshot_does_not_overwrite_a_newer_callback(any_db: Database) -> None:
    snapshot_at = utcnow()
    with any_db.write() as conn:
        store.upsert_many(conn, SCHOOL, [order("4", OrderStatus.PAYED)])  # after the snapshot
        store.upsert_many(conn, SCHOOL, [order("4")], snapshot_at=snapshot_at)
    assert state(any_db, "4")["status"] == "payed"


def test_the_creation_time_reads_back_as_the_same_instant(any_db: Database) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from schoolsync.core.clock import as_utc

    moscow = datetime(2026, 11, 23, 14, 5, tzinfo=ZoneInfo("Europe/Moscow"))
    with any_db.write() as conn:
        store.upsert_many(conn, SCHOOL, [order("5", created_at=moscow)])
    stored = state(any_db, "5")["created_at"]
    assert isinstance(stored, datetime)
    assert as_utc(stored) == moscow  # 11:05 UTC, not 14:05
