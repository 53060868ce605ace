"""``schoolsync reconcile file``: the offline mode as an accountant runs it."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from schoolsync.app.cli_reconcile import reconcile_app
from schoolsync.reconciliation.offline import ORDER_COLUMNS, PAYMENT_COLUMNS, RESULT_COLUMNS
from tests.reconciliation.generate import generate

ORDERS = """\
order_id,created_at,email,phone,name,product,amount,currency,status,paid_manually
1001,2026-03-01T10:00:00+03:00,demin@example.com,,Александр Демин,Курс,2500,RUB,new,0
1002,2026-03-01T11:00:00,,,Екатерина Демина,Курс,"2500,00",RUB,payed,1
1003,2026-03-01T11:00:00,,,Иван Петров,Курс,2 500,RUB,payed,1
1004,soon,,,Ольга Смирнова,Курс,2500,RUB,new,0
"""
PAYMENTS = """\
payment_id,source,kind,paid_at,amount,currency,payer_name,email,phone,reference
p1,yookassa,automatic,2026-03-01T13:00:00+03:00,2500.00,RUB,,demin@example.com,,
p2,card_transfer,manual,2026-03-02T09:00:00+03:00,2500,RUB,Демина Катя,,,
p3,card_transfer,manual,2026-03-02T09:00:00+03:00,12 abc,RUB,Смирнова Оля,,,
p4,paypal,automatic,2026-03-02T09:00:00+03:00,30,EUR,John Smith,,,
"""


def invoke(tmp_path: Path, orders: str, payments: str, *extra: str) -> tuple[int, str, str]:
    (tmp_path / "orders.csv").write_text(orders, encoding="utf-8")
    (tmp_path / "payments.csv").write_text(payments, encoding="utf-8")
    result = CliRunner().invoke(
        reconcile_app,
        [
            "file",
            "--orders",
            str(tmp_path / "orders.csv"),
            "--payments",
            str(tmp_path / "payments.csv"),
            "--out",
            str(tmp_path / "result.csv"),
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == RESULT_COLUMNS
        return list(reader)


def test_reconciles_and_reports_bad_rows_by_line(tmp_path: Path) -> None:
    code, out, err = invoke(tmp_path, ORDERS, PAYMENTS, "--now", "2026-03-05T12:00:00+03:00")
    assert code == 0, err
    assert "orders.csv line 5: created_at is not an ISO 8601 time; skipped" in err
    assert "payments.csv line 4: amount is not a number" in err
    assert "Смирнова" not in err and "soon" not in err and "12 abc" not in err
    result = rows(tmp_path / "result.csv")
    assert [(r["payment_id"], r["order_id"], r["verdict"], r["rule"]) for r in result] == [
        ("p1", "1001", "matched", "email"),
        ("p2", "1002", "matched", "name"),
        ("p4", "", "unmatched_payment", ""),
        ("", "1003", "unpaid_order", "paid_manually"),
    ]
    assert result[0]["explanation"] == "same email and amount, paid 3 h after the order"
    assert float(result[0]["score"]) > 0.8
    assert "4 rows written to result.csv" in out
    assert "matched" in out and "unpaid_order" in out


def test_a_missing_column_or_a_bad_option_fails_plainly(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path, "order_id,email\n1,a@b.c\n", PAYMENTS)
    assert code == 1 and "orders.csv: the header lacks created_at, amount" in err
    code, _, err = invoke(tmp_path, ORDERS, PAYMENTS, "--timezone", "Mars/Olympus")
    assert code == 1 and "unknown timezone" in err
    code, _, err = invoke(tmp_path, ORDERS, PAYMENTS, "--now", "tomorrow")
    assert code == 1 and "--now" in err


def test_rules_come_from_a_school_config(tmp_path: Path) -> None:
    config = tmp_path / "school.yaml"
    config.write_text("rules:\n  reconciliation:\n    match_by: [reference, email]\n")
    code, _, err = invoke(
        tmp_path, ORDERS, PAYMENTS, "--now", "2026-03-05T12:00:00+03:00", "--rules", str(config)
    )
    assert code == 0, err
    by_payment = {r["payment_id"]: r["verdict"] for r in rows(tmp_path / "result.csv")}
    assert by_payment["p2"] == "unmatched_payment"  # names are switched off
    config.write_text("rules:\n  reconciliation:\n    fee_percent: 500\n")
    code, _, err = invoke(tmp_path, ORDERS, PAYMENTS, "--rules", str(config))
    assert code == 1 and "fee_percent" in err


def test_a_line_that_is_not_text_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    broken = PAYMENTS.encode("utf-8").replace(b"John Smith", b"John \xff Smith")
    broken = broken.replace("Катя".encode(), b"\x00")
    (tmp_path / "payments.csv").write_bytes(broken)
    result = CliRunner().invoke(
        reconcile_app,
        [
            "file",
            "--orders",
            str(tmp_path / "orders.csv"),
            "--payments",
            str(tmp_path / "payments.csv"),
            "--out",
            str(tmp_path / "result.csv"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "payments.csv line 5: not UTF-8 text; skipped" in result.stderr
    assert "payments.csv line 3: a NUL character; skipped" in result.stderr
    written = {r["payment_id"] for r in rows(tmp_path / "result.csv")}
    assert written == {"p1", ""}  # p2 and p4 unreadable, p3 a bad amount; "" an unpaid order


def test_a_generated_file_round_trips(tmp_path: Path) -> None:
    data = generate(2_000, seed=5)
    orders, payments = tmp_path / "o.csv", tmp_path / "p.csv"
    with orders.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ORDER_COLUMNS)
        for o in data.orders:
            writer.writerow(
                [
                    o.order_id,
                    o.created_at.isoformat(),
                    o.email or "",
                    o.phone or "",
                    o.name or "",
                    o.product or "",
                    f"{o.amount_minor / 100:.2f}",
                    o.currency,
                    o.status,
                    "1" if o.paid_manually else "0",
                ]
            )
    with payments.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAYMENT_COLUMNS)
        for p in data.payments:
            writer.writerow(
                [
                    p.payment_id,
                    p.source,
                    p.kind,
                    p.paid_at.isoformat(),
                    f"{p.amount_minor / 100:.2f}".replace(".", ","),
                    p.currency,
                    p.payer_name or "",
                    p.email or "",
                    p.phone or "",
                    p.reference or "",
                ]
            )
    result = CliRunner().invoke(
        reconcile_app,
        [
            "file",
            "--orders",
            str(orders),
            "--payments",
            str(payments),
            "--out",
            str(tmp_path / "r.csv"),
            "--now",
            data.now.isoformat(),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    written = rows(tmp_path / "r.csv")
    assert {r["payment_id"] for r in written} - {""} == {p.payment_id for p in data.payments}
    matched = [r for r in written if r["verdict"] == "matched"]
    assert len(matched) > 1_500
