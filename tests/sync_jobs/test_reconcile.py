"""W7 against the GetCourse, amoCRM and Telegram sandboxes and a real Redis: the handbook's
double (a manual transfer and, later, the automatic payment for the same order) is removed once;
what is not certain waits for a person, who settles it with one call."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.sheets.auth import ServiceAccountTokens
from schoolsync.connectors.sheets.client import SheetsClient
from schoolsync.core.config import AppConfig
from schoolsync.core.db.tables import payments as payments_table
from schoolsync.core.domain import Money
from schoolsync.core.errors import NotFoundError
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.payments import MANUAL, NewPayment
from schoolsync.sync_jobs.platforms import SheetsSetup
from schoolsync.sync_jobs.services.reconcile import resolve, run_reconciliation
from tests.sync_jobs.test_payments import SCHOOL, Setup, record, setup, transfer

__all__ = ["setup"]

T0 = datetime.now(UTC)


def ledger_states(setup: Setup) -> dict[str, tuple[str, str | None]]:
    with setup.db.read() as conn:
        rows = conn.execute(
            sa.select(
                payments_table.c.external_id,
                payments_table.c.match_state,
                payments_table.c.order_number,
            )
        ).all()
    return {str(e): (str(s), n) for e, s, n in rows}


def gc_payments(setup: Setup, number: str) -> list[dict[str, Any]]:
    return list(setup.gc.get(f"/_sandbox/orders/{number}").json()["payments"])


def test_the_handbooks_double_is_removed_once_and_the_digest_says_so(setup: Setup) -> None:
    order = setup.order()
    cost = order["cost"]
    record(setup.ctx, SCHOOL.id, transfer("tg:1", cost, reference=order["number"], paid_at=T0))
    setup.settle_all()
    assert [p["status"] for p in gc_payments(setup, order["number"])] == ["accepted"]
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="yookassa",
            external_id="2f0c-yk",
            amount=Money(amount=Decimal(cost)),
            paid_at=T0 + timedelta(hours=2),
            payer_email="mama@example.org",
            reference=order["number"],
        ),
    )
    setup.settle_all()

    run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=5))
    # within the handbook's day both stand: the transfer pays the order, the automatic payment
    # stays flagged (the order looked paid when it came)
    assert [p["status"] for p in gc_payments(setup, order["number"])] == ["accepted"]
    assert ledger_states(setup)["tg:1"] == ("matched", order["number"])
    assert ledger_states(setup)["2f0c-yk"] == ("flagged", order["number"])
    summary = run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=25))
    again = run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=26))
    setup.settle_all()

    # the double taken back, then the automatic payment matched in its place
    assert summary.acted == 2 and again.acted == 0
    assert [p["status"] for p in gc_payments(setup, order["number"])] == ["returned"]
    assert ledger_states(setup)["tg:1"] == ("duplicate", order["number"])
    assert ledger_states(setup)["2f0c-yk"] == ("matched", order["number"])
    doubles = [line for line in setup.finance_lines() if "Двойная оплата" in line]
    assert len(doubles) == 1 and order["number"] in doubles[0]
    with setup.db.read() as conn:
        acted = findings.listing(conn, SCHOOL.id, status=findings.ACTED)
    assert sorted((r["kind"], r["payment_ids"]) for r in acted) == [
        ("duplicate_manual", [1]),
        ("matched", [2]),
    ]
    assert any("remove this manual payment" in r["explanation"] for r in acted)


def test_a_payment_nobody_can_place_waits_and_a_person_settles_it(setup: Setup) -> None:
    order = setup.order(email="papa@example.org")
    # a transfer with no number, no email: only a name nobody has
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="card_transfer",
            external_id="tg:7",
            amount=Money(amount=Decimal(order["cost"])),
            kind=MANUAL,
            paid_at=T0,
            payer_name="Неизвестный Плательщик",
        ),
    )
    setup.settle_all()

    run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=1))
    with setup.db.read() as conn:
        waiting = findings.listing(conn, SCHOOL.id)
    assert [(r["kind"], r["payment_ids"]) for r in waiting] == [("unmatched_payment", [1])]

    with pytest.raises(NotFoundError, match="not in the order mirror"):
        resolve(setup.ctx, SCHOOL.id, waiting[0]["id"], order_number="0", not_ours=False, who="t")
    said = resolve(
        setup.ctx,
        SCHOOL.id,
        waiting[0]["id"],
        order_number=order["number"],
        not_ours=False,
        who="t",
    )
    setup.settle_all()
    run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=2))

    assert order["number"] in said
    assert ledger_states(setup)["tg:7"] == ("matched", order["number"])
    assert setup.gc.get(f"/_sandbox/orders/{order['number']}").json()["status"] == "payed"
    with setup.db.read() as conn:
        assert findings.listing(conn, SCHOOL.id) == []  # not reopened by the next run
    with pytest.raises(NotFoundError, match="not waiting"):
        resolve(setup.ctx, SCHOOL.id, waiting[0]["id"], order_number=None, not_ours=True, who="t")


def test_a_payment_that_is_not_ours_is_left_out_of_later_runs(setup: Setup) -> None:
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="bank_transfer",
            external_id="bank:1",
            amount=Money(amount=Decimal("777")),
            kind=MANUAL,
            paid_at=T0,
            payer_name="ООО Ромашка",
        ),
    )
    run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=1))
    with setup.db.read() as conn:
        (item,) = findings.listing(conn, SCHOOL.id)

    resolve(setup.ctx, SCHOOL.id, item["id"], order_number=None, not_ours=True, who="t")
    later = run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=2))

    assert later.payments == 0 and later.waiting == 0
    assert ledger_states(setup)["bank:1"][0] == "dismissed"


def test_a_payment_the_ledger_holds_on_another_order_is_left_to_a_person(setup: Setup) -> None:
    order = setup.order(email="other@example.org")
    record(
        setup.ctx, SCHOOL.id, transfer("tg:3", order["cost"], reference=order["number"], paid_at=T0)
    )
    with setup.db.write() as conn:  # the direct rules had put it on an old order, flagged
        conn.execute(sa.update(payments_table).values(order_number="777", match_state="flagged"))

    summary = run_reconciliation(setup.ctx, SCHOOL.id, now=T0 + timedelta(hours=1))

    assert summary.acted == 0 and summary.waiting == 1
    assert ledger_states(setup)["tg:3"] == ("flagged", "777")
    with setup.db.read() as conn:
        (item,) = findings.listing(conn, SCHOOL.id)
    assert item["kind"] == "matched" and "on order 777" in item["explanation"]


def test_the_findings_go_to_the_report_sheet_once_a_day(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = str(setup.gc.base_url).removesuffix("/getcourse/").removesuffix("/getcourse")
    sheets = httpx.Client(base_url=f"{base}/sheets", timeout=10)
    sheets.post("/_sandbox/spreadsheets", json={"id": "report-sheet-1", "tabs": {"Сверка": []}})
    key_file = tmp_path / "sheets-key.json"
    key_file.write_text(sheets.get("/_sandbox/key-file").text)
    endpoint = Endpoint("sheets", "sandbox")
    client = SheetsClient(
        build_client(f"{base}/sheets", timeout=5),
        endpoint,
        ServiceAccountTokens(key_file, endpoint=endpoint),
    )
    assert setup.ctx.platforms is not None
    setup.ctx.platforms.schools[SCHOOL.id].sheets = SheetsSetup(account="sandbox", client=client)
    with_report = SCHOOL.model_copy(
        update={"rules": {"reconciliation": {"report": {"spreadsheet": "report-sheet-1"}}}}
    )
    monkeypatch.setattr(setup.ctx, "config", AppConfig(schools=[with_report]))
    # 10:00 school time today: both runs below fall on one school day whatever the clock says
    morning = datetime.combine(T0.astimezone(SCHOOL.tz).date(), time(10), SCHOOL.tz)
    record(
        setup.ctx,
        SCHOOL.id,
        NewPayment(
            source="bank_transfer",
            external_id="bank:2",
            amount=Money(amount=Decimal("555")),
            kind=MANUAL,
            paid_at=morning,
        ),
    )

    run_reconciliation(setup.ctx, SCHOOL.id, now=morning + timedelta(hours=1))
    run_reconciliation(setup.ctx, SCHOOL.id, now=morning + timedelta(hours=2))  # the same day

    rows = [
        r for r in sheets.get("/_sandbox/spreadsheets/report-sheet-1").json()["tabs"]["Сверка"] if r
    ]
    assert len(rows) == 1
    assert rows[0][2] == "платёж без заказа" and rows[0][3] == "1" and rows[0][8] == "open"
