"""A1 notation as the Sheets API reads and writes it (developers.google.com/sheets/api/guides/concepts).

Ranges we parse: ``Sheet1!A1:B2``, ``'Лист 1'!A:A`` (quotes doubled inside), ``Sheet1!1:3``,
``Sheet1!A5:E`` (open to the end of the grid), ``Sheet1!A1`` (one cell), ``Sheet1`` (the whole
sheet), and ``A1:B2`` with no sheet (the first sheet). An unquoted name may hold spaces
(``Class Data!A2:E`` is the quickstart's own example); a name holding ``!`` or ``'`` needs quotes.
A reversed range (``B2:A1``) is normalised. Anything else is "Unable to parse range".

Ranges we write back name the sheet quoted when it is not a plain identifier
(``'Ответы на форму (1)'!A1:E12``, ``Sheet1!A1:Z1000``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_COLUMNS = 18_278  # ZZZ
MAX_ROWS = 10_000_000
_CELL = re.compile(r"(?P<col>[A-Za-z]{1,3})?(?P<row>[1-9][0-9]{0,7})?")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOOKS_LIKE_CELL = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*")


class RangeError(ValueError):
    """Not a range we can read."""


@dataclass(frozen=True)
class CellRange:
    """Zero-based, end-exclusive bounds on one sheet; ``None`` ends run to the grid's edge."""

    sheet: str | None  # None: the first sheet
    row0: int
    col0: int
    row1: int | None
    col1: int | None
    single: bool = False  # written as one cell (A1): an anchor that data may extend from

    def bounded(self, rows: int, columns: int) -> tuple[int, int, int, int]:
        """``(row0, col0, row1, col1)`` with open ends closed at a grid of ``rows x columns``."""
        row1 = rows if self.row1 is None else self.row1
        col1 = columns if self.col1 is None else self.col1
        return self.row0, self.col0, row1, col1


def column_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def quote_sheet(title: str) -> str:
    if _PLAIN_NAME.fullmatch(title) and not _LOOKS_LIKE_CELL.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def format_range(title: str, row0: int, col0: int, row1: int, col1: int) -> str:
    """``'Title'!A1:B2`` for zero-based end-exclusive bounds (``A1`` for one cell)."""
    start = f"{column_letters(col0)}{row0 + 1}"
    end = f"{column_letters(col1 - 1)}{row1}"
    cells = start if (row1 - row0, col1 - col0) == (1, 1) else f"{start}:{end}"
    return f"{quote_sheet(title)}!{cells}"


def split_sheet(text: str) -> tuple[str | None, str | None]:
    """``(sheet, cells)``: either may be None (no ``!``: the caller decides which it is)."""
    if text.startswith("'"):
        index, name = 1, []
        while index < len(text):
            char = text[index]
            if char == "'":
                if text[index + 1 : index + 2] == "'":
                    name.append("'")
                    index += 2
                    continue
                rest = text[index + 1 :]
                if rest == "":
                    return "".join(name), None
                if rest.startswith("!") and len(rest) > 1:
                    return "".join(name), rest[1:]
                raise RangeError(text)
            name.append(char)
            index += 1
        raise RangeError(text)
    if "!" in text:
        sheet, _, cells = text.rpartition("!")
        if not sheet or not cells:
            raise RangeError(text)
        return sheet, cells
    return None, text


def parse_cells(text: str, sheet: str | None) -> CellRange:
    """The ``A1:B2`` part."""
    parts = text.split(":")
    if len(parts) > 2 or not all(parts):
        raise RangeError(text)
    ends = []
    for part in parts:
        match = _CELL.fullmatch(part)
        if match is None or not (match["col"] or match["row"]):
            raise RangeError(text)
        col = column_index(match["col"]) if match["col"] else None
        row = int(match["row"]) - 1 if match["row"] else None
        if (col is not None and col >= MAX_COLUMNS) or (row is not None and row >= MAX_ROWS):
            raise RangeError(text)
        ends.append((row, col))
    if len(ends) == 1:
        row, col = ends[0]
        if row is None or col is None:
            raise RangeError(text)
        return CellRange(sheet, row, col, row + 1, col + 1, single=True)
    (row_a, col_a), (row_b, col_b) = ends
    if col_a is not None and col_b is not None:
        col0, col1 = min(col_a, col_b), max(col_a, col_b) + 1
        if row_a is not None and row_b is not None:  # A1:B2
            return CellRange(sheet, min(row_a, row_b), col0, max(row_a, row_b) + 1, col1)
        if row_b is None:  # A:B, A5:E (to the last row)
            return CellRange(sheet, row_a or 0, col0, None, col1)
    elif col_a is None and col_b is None and row_a is not None and row_b is not None:  # 1:3
        return CellRange(sheet, min(row_a, row_b), 0, max(row_a, row_b) + 1, None)
    raise RangeError(text)
