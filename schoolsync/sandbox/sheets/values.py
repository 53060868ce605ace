"""The ``spreadsheets.values`` methods on a spreadsheet: get, update, append, batchUpdate.

Shapes from the v4 reference (ValueRange, UpdateValuesResponse, AppendValuesResponse,
BatchUpdateValuesResponse). JSON leaves out zero counts and empty strings, as proto3 JSON does:
a read of empty cells has no ``values``, an append to an empty sheet has no ``tableRange``.

- ``valueInputOption`` is required for writes. ``RAW`` stores what was sent (a string stays a
  string, ``"=1+1"`` and ``"00123"`` included); ``USER_ENTERED`` turns numbers and TRUE/FALSE
  typed as text into numbers and booleans (formulas are kept as text: nothing is evaluated).
- ``FORMATTED_VALUE`` (the default) renders every cell as a string; ``UNFORMATTED_VALUE`` and
  ``FORMULA`` give numbers and booleans as JSON numbers and booleans.
- A ``range`` in a body must equal the URL's range as written (Google compares the strings).
- A one-cell range (``A5``) is an anchor the values may extend from; a larger range must hold
  them ("Requested writing within range [...], but tried writing to row [n]").
- A range reaching past the sheet's grid is refused, for reads as for writes ("Range (...)
  exceeds grid limits. Max rows: 1000, max columns: 26"); open ends (``A:A``, ``A5:E``) stop at
  the grid's edge.
- Append looks for the table in the range's sheet: from its first to its last non-empty row.
  Values go in the rows after it, from the range's first column; ``INSERT_ROWS`` inserts new rows
  there, ``OVERWRITE`` (the default) writes into the rows that follow. Either way the grid grows
  (rows and columns) to hold them.
- ``batchUpdate`` is atomic: every range is checked before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from schoolsync.sandbox.sheets.a1 import column_letters, format_range
from schoolsync.sandbox.sheets.book import Cell, Spreadsheet, Tab, check_grid
from schoolsync.sandbox.sheets.errors import GoogleError, invalid

INPUT_OPTIONS = ("RAW", "USER_ENTERED")
RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
INSERT_OPTIONS = ("OVERWRITE", "INSERT_ROWS")
DIMENSIONS = ("ROWS", "COLUMNS")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

Values = list[list[Cell | None]]


def _enum(value: str | None, allowed: tuple[str, ...], field: str, default: str | None) -> str:
    if value is None or value == "":
        if default is None:
            raise invalid(f"'{field}' is required but not specified")
        return default
    if value not in allowed:
        raise invalid(f"Invalid value at '{field}' (TYPE_ENUM), \"{value}\"")
    return value


def input_option(value: str | None) -> str:
    return _enum(value, INPUT_OPTIONS, "valueInputOption", None)


def render(cell: Cell, option: str) -> Cell:
    if option != "FORMATTED_VALUE":
        return cell
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _entered(value: Cell, option: str) -> Cell:
    if option == "RAW" or not isinstance(value, str):
        return value
    text = value.strip()
    if text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    if _NUMBER.fullmatch(text):
        number = float(text)
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    return value


def _transpose(values: list[list[Any]]) -> list[list[Any]]:
    width = max((len(row) for row in values), default=0)
    return [[row[c] if c < len(row) else None for row in values] for c in range(width)]


def read_values(payload: Any, option: str, where: str = "") -> Values:
    """The ``values`` of a ValueRange body, checked and converted for ``option``."""
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise invalid(
            f"Invalid value at '{where}values' (type.googleapis.com/google.protobuf.ListValue)"
        )
    out: Values = []
    for r, row in enumerate(payload):
        if not isinstance(row, list):
            raise invalid(f"Invalid {where}values[{r}]: {type(row).__name__}")
        line: list[Cell | None] = []
        for c, value in enumerate(row):
            if value is not None and not isinstance(value, str | int | float | bool):
                raise invalid(f"Invalid {where}values[{r}][{c}]: list_value")
            line.append(None if value is None else _entered(value, option))
        out.append(line)
    return out


def _value_range(
    body: Any, url_range: str | None, option: str, where: str = ""
) -> tuple[str, Values]:
    if not isinstance(body, Mapping):
        raise invalid("Invalid JSON payload received. Expected an object.")
    given = body.get("range")
    if url_range is not None and given not in (None, "") and given != url_range:
        raise invalid(f"Request range[{url_range}] does not match value's range[{given}]")
    text = url_range if url_range is not None else given
    if not isinstance(text, str) or not text:
        raise invalid(f"Invalid {where}range: a range is required")
    values = read_values(body.get("values"), option, where)
    if _enum(body.get("majorDimension"), DIMENSIONS, "majorDimension", "ROWS") == "COLUMNS":
        values = _transpose(values)
    return text, values


def get(book: Spreadsheet, text: str, params: Mapping[str, str]) -> dict[str, Any]:
    option = _enum(
        params.get("valueRenderOption"), RENDER_OPTIONS, "valueRenderOption", "FORMATTED_VALUE"
    )
    major = _enum(params.get("majorDimension"), DIMENSIONS, "majorDimension", "ROWS")
    tab, cells = book.resolve(text)
    row0, col0, row1, col1 = cells.bounded(tab.row_count, tab.column_count)
    if row1 > tab.row_count or col1 > tab.column_count or row0 >= tab.row_count:
        raise GoogleError(
            400,
            f"Range ({text}) exceeds grid limits. Max rows: {tab.row_count}, "
            f"max columns: {tab.column_count}",
        )
    body: dict[str, Any] = {
        "range": format_range(tab.title, row0, col0, max(row1, row0 + 1), max(col1, col0 + 1)),
        "majorDimension": major,
    }
    values: list[list[Any]] = [
        [render(c, option) for c in row] for row in tab.read(row0, col0, row1, col1)
    ]
    if major == "COLUMNS":
        values = [[("" if c is None else c) for c in col] for col in _transpose(values)]
        for col in values:
            while col and col[-1] == "":
                col.pop()
    if values:
        body["values"] = values
    return body


class _Write:
    """One checked write: where it goes and what it says, before anything changes."""

    def __init__(self, book: Spreadsheet, text: str, values: Values) -> None:
        tab, cells = book.resolve(text)
        self.tab: Tab = tab
        self.values = values
        self.rows = len(values)
        self.columns = max((len(row) for row in values), default=0)
        self.row0, self.col0 = cells.row0, cells.col0
        if not cells.single:
            _, _, row1, col1 = cells.bounded(tab.row_count, tab.column_count)
            if self.row0 + self.rows > row1:
                raise invalid(
                    f"Requested writing within range [{text}], but tried writing to row [{row1 + 1}]"
                )
            if self.col0 + self.columns > col1:
                raise invalid(
                    f"Requested writing within range [{text}], but tried writing to column "
                    f"[{column_letters(col1)}]"
                )
        where = format_range(
            tab.title,
            self.row0,
            self.col0,
            self.row0 + max(1, self.rows),
            self.col0 + max(1, self.columns),
        )
        check_grid(tab, self.row0 + self.rows, self.col0 + self.columns, where)
        bounded = cells.bounded(tab.row_count, tab.column_count)
        self.requested = format_range(
            tab.title,
            bounded[0],
            bounded[1],
            min(bounded[2], tab.row_count),
            min(bounded[3], tab.column_count),
        )

    def apply(self, spreadsheet_id: str) -> dict[str, Any]:
        self.tab.write(self.row0, self.col0, self.values)
        return updated(spreadsheet_id, self.tab, self.row0, self.col0, self.values, self.requested)


def updated(
    spreadsheet_id: str, tab: Tab, row0: int, col0: int, values: Values, requested: str
) -> dict[str, Any]:
    """An UpdateValuesResponse for ``values`` written at ``(row0, col0)``."""
    rows = len(values)
    columns = max((len(row) for row in values), default=0)
    cells = sum(1 for row in values for cell in row if cell is not None)
    body: dict[str, Any] = {"spreadsheetId": spreadsheet_id}
    if rows and columns:
        body["updatedRange"] = format_range(tab.title, row0, col0, row0 + rows, col0 + columns)
        body["updatedRows"] = rows
        body["updatedColumns"] = columns
        body["updatedCells"] = cells
    else:
        body["updatedRange"] = requested
    return body


def update(book: Spreadsheet, text: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
    option = input_option(params.get("valueInputOption"))
    text, values = _value_range(body, text, option)
    return _Write(book, text, values).apply(book.id)


def append(book: Spreadsheet, text: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
    option = input_option(params.get("valueInputOption"))
    insert = _enum(params.get("insertDataOption"), INSERT_OPTIONS, "insertDataOption", "OVERWRITE")
    text, values = _value_range(body, text, option)
    tab, cells = book.resolve(text)
    first = tab.first_used_row()
    used = tab.used_rows()
    result: dict[str, Any] = {"spreadsheetId": book.id}
    if first is not None:
        width = max(tab.used_columns(first, used), cells.col0 + 1)
        result["tableRange"] = format_range(tab.title, first, cells.col0, used, width)
    row0 = used
    rows = len(values)
    columns = max((len(row) for row in values), default=0)
    tab.column_count = max(tab.column_count, cells.col0 + columns)  # append grows the grid
    if insert == "INSERT_ROWS" and rows:
        tab.insert_rows(row0, rows)
    elif row0 + rows > tab.row_count:
        tab.row_count = row0 + rows  # OVERWRITE past the last row adds rows too
    tab.write(row0, cells.col0, values)
    result["updates"] = updated(book.id, tab, row0, cells.col0, values, text)
    return result


def batch_update(book: Spreadsheet, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise invalid("Invalid JSON payload received. Expected an object.")
    option = input_option(body.get("valueInputOption"))
    data = body.get("data") or []
    if not isinstance(data, list):
        raise invalid("Invalid value at 'data' (type.googleapis.com/google.sheets.v4.ValueRange)")
    writes: list[_Write] = []
    for index, item in enumerate(data):
        try:
            text, values = _value_range(item, None, option, f"data[{index}].")
            writes.append(_Write(book, text, values))
        except GoogleError as error:
            raise invalid(f"Invalid data[{index}]: {error.message}") from None
    responses = [write.apply(book.id) for write in writes]
    result: dict[str, Any] = {"spreadsheetId": book.id}
    totals = {
        "totalUpdatedRows": sum(r.get("updatedRows", 0) for r in responses),
        "totalUpdatedColumns": sum(r.get("updatedColumns", 0) for r in responses),
        "totalUpdatedCells": sum(r.get("updatedCells", 0) for r in responses),
        "totalUpdatedSheets": len({w.tab.title for w in writes if w.rows}),
    }
    result.update({k: v for k, v in totals.items() if v})
    if responses:
        result["responses"] = responses
    return result
