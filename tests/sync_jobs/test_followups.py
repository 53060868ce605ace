"""W8 with a controllable clock against the amoCRM sandbox: a payment link sent yesterday and
not paid gives its manager one task; paid in the meantime, none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.stores import orders as order_store
from schoolsync.sync_jobs.services.followups import followups_sweep
from tests.sync_jobs.test_payments import SCHOOL, Setup, record, setup, transfer

__all__ = ["setup"]


def link_sent(setup: Setup, number: str) -> None:
    """The manager took the order and sent the payment link (GetCourse's callback says so)."""
    with setup.db.write() as conn:
        data = conn.execute(
            sa.select(orders_table.c.data).where(orders_table.c.number == number)
        ).scalar_one()
        order = Order.model_validate(data).model_copy(
            update={"status": OrderStatus.IN_WORK, "payment_link": f"https://pay/{number}"}
        )
        order_store.upsert_many(conn, SCHOOL.id, [order], push=False)


def tasks(setup: Setup, lead_id: int) -> list[dict[str, Any]]:
    found = setup.amo.get(
        "/api/v4/tasks",
        params={"filter[entity_id][]": lead_id},
        headers={"Authorization": "Bearer pay-token"},
    )
    return [] if found.status_code == 204 else list(found.json()["_embedded"]["tasks"])


def test_a_link_unpaid_for_a_day_gives_one_task_and_a_paid_one_none(setup: Setup) -> None:
    unpaid = setup.order(email="slow@example.org")
    paid = setup.order(email="quick@example.org")
    link_sent(setup, unpaid["number"])
    link_sent(setup, paid["number"])
    record(setup.ctx, SCHOOL.id, transfer("tg:q", paid["cost"], reference=paid["number"]))
    setup.settle_all()
    now = datetime.now(UTC)

    assert followups_sweep(setup.ctx, SCHOOL.id, now=now + timedelta(hours=23)) == 0
    assert followups_sweep(setup.ctx, SCHOOL.id, now=now + timedelta(hours=25)) == 1
    assert followups_sweep(setup.ctx, SCHOOL.id, now=now + timedelta(hours=26)) == 0

    made = tasks(setup, int(unpaid["lead_id"]))
    assert len(made) == 1
    assert made[0]["text"].startswith("Дожать: вчера отправлена ссылка на оплату")
    assert tasks(setup, int(paid["lead_id"])) == []
