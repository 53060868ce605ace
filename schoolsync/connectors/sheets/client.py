"""Google Sheets API v4 client: read, append, update and batch-update cell values.

Every request is ``{base_url}/v4/spreadsheets/{id}/values/...`` with ``Authorization: Bearer``
from :class:`~schoolsync.connectors.sheets.auth.ServiceAccountTokens`, after ``pacer.acquire``
(the account's budget: ``per_minute`` requests a minute, Google's default quota of 60 per user
per project). Ranges are A1 notation with the sheet name quoted (``'Лист 1'!A:A``), and are
percent-encoded whole in the path. Values are written ``RAW`` unless asked otherwise: a comment
that starts with ``=`` stays text, never a formula.

Answers become errors through ``connectors.http``; the Sheets-specific part::

    timeout, connection error, 5xx          -> UnavailableError
    429 RESOURCE_EXHAUSTED                  -> RateLimitedError; pacer.penalize. Google sends no
                                               Retry-After and says "requests succeed again after
                                               a minute", so retry_after is 60 s unless a header
                                               says otherwise
    401 UNAUTHENTICATED                     -> the token is dropped and the request sent again
                                               ONCE with a fresh one; a second 401 -> AuthError
    403 PERMISSION_DENIED                   -> AuthError: share the spreadsheet with the service
                                               account's email (named in the message), or the
                                               API is not enabled / the scope is missing
    404 NOT_FOUND                           -> NotFoundError naming the spreadsheet id
    400 INVALID_ARGUMENT (bad range, ...)   -> RejectedError with Google's message, masked

Idempotency: ``values.append`` is not idempotent (a retry after a lost reply appends again).
:meth:`SheetsClient.append_unique` and :meth:`SheetsClient.upsert_row` are: each row carries our
key in one column, and the column is read before writing. They assume one writer per sheet at a
time (one job per spreadsheet, or a lock): two concurrent calls may both see a key as absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from schoolsync.connectors.http import Endpoint, body_failure, send
from schoolsync.connectors.sheets.a1 import column_index, column_letters, first_row, sheet_range
from schoolsync.connectors.sheets.models import (
    AppendResult,
    AppendValuesResponse,
    BatchUpdateResult,
    GoogleErrorBody,
    UpdateResult,
    ValueRange,
)
from schoolsync.core.errors import AuthError, NotFoundError, RateLimitedError
from schoolsync.core.pii import mask_text

API = "/v4/spreadsheets"
DEFAULT_RETRY_AFTER_S = 60.0
MAX_DETAIL = 300

Rows = Sequence[Sequence[str]]
InputOption = Literal["RAW", "USER_ENTERED"]
M = TypeVar("M", bound=BaseModel)


class Pacer(Protocol):
    """Rate budget shared by all workers (``connectors.pacing.Pacer``)."""

    def acquire(self, *, max_wait: float) -> object: ...

    def penalize(self, retry_after: float) -> object: ...


class TokenSource(Protocol):
    """Where bearer tokens come from (``ServiceAccountTokens``)."""

    @property
    def client_email(self) -> str: ...

    def token(self) -> str: ...

    def invalidate(self, token: str | None = None) -> None: ...


class UpsertResult(BaseModel):
    """Where :meth:`SheetsClient.upsert_row` wrote: ``row`` is 1-based; ``created`` if appended."""

    model_config = ConfigDict(frozen=True)

    updated_range: str
    row: int | None
    created: bool


def _google_detail(response: httpx.Response) -> str:
    """``STATUS: message`` from Google's error body, masked (it may quote what we sent)."""
    error = GoogleErrorBody.model_validate_json(response.content).error
    text = f"{error.status}: {error.message}" if error.status else error.message
    return mask_text(text)[:MAX_DETAIL]


def _rows(rows: Rows) -> list[list[str]]:
    return [list(row) for row in rows]


