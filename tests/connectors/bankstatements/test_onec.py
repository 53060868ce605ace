from __future__ import annotations

import codecs
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schoolsync.connectors.bankstatements import StatementProblem, parse_1c, parse_statement
from schoolsync.core.errors import MalformedInputError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "bankstatements"
OURS = "40702810938000012345"

HEADER = f"""1CClientBankExchange
ВерсияФормата=1.03
Кодировка=Windows
Отправитель=Бухгалтерия предприятия, редакция 3.0
ДатаНачала=01.03.2025
ДатаКонца=31.03.2025
РасчСчет={OURS}
Документ=Платежное поручение
СекцияРасчСчет
РасчСчет={OURS}
НачальныйОстаток=0.00
КонецРасчСчет
"""


def document(
    number: int,
    *,
    amount: str = "2500.00",
    payer: str = "Демин Александр Сергеевич",
    inn: str = "",
    purpose: str = "Оплата по заказу 10001",
    receiver: str = OURS,
    received: str = "03.03.2025",
) -> str:
    return f"""СекцияДокумент=Платежное поручение
Номер={number}
Дата=03.03.2025
Сумма={amount}
ПлательщикСчет=40817810255001234567
Плательщик={payer}
ПлательщикИНН={inn}
ПолучательСчет={receiver}
ДатаПоступило={received}
НазначениеПлатежа={purpose}
КонецДокумента
"""


def statement(*documents: str, encoding: str = "cp1251") -> bytes:
    text = HEADER + "".join(documents) + "КонецФайла\n"
    return text.replace("\n", "\r\n").encode(encoding)


