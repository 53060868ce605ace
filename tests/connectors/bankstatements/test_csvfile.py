from __future__ import annotations

import codecs
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schoolsync.connectors.bankstatements import CsvColumns, parse_csv, parse_statement
from schoolsync.core.errors import MalformedInputError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "bankstatements"

BUSINESS = '''Выписка по счету 40702810938000012345
Период: 01.03.2025 - 31.03.2025

Дата,Номер документа,Приход,Расход,Плательщик,ИНН плательщика,Назначение платежа
03.03.2025,731,"25 000,00",,"ООО ""РОМАШКА""",7701234567,"Оплата по заказу 104521, обучение"
03.03.2025,112,,"12 000,00","ООО ""ШКОЛА""",5401000000,Аренда за март
04.03.2025,48,"2 500,50",,Демин Александр Сергеевич,,"Оплата за курс,
заказ №104522"
05.03.2025,49,"1 000,00",,Иванова Юлия,,Без номера заказа
Итого,,"28 500,50","12 000,00",,,
'''


def test_reads_the_tbank_fixture() -> None:
    parsed = parse_csv((FIXTURES / "tbank_operations.csv").read_bytes())

    assert parsed.format == "csv"
    assert parsed.problems == []
    assert parsed.skipped == 2  # a purchase and a FAILED transfer
    assert [(line.line_number, line.amount, line.currency) for line in parsed.lines] == [
        (2, Decimal("2500.00"), "RUB"),
        (5, Decimal("1500.50"), "RUB"),
        (6, Decimal("4380.00"), "RUB"),  # what reached the account, not the USD sent
    ]
    first = parsed.lines[0]
    assert first.date == date(2025, 3, 14)
    assert first.payer_name == "Александр Д."
    assert first.document_number is None


def test_parsing_twice_gives_the_same_ids() -> None:
    data = (FIXTURES / "tbank_operations.csv").read_bytes()
    ids = [line.external_id for line in parse_csv(data).lines]
    assert len(set(ids)) == 3
    assert ids == [line.external_id for line in parse_csv(data).lines]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp1251"])
def test_business_export_with_preamble_credit_column_and_quoted_cells(encoding: str) -> None:
    parsed = parse_csv(BUSINESS.encode(encoding), CsvColumns(our_account="40702810938000012345"))

    assert parsed.problems == []
    assert parsed.skipped == 1  # the rent went out
    company, person, other = parsed.lines
    assert company.line_number == 5
    assert company.amount == Decimal("25000.00")
    assert company.payer_name == 'ООО "РОМАШКА"'
    assert company.payer_inn == "7701234567"
    assert company.order_number == "104521"
    assert company.document_number == "731"
    assert company.account == "40702810938000012345"
    assert person.line_number == 7
    assert person.amount == Decimal("2500.50")
    assert person.purpose == "Оплата за курс, заказ №104522"
    assert person.order_number == "104522"
    assert other.line_number == 9
    assert other.order_number is None
    assert parsed.accounts == ("40702810938000012345",)


def test_a_bad_row_is_reported_by_line_and_the_rest_is_read() -> None:
    data = (
        "Дата;Сумма;Плательщик;Назначение платежа\n"
        "01.03.2025;2500,00;Демин Саша;заказ 1\n"
        "02.03.2025;две тысячи;Иванова Юлия;заказ 2\n"
        "31.02.2025;1000,00;Петров Пётр;заказ 3\n"
        ";1000,00;Петров Пётр;заказ 4\n"
        "\n"
        "05.03.2025;-300,00;Магазин;покупка\n"
        "06.03.2025;3000.00;Сидорова Анна;заказ 5\n"
    ).encode()
    parsed = parse_csv(data)
    assert [line.order_number for line in parsed.lines] == ["1", "5"]
    assert [problem.line_number for problem in parsed.problems] == [3, 4, 5]
    assert parsed.skipped == 1
    for problem in parsed.problems:
        assert "Иванова" not in problem.message and "Петров" not in problem.message


def test_configurable_column_names() -> None:
    data = "Когда|Сколько|Кто\n".replace("|", ",").encode() + b"2025-03-01,2500,Demin\n"
    columns = CsvColumns(date="Когда", amount="Сколько", payer="Кто")  # type: ignore[arg-type]
    line = parse_csv(data, columns).lines[0]
    assert (line.date, line.amount, line.payer_name) == (date(2025, 3, 1), Decimal("2500"), "Demin")


def test_tab_separated() -> None:
    data = "Дата\tСумма\tПлательщик\n01.03.2025\t2 500,00\tДемин Саша\n".encode()
    assert parse_csv(data).lines[0].amount == Decimal("2500.00")


def test_same_day_same_amount_from_two_people_are_two_payments() -> None:
    data = (
        "Дата;Сумма;Плательщик\n01.03.2025;2500;Демин Саша\n01.03.2025;2500;Иванова Юлия\n"
    ).encode()
    first, second = parse_csv(data).lines
    assert first.external_id != second.external_id
    assert not second.external_id.endswith("-2")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text\nwithout a header\n",
        "Имя;Телефон\nДемин;89231234567\n".encode(),
        codecs.BOM_UTF8 + b"\x00\x01\x02",
    ],
)
def test_a_file_without_a_statement_header_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedInputError) as raised:
        parse_csv(data)
    assert "Демин" not in str(raised.value)


def test_parse_statement_recognises_csv() -> None:
    parsed = parse_statement((FIXTURES / "tbank_operations.csv").read_bytes())
    assert parsed.format == "csv"
    assert len(parsed.lines) == 3
