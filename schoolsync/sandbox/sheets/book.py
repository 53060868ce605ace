"""Spreadsheets as the sandbox keeps them: tabs of cells on a grid, and who they are shared with.

A cell is a string, a number or a boolean; ``""`` is an empty cell. Each tab has a grid size
(Google's default for a new sheet is 1000 rows x 26 columns); inserting rows grows it, writing
outside it is refused as Google does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schoolsync.sandbox.sheets.a1 import CellRange, RangeError, parse_cells, split_sheet
from schoolsync.sandbox.sheets.errors import GoogleError, unparsable

Cell = str | int | float | bool
DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26


@dataclass
class Tab:
    title: str
    rows: list[list[Cell]] = field(default_factory=list)
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLUMNS

    def used_rows(self) -> int:
        """Rows up to and including the last one with a non-empty cell."""
        for index in range(len(self.rows) - 1, -1, -1):
            if any(cell != "" for cell in self.rows[index]):
                return index + 1
        return 0

    def used_columns(self, row0: int, row1: int) -> int:
        width = 0
        for row in self.rows[row0:row1]:
            for index in range(len(row) - 1, -1, -1):
                if row[index] != "":
                    width = max(width, index + 1)
                    break
        return width

    def first_used_row(self) -> int | None:
        for index, row in enumerate(self.rows):
            if any(cell != "" for cell in row):
                return index
        return None

    def read(self, row0: int, col0: int, row1: int, col1: int) -> list[list[Cell]]:
        """Cells in the box, trailing empty cells and rows left out (as the API does)."""
        out: list[list[Cell]] = []
        for row in self.rows[row0 : min(row1, len(self.rows))]:
            cells = list(row[col0:col1])
            while cells and cells[-1] == "":
                cells.pop()
            out.append(cells)
        while out and not out[-1]:
            out.pop()
        return out

    def write(self, row0: int, col0: int, values: list[list[Cell | None]]) -> None:
        """``None`` leaves a cell as it is; ``""`` clears it. The caller checked the grid."""
        for r, line in enumerate(values):
            index = row0 + r
            while len(self.rows) <= index:
                self.rows.append([])
            row = self.rows[index]
            for c, value in enumerate(line):
                if value is None:
                    continue
                column = col0 + c
                while len(row) <= column:
                    row.append("")
                row[column] = value

    def insert_rows(self, at: int, count: int) -> None:
        """``count`` empty rows before row ``at`` (zero-based); the grid grows by ``count``."""
        while len(self.rows) < at:
            self.rows.append([])
        self.rows[at:at] = [[] for _ in range(count)]
        self.row_count += count

    def dump(self) -> list[list[Cell]]:
        return self.read(0, 0, self.row_count, self.column_count)


@dataclass
class Spreadsheet:
    id: str
    tabs: dict[str, Tab]
    shared_with: set[str] = field(default_factory=set)

    def resolve(self, text: str) -> tuple[Tab, CellRange]:
        """The tab and cells an A1 range names; ``GoogleError`` 400 "Unable to parse range"."""
        try:
            sheet, cells = split_sheet(text.strip())
        except RangeError:
            raise unparsable(text) from None
        if sheet is None and cells is not None:
            tab = self._find(cells)
            if tab is not None:  # a bare sheet title
                return tab, CellRange(tab.title, 0, 0, None, None)
            tab = next(iter(self.tabs.values()), None)
        else:
            tab = self._find(sheet or "")
        if tab is None:
            raise unparsable(text)
        if cells is None:
            return tab, CellRange(tab.title, 0, 0, None, None)
        try:
            return tab, parse_cells(cells, tab.title)
        except RangeError:
            raise unparsable(text) from None

    def _find(self, title: str) -> Tab | None:
        if title in self.tabs:
            return self.tabs[title]
        folded = title.casefold()
        return next((t for t in self.tabs.values() if t.title.casefold() == folded), None)

    def dump(self) -> dict[str, object]:
        return {
            "id": self.id,
            "shared_with": sorted(self.shared_with),
            "tabs": {title: tab.dump() for title, tab in self.tabs.items()},
            "grid": {title: [tab.row_count, tab.column_count] for title, tab in self.tabs.items()},
        }


def new_spreadsheet(
    spreadsheet_id: str,
    tabs: Mapping[str, Sequence[Sequence[Cell]]],
    shared_with: set[str],
    *,
    rows: int = DEFAULT_ROWS,
    columns: int = DEFAULT_COLUMNS,
) -> Spreadsheet:
    made: dict[str, Tab] = {}
    for title, values in (tabs or {"Лист1": []}).items():
        tab = Tab(
            title,
            row_count=max(rows, len(values)),
            column_count=max(columns, max((len(v) for v in values), default=0)),
        )
        tab.write(0, 0, [list(v) for v in values])
        made[title] = tab
    return Spreadsheet(spreadsheet_id, made, set(shared_with))


def check_grid(tab: Tab, row1: int, col1: int, where: str) -> None:
    if row1 > tab.row_count or col1 > tab.column_count:
        raise GoogleError(
            400,
            f"Range ({where}) exceeds grid limits. Max rows: {tab.row_count}, "
            f"max columns: {tab.column_count}",
        )
