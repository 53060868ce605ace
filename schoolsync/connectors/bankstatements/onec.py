"""The 1CClientBankExchange text file (formats 1.02 and 1.03), which every Russian bank exports.

The format (1С «Стандарт обмена с системами "Клиент банка"», v8.1c.ru) is lines of
``Ключ=Значение`` in sections::

    1CClientBankExchange                 the first line, always
    ВерсияФормата=1.03
    Кодировка=Windows                    Windows = windows-1251, DOS = cp866
    РасчСчет=40702810300180001774        our account (repeated in СекцияРасчСчет blocks)
    СекцияРасчСчет ... КонецРасчСчет     balances per account
    СекцияДокумент=Платежное поручение   one payment document
    Номер=105
    Дата=09.12.2015
    Сумма=12354.00                       rubles, "." before kopecks
    ПлательщикСчет=...  Плательщик=ИНН 7719617469 ОАО Крокус  Плательщик1=ОАО Крокус
    ПлательщикИНН=7719617469
    ПолучательСчет=...                   equals our РасчСчет for incoming money
    ДатаПоступило=09.12.2015             set on incoming money, ДатаСписано on outgoing
    НазначениеПлатежа=Оплата по заказу 12345
    КонецДокумента
    КонецФайла

Encoding: a UTF-8 byte order mark, or bytes that are valid UTF-8, mean UTF-8; otherwise the
``Кодировка`` header decides (windows-1251 when it is absent or unknown).

A document is a payment to us when its receiver account is one of ours, or when it has
``ДатаПоступило`` and its payer account is not ours; other documents are counted in ``skipped``.
A document that cannot be read (no amount, a bad date, a line without ``=``, no
``КонецДокумента``) becomes a problem with its line number: the line of the bad field, or the
``СекцияДокумент`` line when a field is missing; the rest of the file is still read.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
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

MARKER: Final = "1CClientBankExchange"
_ENCODINGS: Final = {"windows": "cp1251", "dos": "cp866"}
_ENCODING_KEY: Final = "Кодировка="
_INN_PREFIX = re.compile(r"^\s*ИНН\s*\d*\s*", re.IGNORECASE)
_PURPOSE_PARTS: Final = tuple(f"НазначениеПлатежа{i}" for i in range(1, 7))


@dataclass
class _Document:
    start: int
    fields: dict[str, tuple[str, int]] = field(default_factory=dict)
    bad_line: int | None = None

    def get(self, *keys: str) -> tuple[str, int] | None:
        """The first of ``keys`` present with a non-empty value, and its line."""
        for key in keys:
            found = self.fields.get(key)
            if found and found[0]:
                return found
        return None

    def value(self, *keys: str) -> str | None:
        found = self.get(*keys)
        return found[0] if found else None


def decode(data: bytes) -> str:
    """The text of a 1C file: UTF-8 with a BOM or valid UTF-8, else as ``Кодировка`` says."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = "cp1251"
    for candidate in ("cp1251", "cp866"):
        start = data.find(_ENCODING_KEY.encode(candidate))
        if start >= 0:
            end = data.find(b"\n", start)
            raw = data[start + len(_ENCODING_KEY.encode(candidate)) : end if end >= 0 else None]
            declared = raw.decode("ascii", errors="ignore").strip().lower()
            encoding = _ENCODINGS.get(declared, "cp1251")
            break
    return data.decode(encoding, errors="replace")


def is_1c(data: bytes) -> bool:
    """Whether ``data`` starts like a 1CClientBankExchange file."""
    head = data[:200].lstrip(codecs.BOM_UTF8).lstrip()
    return head.startswith(MARKER.encode("ascii"))


def parse_1c(data: bytes) -> StatementParse:
    """Incoming payments and problems in a 1CClientBankExchange file.

    Raises ``MalformedInputError`` only when ``data`` is not such a file at all.
    """
    if not is_1c(data):
        raise MalformedInputError(
            f"not a 1CClientBankExchange statement (the first line must be {MARKER})",
            platform="bankstatement",
        )
    reader = _Reader()
    for number, raw in enumerate(decode(data).split("\n"), start=1):
        if not reader.feed(number, raw.rstrip("\r").strip().lstrip("\ufeff")):
            break
    reader.finish()
    return reader.result()


