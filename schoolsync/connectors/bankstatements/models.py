"""What a bank statement gives us: incoming payments, each with a deterministic id, and problems.

Both readers (``onec`` for the 1CClientBankExchange text file, ``csvfile`` for CSV exports) return
a ``StatementParse``. A broken document or row never stops the parse: it becomes a
``StatementProblem`` with its 1-based line number in the file and the rest is read. Only a file
that is not a statement at all raises ``MalformedInputError``.

``external_id`` is a hash of what identifies a payment on the account (see ``line_id``), so that
importing the same statement twice, or two overlapping statements, yields the same ids.
Problem messages are in Russian (they are shown to the school's staff) and never quote a payer,
an INN or a purpose: only line numbers, field names and the amount or date text that failed.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

StatementFormat = Literal["1c", "csv"]

_KOPECK: Final = Decimal("0.01")
_SPACES: Final = "\u0020\u00a0\u202f\u2009\u2007\t"
_MINUS: Final = "-\u2212\u2013"
_AMOUNT = re.compile(r"\d+(?:\.\d{1,2})?", re.ASCII)
_DATE_FORMATS: Final = ("%d.%m.%Y", "%Y-%m-%d", "%d.%m.%y", "%d/%m/%Y")

# "заказ 12345", "заказу № 12345", "Заказ N12345", "order #12345" first; then "№ 12345", "#12345".
# A number followed by "/" or "-" and a digit ("№ 15/2020", "№ 12-34") is a contract, not an order.
_ORDER_AFTER_WORD = re.compile(
    r"(?:заказ\w*|order)\s*(?:№|#|N|No\.?|номер)?\s*:?\s*(\d{1,12})(?!\d)(?![/\-]\d)",
    re.IGNORECASE,
)
_ORDER_AFTER_SIGN = re.compile(r"(?:№|#)\s*(\d{1,12})(?!\d)(?![/\-]\d)")
_WORD_BEFORE = re.compile(r"([\w/]+)\W*$")
# a bare "№" after these numbers something else: "счету № 105", "Мерчант №7612345"
_NOT_ORDER_WORDS: Final = (
    "договор",
    "счет",
    "счёт",
    "мерчант",
    "терминал",
    "реестр",
    "п/п",
    "пп",
    "платеж",
    "платёж",
    "поручени",
    "карт",
    "акт",
    "накладн",
    "квитанц",
    "лицев",
    "л/с",
    "инвойс",
    "invoice",
    "contract",
    "телефон",
)


@dataclass(frozen=True)
class StatementLine:
    """One incoming payment on our account.

    ``date`` is when the money arrived (``ДатаПоступило`` in 1C, the operation date in CSV);
    ``line_number`` is where its document or row starts in the file (1-based).
    """

    external_id: str
    line_number: int
    date: date
    amount: Decimal  # > 0, two decimals
    currency: str
    payer_name: str | None
    payer_inn: str | None
    purpose: str | None
    order_number: str | None
    document_number: str | None = None
    account: str | None = None  # ours: the account the money came to
    payer_account: str | None = None


@dataclass(frozen=True)
class StatementProblem:
    line_number: int  # 1-based, in the file as given
    message: str  # Russian, for the import summary; no personal data


@dataclass(frozen=True)
class StatementParse:
    format: StatementFormat
    lines: list[StatementLine] = field(default_factory=list)
    problems: list[StatementProblem] = field(default_factory=list)
    accounts: tuple[str, ...] = ()  # our accounts named in the file
    skipped: int = 0  # readable documents or rows that are not incoming payments


class BadValue(ValueError):
    """One field of one document or row cannot be read (becomes a ``StatementProblem``)."""


def parse_amount(text: str) -> Decimal:
    """A statement amount: ``12354.00``, ``12354,00``, ``1 500,5``, ``-1500.00``, ``1,500.00``.

    Spaces of any kind group thousands; the decimal separator is a dot or a comma followed by
    one or two digits; where both appear, the last one is the decimal separator. A currency
    sign (₽, $, €) or code after the number is ignored. Raises ``BadValue``.
    """
    raw = text
    text = text.translate({ord(c): None for c in _SPACES}).rstrip("₽$€")
    text = re.sub(r"(?i)(RUB|RUR|USD|EUR|руб\.?|р\.?)$", "", text)
    sign = 1
    if text[:1] in _MINUS:
        sign, text = -1, text[1:]
    elif text[:1] == "+":
        text = text[1:]
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        grouping = "." if decimal_mark == "," else ","
        text = text.replace(grouping, "").replace(decimal_mark, ".")
    else:
        text = text.replace(",", ".")
    if not _AMOUNT.fullmatch(text):
        raise BadValue(f"сумма не читается: {raw.strip()[:30]!r}")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid numbers
        raise BadValue(f"сумма не читается: {raw.strip()[:30]!r}") from exc
    return (sign * amount).quantize(_KOPECK)


def parse_date(text: str, formats: tuple[str, ...] = _DATE_FORMATS) -> date:
    """A calendar date from ``09.12.2015``, ``2015-12-09`` and the like; a time after the date
    (``09.12.2015 10:33:20``) is ignored. Raises ``BadValue``."""
    value = text.strip()
    candidates = (value, value.split(" ")[0], value.split("T")[0])
    for candidate in candidates:
        for fmt in formats:
            try:
                return datetime.strptime(candidate, fmt).date()  # noqa: DTZ007 - a date, no time
            except ValueError:
                continue
    raise BadValue(f"дата не читается: {value[:30]!r}")


def find_order_number(text: str | None) -> str | None:
    """The order number written in a payment purpose: ``заказ 12345``, ``по заказу №12345``,
    ``№ 12345``, ``#12345``. A number after «заказ» wins over a bare ``№``, and a bare ``№``
    after a word naming another document (``счету № 105``, ``договору № 7``, ``Мерчант
    №7612345``) is not an order."""
    if not text:
        return None
    match = _ORDER_AFTER_WORD.search(text)
    if match:
        return match.group(1)
    for match in _ORDER_AFTER_SIGN.finditer(text):
        before = _WORD_BEFORE.search(text[: match.start()])
        if before and before.group(1).casefold().startswith(_NOT_ORDER_WORDS):
            continue
        return match.group(1)
    return None


def clean_inn(value: str | None) -> str | None:
    """An INN as digits, or None where the bank wrote nothing, ``0`` or a placeholder."""
    if not value:
        return None
    digits = value.strip()
    if not digits.isdigit() or set(digits) == {"0"}:
        return None
    return digits


def line_id(
    *,
    account: str | None,
    on: date,
    number: str | None,
    amount: Decimal,
    payer_inn: str | None,
    payer_name: str | None = None,
    purpose: str | None = None,
) -> str:
    """The deterministic base id of a payment: account + date + number + amount + payer INN.

    Where the document has no number (some CSV exports), the payer name and purpose are added,
    so that two different people paying the same amount on the same day stay two payments.
    The result is a 32-character hex digest: the key holds an INN and a name, which the id must
    not show.
    """
    parts = [account or "", on.isoformat(), (number or "").strip(), f"{amount.quantize(_KOPECK)}"]
    parts.append(payer_inn or "")
    if not (number or "").strip():
        parts += [" ".join((payer_name or "").split()), " ".join((purpose or "").split())]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


class IdAllocator:
    """Hands out ``line_id``s for one file; a second identical payment in the same file gets
    ``-2`` appended, a third ``-3``, in file order, so re-reading the file gives the same ids."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def __call__(self, base: str) -> str:
        self._seen[base] += 1
        count = self._seen[base]
        return base if count == 1 else f"{base}-{count}"
