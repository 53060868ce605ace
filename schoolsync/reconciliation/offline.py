"""Offline mode: orders and payments from CSV text, verdicts back as CSV rows. No file I/O here:
the caller hands in lines (any iterable of ``str``, newlines kept) and a writable text stream.

Input (UTF-8, comma separated, a header row, columns in any order, extra columns ignored)::

    orders:   order_id,created_at,email,phone,name,product,amount,currency,status,paid_manually
    payments: payment_id,source,kind,paid_at,amount,currency,payer_name,email,phone,reference

Times are ISO 8601 (``2026-01-12T10:00:00+03:00``, ``2026-01-12 10:00``; without an offset
they are in ``tz``); amounts have a dot or a comma before the kopecks (``2500``, ``2500.50``,
``2 500,50``); ``kind`` is ``manual`` or ``automatic``; ``paid_manually`` is ``1/0``,
``true/false``, ``yes/no``, ``да/нет`` or empty; an empty currency is RUB. A bad row is reported
with its line number and a reason that quotes no cell (the files hold personal data) and is
left out; the rest is read.

Output: ``payment_id,order_id,verdict,rule,score,explanation``, one row per payment, then one
per order with a verdict and no payment (empty ``payment_id``); several orders of one payment
are separated by ``;``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Generic, Protocol, TypeVar

from schoolsync.core.domain import Money
from schoolsync.reconciliation.models import OrderIn, PaymentIn, ReconcileResult

ORDER_COLUMNS = (
    "order_id",
    "created_at",
    "email",
    "phone",
    "name",
    "product",
    "amount",
    "currency",
    "status",
    "paid_manually",
)
PAYMENT_COLUMNS = (
    "payment_id",
    "source",
    "kind",
    "paid_at",
    "amount",
    "currency",
    "payer_name",
    "email",
    "phone",
    "reference",
)
RESULT_COLUMNS = ("payment_id", "order_id", "verdict", "rule", "score", "explanation")
_REQUIRED_ORDER = ("order_id", "created_at", "amount")
_REQUIRED_PAYMENT = ("payment_id", "kind", "paid_at", "amount")
_YES = frozenset({"1", "true", "yes", "y", "да", "+"})
_NO = frozenset({"", "0", "false", "no", "n", "нет", "-"})
_SPACES = re.compile(r"[\s\u00a0\u202f]")
_CURRENCY = re.compile(r"[A-Z]{3}")

Row = TypeVar("Row", OrderIn, PaymentIn)


class BadFile(ValueError):
    """The header lacks a column the rows need (the whole file is unusable)."""


class BadRow(ValueError):
    """One row cannot be read; the message names the column, never its value."""


@dataclass(frozen=True, slots=True)
class Problem:
    line: int  # where the row starts, 1 = the header
    reason: str


@dataclass
class Parsed(Generic[Row]):
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


def parse_orders(lines: Iterable[str], *, tz: tzinfo) -> Parsed[OrderIn]:
    """Raises ``BadFile`` when the header lacks a required column."""
    return _parse(lines, ORDER_COLUMNS, _REQUIRED_ORDER, lambda cells: _order(cells, tz))


def parse_payments(lines: Iterable[str], *, tz: tzinfo) -> Parsed[PaymentIn]:
    """Raises ``BadFile`` when the header lacks a required column."""
    return _parse(lines, PAYMENT_COLUMNS, _REQUIRED_PAYMENT, lambda cells: _payment(cells, tz))


def _parse(
    lines: Iterable[str],
    columns: tuple[str, ...],
    required: tuple[str, ...],
    build: Callable[[dict[str, str]], Row],
) -> Parsed[Row]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise BadFile("the file is empty")
    names = [cell.strip().lstrip("\ufeff").lower() for cell in header]
    missing = [column for column in required if column not in names]
    if missing:
        raise BadFile(f"the header lacks {', '.join(missing)}")
    where = {column: names.index(column) for column in columns if column in names}
    parsed: Parsed[Row] = Parsed()
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    for record in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if len(record) < len(names):
            parsed.problems.append(
                Problem(start, f"{len(record)} fields, the header has {len(names)}")
            )
            continue
        cells = {column: record[index].strip() for column, index in where.items()}
        try:
            row = build(cells)
        except BadRow as exc:
            parsed.problems.append(Problem(start, str(exc)))
            continue
        key = cells[columns[0]]
        if key in seen:
            parsed.problems.append(Problem(start, f"{columns[0]} repeats line {seen[key]}"))
            continue
        seen[key] = start
        parsed.rows.append(row)
    return parsed


def _order(cells: dict[str, str], tz: tzinfo) -> OrderIn:
    currency = _currency(cells.get("currency", ""))
    return OrderIn(
        order_id=_needed(cells, "order_id"),
        created_at=_time(cells, "created_at", tz),
        email=cells.get("email") or None,
        phone=cells.get("phone") or None,
        name=cells.get("name") or None,
        product=cells.get("product") or None,
        amount_minor=_amount(cells, currency, allow_zero=True),
        currency=currency,
        status=cells.get("status", "").lower(),
        paid_manually=_flag(cells.get("paid_manually", ""), "paid_manually"),
    )


def _payment(cells: dict[str, str], tz: tzinfo) -> PaymentIn:
    currency = _currency(cells.get("currency", ""))
    kind = cells.get("kind", "").lower()
    if kind not in ("manual", "automatic"):
        raise BadRow("kind is not manual or automatic")
    return PaymentIn(
        payment_id=_needed(cells, "payment_id"),
        source=cells.get("source", "").lower(),
        kind="manual" if kind == "manual" else "automatic",
        paid_at=_time(cells, "paid_at", tz),
        amount_minor=_amount(cells, currency, allow_zero=False),
        currency=currency,
        payer_name=cells.get("payer_name") or None,
        email=cells.get("email") or None,
        phone=cells.get("phone") or None,
        reference=cells.get("reference") or None,
    )


def _needed(cells: dict[str, str], column: str) -> str:
    value = cells.get(column, "")
    if not value:
        raise BadRow(f"{column} is empty")
    return value


def _time(cells: dict[str, str], column: str, tz: tzinfo) -> datetime:
    text = _needed(cells, column)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRow(f"{column} is not an ISO 8601 time") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _currency(text: str) -> str:
    code = text.strip().upper() or "RUB"
    if not _CURRENCY.fullmatch(code):
        raise BadRow("currency is not a three-letter code")
    return code


def _amount(cells: dict[str, str], currency: str, *, allow_zero: bool) -> int:
    """Whole minor units from ``2500``, ``2500.50``, ``2 500,50``, ``1.500,50``."""
    text = _SPACES.sub("", _needed(cells, "amount"))
    if "," in text and "." in text:  # the last one marks the kopecks
        decimal = "," if text.rindex(",") > text.rindex(".") else "."
        text = text.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text)
        if not amount.is_finite():
            raise ValueError(text)
        minor = Money(amount=amount, currency=currency).minor
    except (InvalidOperation, ValueError):
        raise BadRow("amount is not a number with at most two decimals") from None
    if minor < 0 or (minor == 0 and not allow_zero):
        raise BadRow("amount is negative" if allow_zero else "amount must be positive")
    return minor


def _flag(text: str, column: str) -> bool:
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise BadRow(f"{column} is not yes or no")


def result_rows(result: ReconcileResult) -> Iterator[tuple[str, ...]]:
    """The output rows, without the header."""
    for verdict in result.verdicts:
        orders = ";".join(verdict.order_ids)
        rest = (verdict.kind.value, verdict.rule, f"{verdict.score:.2f}", verdict.explanation)
        if verdict.payment_ids:
            for payment_id in verdict.payment_ids:
                yield (payment_id, orders, *rest)
        else:
            yield ("", orders, *rest)


def write_result(result: ReconcileResult, out: TextSink) -> int:
    """Writes the header and the rows to ``out``; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    count = 0
    for row in result_rows(result):
        writer.writerow(row)
        count += 1
    return count
