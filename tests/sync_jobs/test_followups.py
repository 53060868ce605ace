"""W8 with a controllable clock against the amoCRM sandbox: a payment link sent yesterday and
not paid gives its manager one task (and, where configured, the client one message, held back
by quiet hours and withdrawn if they pay first); paid in the meantime, none."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from schoolsync.core.config import AppConfig, School
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.db.tables import outbox
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.stores import effects, links
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


# --- the client's message (rules.followups.client_message) -----------------------------------

MOSCOW = ZoneInfo("Europe/Moscow")
CHATTY = School.model_validate(
    {**SCHOOL.model_dump(), "rules": {"followups": {"client_message": True}}}
)


def with_rules(setup: Setup, school: School) -> None:
    setup.ctx.config = AppConfig(schools=[school])


def chat_known(setup: Setup, number: str, chat_id: str, *, through_contact: bool = False) -> None:
    """The client's Telegram chat, as linked to the order (or to its amoCRM contact)."""
    with setup.db.write() as conn:
        if through_contact:
            links.put_many(
                conn,
                SCHOOL.id,
                [
                    (("getcourse", "order", number), ("amocrm", "contact", f"c{number}")),
                    (("amocrm", "contact", f"c{number}"), ("telegram", "chat", chat_id)),
                ],
            )
        else:
            links.put_many(
                conn, SCHOOL.id, [(("getcourse", "order", number), ("telegram", "chat", chat_id))]
            )


def client_messages(setup: Setup) -> list[dict[str, Any]]:
    with setup.db.read() as conn:
        rows = conn.execute(
            sa.select(outbox).where(outbox.c.kind == "followup_client").order_by(outbox.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def late_evening_after(moment: datetime) -> datetime:
    """23:30 in Moscow, the first one after ``moment`` (inside the client's quiet hours)."""
    local = moment.astimezone(MOSCOW)
    evening = datetime.combine(local.date(), time(23, 30), tzinfo=MOSCOW)
    return (evening if evening > local else evening + timedelta(days=1)).astimezone(UTC)


def test_an_unpaid_link_gives_a_task_and_a_client_message_held_until_eight(setup: Setup) -> None:
    with_rules(setup, CHATTY)
    unpaid = setup.order(email="slow@example.org")
    paid = setup.order(email="quick@example.org")
    for order in (unpaid, paid):
        link_sent(setup, order["number"])
        chat_known(setup, order["number"], f"77{order['number']}")
    record(setup.ctx, SCHOOL.id, transfer("tg:q", paid["cost"], reference=paid["number"]))
    setup.settle_all()
    sweep = late_evening_after(datetime.now(UTC) + timedelta(hours=24))

    assert followups_sweep(setup.ctx, SCHOOL.id, now=sweep) == 2  # one task, one message
    assert followups_sweep(setup.ctx, SCHOOL.id, now=sweep + timedelta(minutes=10)) == 0

    assert len(tasks(setup, int(unpaid["lead_id"]))) == 1
    assert tasks(setup, int(paid["lead_id"])) == []
    [message] = client_messages(setup)
    assert message["key"] == f"followup-client:{unpaid['number']}"
    assert message["chat_id"] == f"77{unpaid['number']}" and message["audience"] == "client"
    assert "получилось оплатить" in message["text"]
    assert f"https://pay/{unpaid['number']}" in message["text"]
    morning = datetime.combine(
        sweep.astimezone(MOSCOW).date() + timedelta(days=1), time(8, 0), tzinfo=MOSCOW
    )
    assert message["not_before"].replace(tzinfo=UTC) == morning.astimezone(UTC)
    assert message["state"] == "pending"


def test_a_message_held_for_the_morning_is_withdrawn_when_the_order_is_paid_at_night(
    setup: Setup,
) -> None:
    with_rules(setup, CHATTY)
    order = setup.order(email="night@example.org")
    link_sent(setup, order["number"])
    chat_known(setup, order["number"], "4242", through_contact=True)
    sweep = late_evening_after(datetime.now(UTC) + timedelta(hours=24))
    assert followups_sweep(setup.ctx, SCHOOL.id, now=sweep) == 2
    assert client_messages(setup)[0]["chat_id"] == "4242"

    # paid at midnight; the next sweep (before the 08:00 the message waits for) withdraws it
    record(setup.ctx, SCHOOL.id, transfer("tg:n", order["cost"], reference=order["number"]))
    setup.settle_all()
    assert followups_sweep(setup.ctx, SCHOOL.id, now=sweep + timedelta(hours=1)) == 0

    [message] = client_messages(setup)
    assert message["state"] == "cancelled"


def test_a_client_we_cannot_reach_gets_no_message_and_the_task_is_made(setup: Setup) -> None:
    with_rules(setup, CHATTY)
    order = setup.order(email="nochat@example.org")
    link_sent(setup, order["number"])
    now = datetime.now(UTC)

    for hours in (25, 26, 27):
        followups_sweep(setup.ctx, SCHOOL.id, now=now + timedelta(hours=hours))

    assert len(tasks(setup, int(order["lead_id"]))) == 1
    assert client_messages(setup) == []
    # decided once: the chat is not looked for (nor logged) on every sweep
    with setup.db.read() as conn:
        assert effects.exists(conn, f"followups:client:{SCHOOL.id}:{order['number']}")


def test_without_client_message_configured_no_client_is_written_to(setup: Setup) -> None:
    order = setup.order(email="quiet@example.org")
    link_sent(setup, order["number"])
    chat_known(setup, order["number"], "99")

    assert followups_sweep(setup.ctx, SCHOOL.id, now=datetime.now(UTC) + timedelta(hours=25)) == 1
    assert client_messages(setup) == []
