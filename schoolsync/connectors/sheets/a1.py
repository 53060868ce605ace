"""A1 notation for the ranges we send (developers.google.com/sheets/api/guides/concepts).

A sheet name is always quoted, single quotes inside doubled: ``'Лист 1'!A:A``,
``'O''Brien'!A1``. Google accepts quotes around any name, and without them a name with spaces,
``!``, or one that looks like a cell (``A1``) is read wrongly.
"""

from __future__ import annotations

import re

_LETTERS = re.compile(r"[A-Za-z]{1,3}")
_FIRST_CELL = re.compile(r"\$?[A-Za-z]{1,3}\$?([0-9]+)")


def quote_sheet(name: str) -> str:
    """``'name'`` with ``'`` doubled; ``ValueError`` for an empty name."""
    if not name:
        raise ValueError("a sheet name is required")
    return "'" + name.replace("'", "''") + "'"


def sheet_range(sheet: str, cells: str = "") -> str:
    """``'sheet'!cells``, or the whole sheet when ``cells`` is empty."""
    return f"{quote_sheet(sheet)}!{cells}" if cells else quote_sheet(sheet)


def column_index(letters: str) -> int:
    """``A`` -> 0, ``Z`` -> 25, ``AA`` -> 26; ``ValueError`` for anything but 1-3 letters."""
    if not _LETTERS.fullmatch(letters):
        raise ValueError(f"not a column: {letters!r}")
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def column_letters(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA``."""
    if index < 0:
        raise ValueError("a column index is not negative")
    letters = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def first_row(a1_range: str) -> int | None:
    """The first row number of a range Google returned (``'Лист1'!A7:E8`` -> 7), if it has one."""
    cells = a1_range.rpartition("!")[2]
    match = _FIRST_CELL.match(cells)
    return int(match.group(1)) if match else None