class _Reader:
    """A line-by-line state machine over the file; ``feed`` returns False at ``КонецФайла``."""

    def __init__(self) -> None:
        self.accounts: list[str] = []
        self.documents: list[_Document] = []
        self.problems: list[StatementProblem] = []
        self._document: _Document | None = None

    def feed(self, number: int, line: str) -> bool:
        if not line or line == MARKER:
            return True
        key, has_value, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key == "СекцияДокумент":
            self._unterminated()
            self._document = _Document(start=number)
        elif line == "КонецДокумента":
            if self._document is None:
                self._problem(number, "«КонецДокумента» без «СекцияДокумент»")
            else:
                self.documents.append(self._document)
                self._document = None
        elif line == "КонецФайла":
            return False
        elif self._document is not None:
            if not has_value:
                if self._document.bad_line is None:
                    self._document.bad_line = number
            elif key not in self._document.fields or not self._document.fields[key][0]:
                self._document.fields[key] = (value, number)
        elif line in ("СекцияРасчСчет", "КонецРасчСчет"):
            pass  # balances; the account inside is picked up below
        elif has_value:
            if key in ("РасчСчет", "НомерСчета") and value and value not in self.accounts:
                self.accounts.append(value)
        else:
            self._problem(number, "непонятная строка вне документа")
        return True

    def finish(self) -> None:
        self._unterminated()

    def _unterminated(self) -> None:
        if self._document is not None:
            self._problem(self._document.start, "документ не закончен строкой «КонецДокумента»")
            self._document = None

    def _problem(self, number: int, message: str) -> None:
        self.problems.append(StatementProblem(line_number=number, message=message))

    def result(self) -> StatementParse:
        ours = set(self.accounts)
        ids = IdAllocator()
        lines: list[StatementLine] = []
        problems = list(self.problems)
        skipped = 0
        for document in self.documents:
            try:
                line = _payment(document, ours, ids)
            except _Broken as broken:
                problems.append(StatementProblem(broken.line_number, broken.message))
                continue
            if line is None:
                skipped += 1
            else:
                lines.append(line)
        problems.sort(key=lambda problem: problem.line_number)
        return StatementParse(
            format="1c",
            lines=lines,
            problems=problems,
            accounts=tuple(self.accounts),
            skipped=skipped,
        )


class _Broken(Exception):
    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(message)
        self.line_number = line_number
        self.message = message


def _payment(document: _Document, ours: set[str], ids: IdAllocator) -> StatementLine | None:
    """The incoming payment in ``document``, None when it is not one; raises ``_Broken``."""
    if document.bad_line is not None:
        raise _Broken(document.bad_line, "строка без «=» внутри документа")
    received = document.get("ДатаПоступило")
    received_on = _date(received) if received else None
    receiver = document.value("ПолучательСчет", "ПолучательРасчСчет")
    payer_account = document.value("ПлательщикСчет", "ПлательщикРасчСчет")
    incoming = (receiver is not None and receiver in ours) or (
        received_on is not None and payer_account not in ours
    )
    if not incoming:
        return None

    amount = _amount(document)
    dated = document.get("Дата") or received
    if dated is None:
        raise _Broken(document.start, "в документе нет поля «Дата»")
    on = _date(dated)
    number = document.value("Номер")
    inn = clean_inn(document.value("ПлательщикИНН"))
    payer = _payer_name(document)
    purpose = document.value("НазначениеПлатежа") or (
        " ".join(part for key in _PURPOSE_PARTS if (part := document.value(key) or "")) or None
    )
    account = receiver or (next(iter(ours)) if len(ours) == 1 else None)
    base = line_id(
        account=account,
        on=on,
        number=number,
        amount=amount,
        payer_inn=inn,
        payer_name=payer,
        purpose=purpose,
    )
    return StatementLine(
        external_id=ids(base),
        line_number=document.start,
        date=received_on or on,
        amount=amount,
        currency="RUB",
        payer_name=payer,
        payer_inn=inn,
        purpose=purpose,
        order_number=find_order_number(purpose),
        document_number=number,
        account=account,
        payer_account=payer_account,
    )


def _amount(document: _Document) -> Decimal:
    found = document.get("Сумма")
    if found is None:
        raise _Broken(document.start, "в документе нет поля «Сумма»")
    value, number = found
    try:
        amount = parse_amount(value)
    except BadValue as exc:
        raise _Broken(number, f"«Сумма»: {exc}") from exc
    if amount <= 0:
        raise _Broken(number, "«Сумма» должна быть больше нуля")
    return amount


def _date(found: tuple[str, int]) -> date:
    value, number = found
    try:
        return parse_date(value)
    except BadValue as exc:
        raise _Broken(number, str(exc)) from exc


def _payer_name(document: _Document) -> str | None:
    """``Плательщик1``, or ``Плательщик`` without its ``ИНН …`` prefix and Sber's ``//address//``."""
    name = document.value("Плательщик1") or document.value("Плательщик")
    if not name:
        return None
    name = _INN_PREFIX.sub("", name).split("//")[0]
    return " ".join(name.split()) or None
