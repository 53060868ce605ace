"""Bank statements: the 1CClientBankExchange text file and CSV exports, read into incoming
payments with deterministic ids (re-importing a statement adds nothing) and per-line problems.

Pure parsing of bytes the caller read; no I/O here.
"""

from __future__ import annotations

from schoolsync.connectors.bankstatements.csvfile import CsvColumns, parse_csv
from schoolsync.connectors.bankstatements.models import (
    StatementLine,
    StatementParse,
    StatementProblem,
    find_order_number,
)
from schoolsync.connectors.bankstatements.onec import is_1c, parse_1c

__all__ = [
    "CsvColumns",
    "StatementLine",
    "StatementParse",
    "StatementProblem",
    "find_order_number",
    "parse_1c",
    "parse_csv",
    "parse_statement",
]


def parse_statement(data: bytes, columns: CsvColumns | None = None) -> StatementParse:
    """A 1C file when it starts with ``1CClientBankExchange``, a CSV export otherwise.

    Raises ``MalformedInputError`` when ``data`` is neither.
    """
    if is_1c(data):
        return parse_1c(data)
    return parse_csv(data, columns)
