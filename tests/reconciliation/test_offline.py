from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from schoolsync.reconciliation.engine import reconcile
from schoolsync.reconciliation.models import OrderIn
from schoolsync.reconciliation.offline import (
    RESULT_COLUMNS,
    BadFile,
    parse_orders,
    parse_payments,
    result_rows,
    write_result,
)
from schoolsync.reconciliation.rules import ReconcileRules

MSK = ZoneInfo("Europe/Moscow")

ORDERS = """\
order_id,created_at,email,phone,name,product,amount,currency,status,paid_manually
1001,2026-03-01T10:00:00+03:00,demin@example.com,+7 923 111-22-33,Александр Демин,Курс,"2500,00",RUB,new,0
1002,2026-03-01 11:00,,,Екатерина Демина,Курс,2 500,,payed,да
1003,yesterday,x@example.com,,Иван Иванов,Курс,100,RUB,new,0
1004,2026-03-01T12:00:00+03:00,ivan@example.com,,Иван Петров,Курс,"1.500,50",RUB,payed,yes
1001,2026-03-01T12:00:00+03:00,,,,,10,RUB,new,0
1005,2026-03-01T12:00:00+03:00,,,,,10.001,RUB,new,0
1006,2026-03-01T12:00:00+03:00,,,,,10,rubles,new,0
1007,2026-03-01T12:00:00+03:00,,,,,10,RUB,new,maybe
1008,2026-03-01T12:00:00+03:00
"""

PAYMENTS = """\
\ufeffpayment_id,source,kind,paid_at,amount,currency,payer_name,email,phone,reference,extra
p1,yookassa,automatic,2026-03-01T13:00:00+03:00,2500,RUB,,DEMIN@example.com,,,x

p2,card_transfer,Manual,2026-03-02T09:00:00+03:00,"2 500,00",RUB,Демина Катя,,,,
p3,paypal,sometimes,2026-03-02T09:00:00+03:00,10,EUR,John Smith,,,,
p4,paypal,automatic,2026-03-02T09:00:00Z,-10,EUR,John Smith,,,,
p5,paypal,automatic,2026-03-02T09:00:00Z,0,EUR,John Smith,,,,
,bank,manual,2026-03-02T09:00:00Z,10,RUB,,,,,
p6,bank_transfer,manual,2026-03-02T09:00:00Z,1500.50,RUB,"Петров
Иван",,,заказ 1004,
p7,bank,manual,2026-03-02T09:00:00Z,nan,RUB,,,,,
"""


def test_orders_are_read_and_bad_rows_reported_by_line() -> None:
    parsed = parse_orders(io.StringIO(ORDERS), tz=MSK)
    assert [o.order_id for o in parsed.rows] == ["1001", "1002", "1004"]
    first, second, fourth = parsed.rows
    assert (first.amount_minor, first.currency, first.paid_manually) == (250_000, "RUB", False)
    assert first.created_at == datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    assert second.created_at == datetime(2026, 3, 1, 11, 0, tzinfo=MSK)  # no offset: --timezone
    assert (second.amount_minor, second.currency, second.paid_manually) == (250_000, "RUB", True)
    assert second.email is None and second.status == "payed"
    assert fourth.amount_minor == 150_050
    assert [(p.line, p.reason) for p in parsed.problems] == [
        (4, "created_at is not an ISO 8601 time"),
        (6, "order_id repeats line 2"),
        (7, "amount is not a number with at most two decimals"),
        (8, "currency is not a three-letter code"),
        (9, "paid_manually is not yes or no"),
        (10, "2 fields, the header has 10"),
    ]


def test_payments_are_read_and_bad_rows_reported_by_line() -> None:
    parsed = parse_payments(PAYMENTS.splitlines(keepends=True), tz=MSK)
    assert [p.payment_id for p in parsed.rows] == ["p1", "p2", "p6"]
    assert parsed.rows[1].kind == "manual"
    assert parsed.rows[2].payer_name == "Петров\nИван" and parsed.rows[2].reference == "заказ 1004"
    assert parsed.rows[2].paid_at.tzinfo is not None
    assert [(p.line, p.reason) for p in parsed.problems] == [
        (5, "kind is not manual or automatic"),
        (6, "amount must be positive"),
        (7, "amount must be positive"),
        (8, "payment_id is empty"),
        (11, "amount is not a number with at most two decimals"),
    ]


def test_no_cell_value_is_quoted_in_a_problem() -> None:
    reasons = " ".join(
        p.reason
        for p in parse_orders(io.StringIO(ORDERS), tz=MSK).problems
        + parse_payments(io.StringIO(PAYMENTS), tz=MSK).problems
    )
    for value in ("yesterday", "10.001", "rubles", "maybe", "sometimes", "-10", "nan"):
        assert value not in reasons


def test_a_header_without_a_needed_column_is_refused() -> None:
    with pytest.raises(BadFile, match="amount"):
        parse_orders(["order_id,created_at,email\n"], tz=MSK)
    with pytest.raises(BadFile, match="empty"):
        parse_payments([], tz=MSK)


def test_the_result_has_one_row_per_payment_and_one_per_unpaid_order() -> None:
    orders = parse_orders(io.StringIO(ORDERS), tz=MSK).rows
    paid_by_hand = OrderIn(
        "2001", datetime(2026, 3, 1, tzinfo=UTC), None, None, None, None, 10, "RUB", "payed", True
    )
    payments = parse_payments(io.StringIO(PAYMENTS), tz=MSK).rows
    now = datetime(2026, 3, 5, tzinfo=timezone(timedelta(hours=3)))
    result = reconcile([*orders, paid_by_hand], payments, ReconcileRules(), now)
    out = io.StringIO()
    assert write_result(result, out) == 4
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(RESULT_COLUMNS)
    rows = list(result_rows(result))
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("p1", "1001", "matched", "email"),
        ("p2", "1002", "matched", "name"),
        ("p6", "1004", "matched", "reference"),
        ("", "2001", "unpaid_order", "paid_manually"),
    ]
    assert rows[0][4] == "0.88" and rows[0][5].startswith("same email and amount")
