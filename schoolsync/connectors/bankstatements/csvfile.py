"""Bank statements exported as CSV (Sber, Т-Банк and the like), read by column names.

Banks lay CSV out differently, so the columns are looked up by name (``CsvColumns``): each
field has a list of accepted header titles, compared case-insensitively with spaces collapsed;
the first title present wins. The defaults read Т-Банк's operations export
(``Дата операции;…;Статус;…;Сумма платежа;Валюта платежа;…;Описание``), business exports with
``Дата;Номер документа;Сумма;Плательщик;ИНН плательщика;Назначение платежа`` and exports with
separate ``Приход``/``Расход`` (``Сумма по кредиту``/``Сумма по дебету``) columns.

- Encoding: UTF-8 (with or without a BOM), otherwise windows-1251.
- Delimiter: ``;``, ``,`` or tab, whichever makes a header line appear; a few lines of preamble
  before the header (account, period) are allowed.
- Amounts: decimal comma or dot, spaces between thousands (``1 500,00``).
- Incoming money: a positive amount in the credit column where there is one, else a positive
  ``amount``; rows with a status outside ``ok_statuses`` (``FAILED``) and total rows
  (``Итого``, ``Обороты``) are not payments.

A row that cannot be read becomes a problem with the line where it starts; only a file with no
recognisable header raises ``MalformedInputError``.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Final

from schoolsync.connectors.bankstatements.models import (
    BadValue,
    IdAllocator,
    StatementLine,
    StatementParse,
    StatementProblem,
    clean_inn,
    find_order_number,
    line_id,
    parse_amount,
    parse_date,
)
from schoolsync.core.errors import MalformedInputError

_HEADER_SEARCH_ROWS: Final = 30
_DELIMITERS: Final = (";", ",", "\t")
_TOTAL_WORDS: Final = ("итого", "всего", "обороты", "остаток", "сальдо")
_CURRENCIES: Final = {"₽": "RUB", "руб": "RUB", "руб.": "RUB", "р.": "RUB", "rur": "RUB"}


@dataclass(frozen=True)
class CsvColumns:
    """Which header titles hold which field; a single title may be given as a plain string.

    ``date`` and one of ``credit`` / ``amount`` must be found. ``our_account`` names the
    account the file is for when no column does; it goes into the payments' ids.
    """

    date: tuple[str, ...] = ("Дата операции", "Дата проводки", "Дата платежа", "Дата", "Date")
    # Т-Банк: "Сумма платежа" is what reached the account, in "Валюта платежа"
    amount: tuple[str, ...] = ("Сумма платежа", "Сумма операции", "Сумма", "Amount")
    credit: tuple[str, ...] = (
        "Сумма по кредиту",
        "Кредит",
        "Приход",
        "Поступление",
        "Зачисление",
        "Credit",
    )
    payer: tuple[str, ...] = (
        "Наименование плательщика",
        "Плательщик",
        "Наименование контрагента",
        "Контрагент",
        "Корреспондент",
        "Описание",
        "Payer",
    )
    payer_inn: tuple[str, ...] = ("ИНН плательщика", "ИНН контрагента", "ИНН", "Payer INN")
    purpose: tuple[str, ...] = (
        "Назначение платежа",
        "Назначение",
        "Описание",
        "Комментарий",
        "Purpose",
    )
    number: tuple[str, ...] = ("Номер документа", "№ документа", "Номер", "№", "Document number")
    currency: tuple[str, ...] = ("Валюта платежа", "Валюта операции", "Валюта", "Currency")
    account: tuple[str, ...] = ("Счет получателя", "Номер счета", "Счет", "Account")
    status: tuple[str, ...] = ("Статус", "Status")
    ok_statuses: tuple[str, ...] = ("ok", "исполнен", "проведен", "проведена", "выполнен", "")
    our_account: str | None = None
    default_currency: str = "RUB"

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, str) and spec.name not in ("our_account", "default_currency"):
                object.__setattr__(self, spec.name, (value,))


@dataclass(frozen=True)
class _Layout:
    """Column indexes found in the header row."""

    delimiter: str
    header_line: int
    index: dict[str, int]

    def cell(self, row: Sequence[str], name: str) -> str:
        position = self.index.get(name)
        if position is None or position >= len(row):
            return ""
        return row[position].strip()


def decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def _title(text: str) -> str:
    return " ".join(text.replace("\ufeff", "").strip().strip('"').split()).casefold()


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the 1-based line each starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _layout(text: str, columns: CsvColumns) -> _Layout | None:
    head = "".join(itertools.islice(io.StringIO(text, newline=""), _HEADER_SEARCH_ROWS))
    ranked = sorted(_DELIMITERS, key=lambda d: -head.count(d))
    for delimiter in ranked:
        if delimiter not in head:
            continue
        for number, row in _rows(head, delimiter):
            titles = {_title(cell): position for position, cell in enumerate(row)}
            index: dict[str, int] = {}
            for spec in fields(columns):
                accepted = getattr(columns, spec.name)
                if spec.name in ("ok_statuses", "our_account", "default_currency"):
                    continue
                for title in accepted:
                    if _title(title) in titles:
                        index[spec.name] = titles[_title(title)]
                        break
            if "date" in index and ("amount" in index or "credit" in index):
                return _Layout(delimiter=delimiter, header_line=number, index=index)
    return None


def parse_csv(data: bytes, columns: CsvColumns | None = None) -> StatementParse:
    """Incoming payments and problems in a CSV statement export.

    Raises ``MalformedInputError`` when no header row names a date and an amount column.
    """
    columns = columns or CsvColumns()
    text = decode(data)
    layout = _layout(text, columns)
    if layout is None:
        raise MalformedInputError(
            "not a CSV statement: no header row with a date and an amount column",
            platform="bankstatement",
        )
    ids = IdAllocator()
    lines: list[StatementLine] = []
    problems: list[StatementProblem] = []
    skipped = 0
    for number, row in _rows(text, layout.delimiter):
        if number <= layout.header_line or not any(cell.strip() for cell in row):
            continue
        if any(cell.strip().casefold().startswith(_TOTAL_WORDS) for cell in row[:3]):
            continue
        try:
            line = _payment(row, number, layout, columns, ids)
        except BadValue as exc:
            problems.append(StatementProblem(line_number=number, message=str(exc)))
            continue
        if line is None:
            skipped += 1
        else:
            lines.append(line)
    accounts = tuple(sorted({line.account for line in lines if line.account}))
    return StatementParse(
        format="csv", lines=lines, problems=problems, accounts=accounts, skipped=skipped
    )


def _payment(
    row: Sequence[str], number: int, layout: _Layout, columns: CsvColumns, ids: IdAllocator
) -> StatementLine | None:
    status = layout.cell(row, "status").casefold()
    if "status" in layout.index and status not in {s.casefold() for s in columns.ok_statuses}:
        return None
    if "credit" in layout.index:
        credit = layout.cell(row, "credit")
        if not credit:
            return None
        amount = parse_amount(credit)
    else:
        raw = layout.cell(row, "amount")
        if not raw:
            raise BadValue("нет суммы")
        amount = parse_amount(raw)
    if amount <= 0:
        return None
    raw_date = layout.cell(row, "date")
    if not raw_date:
        raise BadValue("нет даты")
    on = parse_date(raw_date)
    document = layout.cell(row, "number") or None
    inn = clean_inn(layout.cell(row, "payer_inn"))
    payer = " ".join(layout.cell(row, "payer").split()) or None
    purpose = " ".join(layout.cell(row, "purpose").split()) or None
    account = layout.cell(row, "account") or columns.our_account
    base = line_id(
        account=account,
        on=on,
        number=document,
        amount=amount,
        payer_inn=inn,
        payer_name=payer,
        purpose=purpose,
    )
    return StatementLine(
        external_id=ids(base),
        line_number=number,
        date=on,
        amount=amount,
        currency=_currency(layout.cell(row, "currency"), columns.default_currency),
        payer_name=payer,
        payer_inn=inn,
        purpose=purpose,
        order_number=find_order_number(purpose),
        document_number=document,
        account=account,
    )


def _currency(value: str, default: str) -> str:
    text = value.strip()
    if not text:
        return default
    known = _CURRENCIES.get(text.casefold())
    if known:
        return known
    return text.upper() if len(text) == 3 and text.isalpha() and text.isascii() else default