def line_of(data: bytes, needle: str) -> int:
    """1-based number of the first line of ``data`` (cp1251) containing ``needle``."""
    for number, line in enumerate(data.decode("cp1251").split("\n"), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_reads_the_fixture_statement() -> None:
    parsed = parse_1c((FIXTURES / "sber_1c.txt").read_bytes())

    assert parsed.format == "1c"
    assert parsed.accounts == (OURS,)
    assert parsed.problems == []
    assert parsed.skipped == 1  # the rent we paid
    company, person, acquiring = parsed.lines

    assert company.amount == Decimal("25000.00")
    assert company.payer_name == 'ООО "РОМАШКА"'
    assert company.payer_inn == "7701234567"
    assert company.order_number == "104521"
    assert company.document_number == "731"
    assert company.date == date(2025, 3, 13)
    assert company.account == OURS
    assert company.currency == "RUB"
    assert company.line_number == 22

    # Sber writes a person as NAME//address//, with no INN
    assert person.payer_name == "ДЕМИН АЛЕКСАНДР СЕРГЕЕВИЧ"
    assert person.payer_inn is None
    assert person.order_number == "104522"
    assert person.amount == Decimal("2500.00")

    # a merchant number is not an order number
    assert acquiring.amount == Decimal("9000.50")
    assert acquiring.order_number is None

    assert len({line.external_id for line in parsed.lines}) == 3


def test_parsing_twice_gives_the_same_ids() -> None:
    data = (FIXTURES / "sber_1c.txt").read_bytes()
    first = [line.external_id for line in parse_1c(data).lines]
    assert first == [line.external_id for line in parse_1c(data).lines]


def test_the_same_document_in_an_overlapping_statement_keeps_its_id() -> None:
    day = statement(document(7))
    month = statement(document(1, amount="100.00"), document(7), document(9, amount="300.00"))
    assert parse_1c(day).lines[0].external_id == parse_1c(month).lines[1].external_id


@pytest.mark.parametrize(
    "changed",
    [
        document(7, amount="2500.01"),
        document(7, inn="540100000000"),
        document(8),
        document(7, receiver="40702810938000099999"),
    ],
)
def test_id_changes_with_what_identifies_the_payment(changed: str) -> None:
    base = parse_1c(statement(document(7))).lines[0].external_id
    assert parse_1c(statement(changed)).lines[0].external_id != base


def test_id_does_not_depend_on_how_the_amount_is_written() -> None:
    assert (
        parse_1c(statement(document(7, amount="2500"))).lines[0].external_id
        == parse_1c(statement(document(7, amount="2500.00"))).lines[0].external_id
    )


def test_two_identical_documents_in_one_file_stay_two() -> None:
    parsed = parse_1c(statement(document(7), document(7)))
    first, second = (line.external_id for line in parsed.lines)
    assert second == f"{first}-2"


def test_only_money_coming_to_us_is_a_payment() -> None:
    outgoing = f"""СекцияДокумент=Платежное поручение
Номер=5
Дата=03.03.2025
Сумма=12000.00
ПлательщикСчет={OURS}
ПолучательСчет=40702810100000007777
ДатаСписано=03.03.2025
ДатаПоступило=
КонецДокумента
"""
    parsed = parse_1c(statement(outgoing, document(6)))
    assert [line.document_number for line in parsed.lines] == ["6"]
    assert parsed.skipped == 1


def test_without_our_account_the_receipt_date_decides() -> None:
    data = (
        "1CClientBankExchange\nВерсияФормата=1.02\n"
        + document(1, receiver="40702810000000000001")
        + document(2, receiver="40702810000000000001", received="")
        + "КонецФайла\n"
    ).encode("cp1251")
    parsed = parse_1c(data)
    assert [line.document_number for line in parsed.lines] == ["1"]
    assert parsed.lines[0].account == "40702810000000000001"
    assert parsed.skipped == 1


def test_payer_name_without_inn_prefix_and_purpose_from_numbered_lines() -> None:
    doc = document(3, payer="ИНН 7719617469 ОАО Крокус", purpose="").replace(
        "НазначениеПлатежа=\n",
        "НазначениеПлатежа=\nНазначениеПлатежа1=Оплата обучения\nНазначениеПлатежа2=заказ 777\n",
    )
    line = parse_1c(statement(doc)).lines[0]
    assert line.payer_name == "ОАО Крокус"
    assert line.purpose == "Оплата обучения заказ 777"
    assert line.order_number == "777"


@pytest.mark.parametrize(
    ("prefix", "encoding"),
    [(b"", "cp1251"), (codecs.BOM_UTF8, "utf-8"), (b"", "utf-8")],
)
def test_windows_1251_and_utf8(prefix: bytes, encoding: str) -> None:
    line = parse_1c(prefix + statement(document(1), encoding=encoding)).lines[0]
    assert line.payer_name == "Демин Александр Сергеевич"


def test_dos_encoding_is_cp866() -> None:
    data = statement(document(1)).decode("cp1251").replace("Кодировка=Windows", "Кодировка=DOS")
    line = parse_1c(data.encode("cp866")).lines[0]
    assert line.payer_name == "Демин Александр Сергеевич"
    assert line.order_number == "10001"


def test_unix_line_endings() -> None:
    data = statement(document(1)).replace(b"\r\n", b"\n")
    assert len(parse_1c(data).lines) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\n",
        "Дата;Сумма\n01.03.2025;100\n".encode("cp1251"),
        "ВерсияФормата=1.03\nСекцияДокумент=Платежное поручение\n".encode("cp1251"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedInputError):
        parse_1c(data)


def test_broken_documents_are_reported_by_line_and_the_rest_is_read() -> None:
    no_amount = document(2).replace("Сумма=2500.00\n", "")
    bad_amount = document(3, amount="2 5OO")
    bad_date = document(4, received="35.03.2025")
    no_equals = document(5).replace("Плательщик=", "Плательщик ")
    unterminated = document(6).replace("КонецДокумента\n", "")
    zero = document(8, amount="0.00")
    data = statement(
        document(1), no_amount, bad_amount, bad_date, no_equals, unterminated, document(7), zero
    )

    parsed = parse_1c(data)

    assert [line.document_number for line in parsed.lines] == ["1", "7"]
    assert [problem.line_number for problem in parsed.problems] == [
        line_of(data, "Номер=2") - 1,  # missing field: the СекцияДокумент line
        line_of(data, "Сумма=2 5OO"),
        line_of(data, "ДатаПоступило=35.03.2025"),
        line_of(data, "Плательщик Демин"),
        line_of(data, "Номер=6") - 1,
        line_of(data, "Сумма=0.00"),
    ]
    messages = [problem.message for problem in parsed.problems]
    assert "Сумма" in messages[0]
    assert "КонецДокумента" in messages[4]
    for problem in parsed.problems:  # no payer name in a problem
        assert "Демин" not in problem.message


def test_a_truncated_file_reports_its_last_document() -> None:
    data = (HEADER + document(1) + document(2)).encode("cp1251")[:-40]
    parsed = parse_1c(data)
    assert [line.document_number for line in parsed.lines] == ["1"]
    assert parsed.problems == [
        StatementProblem(line_of(data, "Номер=2") - 1, parsed.problems[0].message)
    ]


def test_a_thousand_documents_with_one_broken_one() -> None:
    broken = 617
    documents = [
        document(
            number,
            amount="12.3.4" if number == broken else f"{1000 + number}.{number % 100:02d}",
            inn=f"{7700000000 + number}",
            purpose=f"Оплата по заказу {200000 + number}",
        )
        for number in range(1, 1001)
    ]
    data = statement(*documents)

    started = time.perf_counter()
    parsed = parse_1c(data)
    elapsed = time.perf_counter() - started

    assert len(parsed.lines) == 999
    assert parsed.problems == [
        StatementProblem(line_of(data, "Сумма=12.3.4"), parsed.problems[0].message)
    ]
    assert parsed.problems[0].line_number == len(HEADER.splitlines()) + (broken - 1) * 11 + 4
    ids = [line.external_id for line in parsed.lines]
    assert len(set(ids)) == 999
    assert ids == [line.external_id for line in parse_1c(data).lines]
    assert parsed.lines[0].order_number == "200001"
    assert elapsed < 2


def test_parse_statement_recognises_1c() -> None:
    parsed = parse_statement((FIXTURES / "sber_1c.txt").read_bytes())
    assert parsed.format == "1c"
    assert len(parsed.lines) == 3
