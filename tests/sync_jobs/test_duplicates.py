"""W3 against the GetCourse and amoCRM sandboxes: the later of two unpaid orders for one product
becomes «Ложный», the earlier is taken into work, a paid order is never touched, undo restores."""

from __future__ import annotations

import sqlalchemy as sa

from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.db.tables import outbox
from schoolsync.core.errors import NotFoundError
from schoolsync.sync_jobs.services.duplicates import duplicates_sweep, undo_duplicate
from tests.sync_jobs.test_payments import SCHOOL, Setup, record, setup, transfer

__all__ = ["setup"]


def statuses(setup: Setup, *numbers: str) -> list[str]:
    return [setup.gc.get(f"/_sandbox/orders/{n}").json()["status"] for n in numbers]


def mirrored(setup: Setup, number: str) -> str:
    with setup.db.read() as conn:
        return str(
            conn.execute(
                sa.select(orders_table.c.status).where(orders_table.c.number == number)
            ).scalar_one()
        )


def test_the_later_duplicate_becomes_false_and_undo_restores_both(setup: Setup) -> None:
    first = setup.order(email="twin@example.org")
    second = setup.order(email="twin@example.org", product=first["offer"]["title"])

    assert duplicates_sweep(setup.ctx, SCHOOL.id) == 1
    assert duplicates_sweep(setup.ctx, SCHOOL.id) == 0  # once

    assert statuses(setup, first["number"], second["number"]) == ["in_work", "false"]
    assert mirrored(setup, second["number"]) == "false"
    with setup.db.read() as conn:
        lines = conn.execute(sa.select(outbox.c.text)).scalars().all()
    assert len(lines) == 1 and f"№{second['number']}</b> помечен «Ложный»" in lines[0]
    crm = setup.ctx.platforms.of(SCHOOL.id).amocrm  # type: ignore[union-attr]
    assert crm is not None
    notes = crm.client.notes("leads", int(second["lead_id"]))
    assert any(f"Дубль заказа №{first['number']}" in n.text for n in notes)

    undo_duplicate(setup.ctx, SCHOOL.id, second["number"], who="test")

    assert statuses(setup, first["number"], second["number"]) == ["new", "new"]
    assert duplicates_sweep(setup.ctx, SCHOOL.id) == 0  # a person decided: it stays so
    try:
        undo_duplicate(setup.ctx, SCHOOL.id, second["number"], who="test")
    except NotFoundError as exc:
        assert "undone already" in exc.message
    else:
        raise AssertionError("a second undo must be refused")


def test_with_the_earlier_order_paid_nothing_changes(setup: Setup) -> None:
    first = setup.order(email="paid@example.org")
    second = setup.order(email="paid@example.org", product=first["offer"]["title"])
    record(setup.ctx, SCHOOL.id, transfer("tg:p", first["cost"], reference=first["number"]))
    setup.settle_all()  # the first is paid (GetCourse and the mirror say so)
    with setup.db.write() as conn:
        conn.execute(
            sa.update(orders_table)
            .where(orders_table.c.number == first["number"])
            .values(status="payed")  # as GetCourse's callback leaves it
        )
        row = conn.execute(
            sa.select(orders_table.c.data).where(orders_table.c.number == first["number"])
        ).scalar_one()
        conn.execute(
            sa.update(orders_table)
            .where(orders_table.c.number == first["number"])
            .values(data={**row, "status": "payed"})
        )

    assert duplicates_sweep(setup.ctx, SCHOOL.id) == 0
    assert statuses(setup, first["number"], second["number"]) == ["payed", "new"]
