"""``/_sandbox/*``: what tests and the demo use to read, feed and disturb the project.

No auth, no quota, not counted. The key file is the one secret served, on purpose: it is the
sandbox's own, made at start-up, and downloading it is how a client is set up.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.sheets.api import token_url
from schoolsync.sandbox.sheets.auth import key_file
from schoolsync.sandbox.sheets.book import Cell, new_spreadsheet
from schoolsync.sandbox.sheets.faults import FaultRule
from schoolsync.sandbox.sheets.state import SheetsSandbox


def _one_empty_tab() -> dict[str, list[list[Cell]]]:
    return {"Лист1": []}


class NewSpreadsheet(BaseModel):
    """``POST /_sandbox/spreadsheets``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    tabs: dict[str, list[list[Cell]]] = Field(default_factory=_one_empty_tab)
    shared_with: list[str] | None = None  # None: the sandbox's service account


class NewRows(BaseModel):
    """``POST /_sandbox/spreadsheets/{id}/rows``: a form submission (or several)."""

    model_config = ConfigDict(extra="forbid")

    tab: str | None = None  # None: the first tab
    rows: list[list[Cell]]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_minute: int = Field(ge=1, le=100_000)


def _refuse(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def get_key_file(sb: SheetsSandbox, request: Request) -> Response:
    """The service account's JSON key, its ``token_uri`` pointing at this sandbox."""
    return JSONResponse(key_file(sb.account, sb.config.project_id, token_url(request)))


async def post_spreadsheet(sb: SheetsSandbox, request: Request) -> Response:
    """Create (or replace) a spreadsheet with its tabs and the emails it is shared with."""
    try:
        spec = NewSpreadsheet.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad spreadsheet: {exc}")
    if not spec.tabs:
        return _refuse("a spreadsheet has at least one tab")
    shared = set(spec.shared_with) if spec.shared_with is not None else {sb.account.email}
    book = new_spreadsheet(spec.id, spec.tabs, shared)
    with sb.lock:
        sb.books[spec.id] = book
        return JSONResponse(book.dump())


async def post_rows(sb: SheetsSandbox, request: Request) -> Response:
    """Append rows after the last non-empty row of a tab, as a Google Form does."""
    try:
        spec = NewRows.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad rows: {exc}")
    with sb.lock:
        book = sb.books.get(str(request.path_params["id"]))
        if book is None:
            return _refuse("unknown spreadsheet", 404)
        title = spec.tab if spec.tab is not None else next(iter(book.tabs))
        tab = book.tabs.get(title)
        if tab is None:
            return _refuse("unknown tab", 404)
        first = tab.used_rows()
        tab.insert_rows(first, len(spec.rows))
        tab.column_count = max(tab.column_count, max((len(r) for r in spec.rows), default=0))
        tab.write(first, 0, [list(r) for r in spec.rows])
        return JSONResponse({"tab": title, "first_row": first + 1, "rows": len(spec.rows)})


async def get_spreadsheet(sb: SheetsSandbox, request: Request) -> Response:
    with sb.lock:
        book = sb.books.get(str(request.path_params["id"]))
        if book is None:
            return _refuse("unknown spreadsheet", 404)
        return JSONResponse(book.dump())


async def post_limits(sb: SheetsSandbox, request: Request) -> Response:
    try:
        limits = Limits.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad limits: {exc}")
    sb.quotas.set_limit(limits.per_minute)
    return JSONResponse({"per_minute": limits.per_minute})


async def get_state(sb: SheetsSandbox, request: Request) -> Response:
    return JSONResponse(sb.state())


async def post_faults(sb: SheetsSandbox, request: Request) -> Response:
    try:
        rule = FaultRule.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad fault settings: {exc}")
    sb.faults.set(rule)
    return JSONResponse({"faults": sb.faults.rules()})


async def delete_faults(sb: SheetsSandbox, request: Request) -> Response:
    sb.faults.clear()
    return JSONResponse({"faults": []})


async def post_revoke_tokens(sb: SheetsSandbox, request: Request) -> Response:
    """Every access token handed out stops working (the next call answers 401)."""
    return JSONResponse({"revoked": sb.tokens.revoke_all()})


async def post_reset(sb: SheetsSandbox, request: Request) -> Response:
    sb.reset()
    return JSONResponse({"reset": True})