class SheetsClient:
    """One service account's Sheets API. Raises the errors in the module docstring."""

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        tokens: TokenSource,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 10.0,
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self._tokens = tokens
        self._pacer = pacer
        self._pace_max_wait_s = pace_max_wait_s

    def __repr__(self) -> str:
        return f"SheetsClient(account={self.endpoint.account!r})"

    # --- values ---------------------------------------------------------------------------------

    def get_values(self, spreadsheet_id: str, range_a1: str) -> list[list[str]]:
        """Cells of ``range_a1`` as displayed (FORMATTED_VALUE), row by row.

        Google leaves out trailing empty cells and rows; an empty range is ``[]``.
        """
        return self._get(spreadsheet_id, range_a1).values

    def append_rows(
        self,
        spreadsheet_id: str,
        range_a1: str,
        rows: Rows,
        *,
        input_option: InputOption = "RAW",
    ) -> AppendResult:
        """Insert ``rows`` after the table Google finds in ``range_a1`` (INSERT_ROWS).

        NOT idempotent: a retry after a lost reply appends again (see :meth:`append_unique`).
        """
        body = {"range": range_a1, "majorDimension": "ROWS", "values": _rows(rows)}
        data = self._call(
            "POST",
            self._path(spreadsheet_id, range_a1, ":append"),
            spreadsheet_id,
            params={"valueInputOption": input_option, "insertDataOption": "INSERT_ROWS"},
            json=body,
        )
        answer = self._parse(AppendValuesResponse, data, "append")
        return AppendResult(
            updated_range=answer.updates.updated_range,
            updated_rows=answer.updates.updated_rows,
            table_range=answer.table_range,
        )

    def update_values(self, spreadsheet_id: str, range_a1: str, rows: Rows) -> UpdateResult:
        """Overwrite the cells of ``range_a1`` with ``rows`` (RAW). Idempotent."""
        body = {"range": range_a1, "majorDimension": "ROWS", "values": _rows(rows)}
        data = self._call(
            "PUT",
            self._path(spreadsheet_id, range_a1),
            spreadsheet_id,
            params={"valueInputOption": "RAW"},
            json=body,
        )
        return self._parse(UpdateResult, data, "update")

    def batch_update_values(
        self, spreadsheet_id: str, data: Sequence[tuple[str, Rows]]
    ) -> BatchUpdateResult:
        """Overwrite several ranges in one request (RAW); Google applies all or none."""
        if not data:
            return BatchUpdateResult(spreadsheetId=spreadsheet_id)
        body = {
            "valueInputOption": "RAW",
            "data": [
                {"range": range_a1, "majorDimension": "ROWS", "values": _rows(rows)}
                for range_a1, rows in data
            ],
        }
        answer = self._call(
            "POST",
            f"{API}/{quote(spreadsheet_id, safe='')}/values:batchUpdate",
            spreadsheet_id,
            json=body,
        )
        return self._parse(BatchUpdateResult, answer, "batchUpdate")

    # --- idempotent writes ---------------------------------------------------------------------

    def append_unique(
        self,
        spreadsheet_id: str,
        sheet: str,
        rows: Rows,
        *,
        key_column: str = "A",
    ) -> AppendResult | None:
        """Append the rows whose key is not in the sheet yet; ``None`` when none is left.

        Each row carries our key in ``key_column`` (its cell at that column's index). The column
        ``'{sheet}'!{key_column}:{key_column}`` is read first; rows whose key is there, and
        repeats within ``rows``, are dropped; the rest go after the table at ``'{sheet}'!A1``.
        So a retry after an append whose reply was lost never writes a row twice.

        Raises:
            ValueError: a row has no key in ``key_column``.
        """
        index = column_index(key_column)
        self._check_keys(rows, index, key_column)
        seen = set(self._keys(spreadsheet_id, sheet, key_column))
        fresh: list[list[str]] = []
        for row in rows:
            if row[index] not in seen:
                seen.add(row[index])
                fresh.append(list(row))
        if not fresh:
            return None
        return self.append_rows(spreadsheet_id, sheet_range(sheet, "A1"), fresh)

    def upsert_row(
        self,
        spreadsheet_id: str,
        sheet: str,
        key: str,
        row: Sequence[str],
        *,
        key_column: str = "A",
    ) -> UpsertResult:
        """Write ``row`` over the row whose ``key_column`` cell is ``key``, else append it.

        ``row`` starts at column A and holds ``key`` at ``key_column``. If several rows hold the
        key, the first is updated. A rerun updates the same row: never a second one.

        Raises:
            ValueError: ``row`` does not hold ``key`` at ``key_column``.
        """
        index = column_index(key_column)
        if not key or len(row) <= index or row[index] != key:
            raise ValueError(f"the row must hold its key in column {key_column}")
        rows = self._keys(spreadsheet_id, sheet, key_column)
        number = rows.get(key)
        if number is None:
            appended = self.append_rows(spreadsheet_id, sheet_range(sheet, "A1"), [row])
            return UpsertResult(
                updated_range=appended.updated_range,
                row=first_row(appended.updated_range),
                created=True,
            )
        last = column_letters(len(row) - 1)
        updated = self.update_values(
            spreadsheet_id, sheet_range(sheet, f"A{number}:{last}{number}"), [row]
        )
        return UpsertResult(updated_range=updated.updated_range, row=number, created=False)

    def _check_keys(self, rows: Rows, index: int, key_column: str) -> None:
        for row in rows:
            if len(row) <= index or not row[index]:
                raise ValueError(f"every row needs its key in column {key_column}")

    def _keys(self, spreadsheet_id: str, sheet: str, key_column: str) -> dict[str, int]:
        """Each key in the column -> the 1-based number of the first row holding it."""
        column = key_column.upper()
        found = self._get(spreadsheet_id, sheet_range(sheet, f"{column}:{column}"))
        start = first_row(found.range) or 1
        keys: dict[str, int] = {}
        for offset, cells in enumerate(found.values):
            if cells and cells[0] and cells[0] not in keys:
                keys[cells[0]] = start + offset
        return keys

    # --- one request ---------------------------------------------------------------------------

    def _get(self, spreadsheet_id: str, range_a1: str) -> ValueRange:
        data = self._call(
            "GET",
            self._path(spreadsheet_id, range_a1),
            spreadsheet_id,
            params={"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"},
        )
        return self._parse(ValueRange, data, "get")

    @staticmethod
    def _path(spreadsheet_id: str, range_a1: str, suffix: str = "") -> str:
        return f"{API}/{quote(spreadsheet_id, safe='')}/values/{quote(range_a1, safe='')}{suffix}"

    def _call(
        self,
        method: str,
        path: str,
        spreadsheet_id: str,
        *,
        params: dict[str, str] | None = None,
        json: object = None,
    ) -> tuple[Any, httpx.Response]:
        """Pace, authorize, send; on a 401 once more with a fresh token. The parsed JSON body."""
        retried = False
        while True:
            if self._pacer is not None:
                self._pacer.acquire(max_wait=self._pace_max_wait_s)
            token = self._tokens.token()
            request = self.http.build_request(
                method,
                path,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            try:
                response = send(self.http, self.endpoint, request, detail=_google_detail)
            except AuthError as exc:
                if exc.status == 401 and not retried:
                    self._tokens.invalidate(token)
                    retried = True
                    continue
                raise self._refused(exc, spreadsheet_id) from None
            except RateLimitedError as exc:
                if exc.retry_after is None:
                    exc.retry_after = DEFAULT_RETRY_AFTER_S
                if self._pacer is not None:
                    self._pacer.penalize(exc.retry_after)
                raise
            except NotFoundError as exc:
                raise NotFoundError(
                    f"{exc.message} (spreadsheet {spreadsheet_id} does not exist, or its id is wrong)",
                    platform=exc.platform,
                    account=exc.account,
                    status=exc.status,
                ) from None
            try:
                return response.json(), response
            except ValueError:
                raise body_failure(self.endpoint, response, "the answer is not JSON") from None

    def _refused(self, exc: AuthError, spreadsheet_id: str) -> AuthError:
        if exc.status == 403:
            hint = (
                f"share spreadsheet {spreadsheet_id} with the service account "
                f"{self._tokens.client_email} (as an editor to write), and check that the "
                f"Sheets API is enabled for its project"
            )
        else:
            hint = "the access token was refused twice; check the service account's key"
        return AuthError(
            f"{exc.message}; {hint}", platform=exc.platform, account=exc.account, status=exc.status
        )

    def _parse(self, model: type[M], answer: tuple[Any, httpx.Response], what: str) -> M:
        data, response = answer
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:5]
            )
            raise body_failure(
                self.endpoint, response, f"{what} answer not understood: {problems}"
            ) from None
