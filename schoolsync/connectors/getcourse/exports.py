"""GetCourse export API: start an export, fetch its table later, map rows by column title.

Two steps [third-party, consistent across many public integrations]::

    GET /pl/api/account/{deals|users|payments}?key=…&created_at[from]=…   -> info.export_id
    GET /pl/api/account/exports/{export_id}?key=…
        not ready: success false, error_code 909, "Файл еще не создан"      -> None
        ready:     success true, info.fields (column titles), info.items (rows as arrays)

The column set differs per account (custom fields are spliced into the middle), so rows are
read by TITLE, never by position. Limits: about 100 export-API requests per 2 hours per account,
status checks included, and one export at a time per account; over the limit GetCourse answers
"Слишком много запросов" (903) and a second start "Уже запущен один экспорт" (905).
``ExportBudget`` keeps every worker under both limits through Redis, so an exhausted budget is
a ``RateLimitedError`` raised here, without calling GetCourse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo

import httpx
import redis
from pydantic import BaseModel, ConfigDict

from schoolsync.connectors.getcourse.client import (
    GetCourseApi,
    Pacer,
    error_code,
    error_text,
    failure_kind,
)
from schoolsync.connectors.getcourse.models import parse_local_datetime, status_code, truthy
from schoolsync.connectors.getcourse.money import parse_money
from schoolsync.connectors.http import Endpoint, body_failure
from schoolsync.core.domain import Money
from schoolsync.core.errors import (
    MalformedInputError,
    RateLimitedError,
    RetryableError,
    SchoolsyncError,
    StoreUnavailableError,
)

ExportKind = Literal["deals", "users", "payments"]
EXPORT_KINDS: Final = frozenset({"deals", "users", "payments"})
PENDING_CODE: Final = 909
PENDING_MARKERS: Final = ("еще не создан", "ещё не создан")


# --------------------------------------------------------------------------- budget in Redis

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local blocked = redis.call('PTTL', KEYS[4])
if blocked > 0 then return {0, blocked, 0} end
if ARGV[4] == '1' then
  local held = redis.call('PTTL', KEYS[2])
  if held ~= -2 then
    if held < 0 then held = tonumber(ARGV[3]) end
    return {0, 0, held}
  end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now, 0}
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], now, now .. '-' .. seq)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PEXPIRE', KEYS[3], window)
if ARGV[4] == '1' then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
return {1, 0, 0}
"""

_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local wait = 0
if used >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
wait = math.max(wait, redis.call('PTTL', KEYS[4]))
local held = redis.call('PTTL', KEYS[2])
if held == -1 then held = tonumber(ARGV[3]) end
return {used, wait, math.max(held, 0)}
"""


@dataclass(frozen=True)
class BudgetState:
    used: int  # requests counted in the current window
    wait_s: float  # until a request may be made (0 = now)
    lock_s: float  # until the running export's lock expires (0 = no export running)


class ExportBudget:
    """The export-API budget of one account, shared by every worker through Redis.

    At most ``budget`` requests per ``window_s`` (sliding, Redis server time), and one export
    at a time: ``try_start`` takes a lock that ``release`` drops when the file has been fetched
    (or the export failed); ``lock_timeout_s`` frees it if nobody does. ``block`` stops all
    requests for a while after GetCourse itself said the limit is exceeded. Redis failures
    raise ``StoreUnavailableError``.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        account: str,
        budget: int,
        window_s: int,
        *,
        lock_timeout_s: int = 1800,
        prefix: str = "schoolsync",
    ) -> None:
        if budget < 1 or window_s < 1 or lock_timeout_s < 1:
            raise ValueError("budget, window_s and lock_timeout_s must be positive")
        self.account = account
        self.budget = budget
        self.window_s = window_s
        self.lock_timeout_s = lock_timeout_s
        base = f"{prefix}:{{getcourse:{account}}}:export"
        self._keys = [f"{base}:requests", f"{base}:lock", f"{base}:seq", f"{base}:blocked"]
        self._redis = redis_client
        self._reserve = redis_client.register_script(_RESERVE)
        self._state = redis_client.register_script(_STATE)

    def _args(self, lock: bool) -> list[int]:
        return [self.budget, self.window_s * 1000, self.lock_timeout_s * 1000, int(lock)]

    def _run(self, script: Any, lock: bool) -> list[int]:
        try:
            return [int(x) for x in script(keys=self._keys, args=self._args(lock))]
        except redis.RedisError as exc:
            raise StoreUnavailableError(
                f"export budget unavailable ({type(exc).__name__})",
                platform="getcourse",
                account=self.account,
            ) from exc

    def try_start(self) -> bool:
        """Count one request and take the one-export lock, or return False and change nothing."""
        return self._run(self._reserve, True)[0] == 1

    def try_request(self) -> bool:
        """Count one request that is not a start (a status check), or return False."""
        return self._run(self._reserve, False)[0] == 1

    def release(self) -> None:
        """Drop the one-export lock (the file was fetched, or the export cannot go on)."""
        self._call(lambda: self._redis.delete(self._keys[1]))

    def block(self, seconds: float) -> None:
        """Make every worker wait ``seconds`` before the next request (GetCourse said 903)."""
        millis = max(1, int(seconds * 1000))
        self._call(lambda: self._redis.set(self._keys[3], "1", px=millis))

    def state(self) -> BudgetState:
        used, wait_ms, lock_ms = self._run(self._state, False)
        return BudgetState(used=used, wait_s=wait_ms / 1000, lock_s=lock_ms / 1000)

    def _call(self, action: Any) -> None:
        try:
            action()
        except redis.RedisError as exc:
            raise StoreUnavailableError(
                f"export budget unavailable ({type(exc).__name__})",
                platform="getcourse",
                account=self.account,
            ) from exc


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class ExportTable:
    """A finished export: column titles and rows aligned to them."""

    fields: list[str]
    items: list[list[Any]]

    def keys(self) -> list[str]:
        """Unique row keys: a repeated title gets `` (2)``, `` (3)``…, so no column is lost."""
        seen: dict[str, int] = {}
        keys: list[str] = []
        for title in self.fields:
            seen[title] = seen.get(title, 0) + 1
            keys.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
        return keys

    def rows(self) -> list[dict[str, Any]]:
        """Each row as ``{column title: cell}``; a short row is padded with None.

        Raises ``MalformedInputError`` for a row longer than the header (misaligned columns
        would put values under the wrong titles).
        """
        keys = self.keys()
        out: list[dict[str, Any]] = []
        for index, row in enumerate(self.items):
            if len(row) > len(keys):
                raise MalformedInputError(
                    f"export row {index + 1} has {len(row)} cells for {len(keys)} columns",
                    platform="getcourse",
                )
            out.append({key: row[i] if i < len(row) else None for i, key in enumerate(keys)})
        return out


def flatten_filters(filters: Mapping[str, Any]) -> dict[str, str]:
    """``{"created_at": {"from": date(2026, 1, 1)}}`` -> ``{"created_at[from]": "2026-01-01"}``.

    Flat keys pass through; lists become comma-separated; dates ``YYYY-MM-DD``.
    """

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, list | tuple | set):
            return ",".join(text(item) for item in value)
        return str(value)

    flat: dict[str, str] = {}
    for name, value in filters.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if inner is not None:
                    flat[f"{name}[{sub}]"] = text(inner)
        elif value is not None:
            flat[name] = text(value)
    return flat


class GetCourseExports:
    """Start exports and fetch their tables, within the account's ``ExportBudget``.

    ``budget`` may be None only where one process is the sole user of the account (tests, a
    one-off CLI run). Raises ``RateLimitedError`` (budget, 903, 905), ``AuthError``,
    ``RejectedError``, ``UnavailableError``, ``StoreUnavailableError``.
    """

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        key: str,
        budget: ExportBudget | None,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 5.0,
        rate_limited_retry_after_s: float = 600.0,
        busy_retry_after_s: float = 60.0,
        tz: ZoneInfo | str = "Europe/Moscow",
        default_currency: str = "RUB",
    ) -> None:
        """``tz`` is the account's time zone and ``default_currency`` its currency, for
        ``deal_rows``."""
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.default_currency = default_currency
        self._api = GetCourseApi(
            http,
            endpoint,
            key,
            pacer,
            pace_max_wait_s=pace_max_wait_s,
            rate_limited_retry_after_s=rate_limited_retry_after_s,
            busy_retry_after_s=busy_retry_after_s,
        )
        self._budget = budget

    def start_export(self, kind: ExportKind, filters: Mapping[str, Any]) -> int:
        """Start an export of ``kind`` and return its id; GetCourse needs at least one filter.

        The one-export lock stays taken until ``fetch_export`` returns the table.
        """
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export kind {kind!r}; use one of {sorted(EXPORT_KINDS)}")
        params = flatten_filters(filters)
        if not params:
            raise ValueError("GetCourse refuses an export without at least one filter")
        if "key" in params:
            raise ValueError("'key' is not a filter")
        if self._budget is not None and not self._budget.try_start():
            raise self._out_of_budget(self._budget, starting=True)
        try:
            request = self._request(f"/pl/api/account/{kind}", params)
            response, envelope = self._call(request)
            if not truthy(envelope.get("success")):
                raise self._failure(response, envelope)
            info = envelope.get("info")
            export_id = info.get("export_id") if isinstance(info, dict) else None
            try:
                return int(str(export_id))
            except ValueError:
                raise body_failure(
                    self._api.endpoint, response, "no export_id in the answer"
                ) from None
        except Exception:
            if self._budget is not None:
                self._budget.release()  # nothing is running that the lock would protect
            raise

    def fetch_export(self, export_id: int) -> ExportTable | None:
        """The finished table, or None while GetCourse is still building it ("Файл еще не создан").

        Each call is one request from the budget. The one-export lock is released when the
        table is returned or the export turns out to be failed; it is kept while the export is
        still building and on errors worth retrying.
        """
        if self._budget is not None and not self._budget.try_request():
            raise self._out_of_budget(self._budget, starting=False)
        request = self._request(f"/pl/api/account/exports/{int(export_id)}", {})
        try:
            response, envelope = self._call(request)
        except RetryableError:
            raise
        except Exception:
            self._release()
            raise
        if not truthy(envelope.get("success")):
            text = error_text(envelope)
            if error_code(envelope) == PENDING_CODE or any(
                m in text.casefold() for m in PENDING_MARKERS
            ):
                return None
            error = self._failure(response, envelope)
            if not isinstance(error, RetryableError):
                self._release()
            raise error
        info = envelope.get("info")
        fields = info.get("fields") if isinstance(info, dict) else None
        items = info.get("items") if isinstance(info, dict) else None
        if not isinstance(fields, list) or not isinstance(items, list):
            status = str(info.get("status", "")) if isinstance(info, dict) else ""
            if status in ("error", "failed"):
                self._release()
                raise body_failure(self._api.endpoint, response, f"export {export_id} failed")
            return None  # an answer without a table yet (info.status "processing")
        self._release()
        return ExportTable(
            fields=[str(title) for title in fields],
            items=[row if isinstance(row, list) else [row] for row in items],
        )

    def deal_rows(self, table: ExportTable) -> list[DealExportRow]:
        """The orders of a deal export, read in this account's zone and currency."""
        return DealExportRow.parse_table(table, tz=self.tz, default_currency=self.default_currency)

    def _request(self, path: str, params: dict[str, str]) -> httpx.Request:
        return self._api.http.build_request(
            "GET",
            path,
            params={"key": self._api.key, **params},
            headers={"Accept": "application/json"},
        )

    def _call(self, request: httpx.Request) -> tuple[httpx.Response, dict[str, Any]]:
        try:
            return self._api.call(request)
        except RateLimitedError as exc:
            if exc.status == 429:  # GetCourse said so (not our own pacer)
                self._block(exc)
            raise

    def _failure(self, response: httpx.Response, envelope: dict[str, Any]) -> SchoolsyncError:
        text = error_text(envelope) or "success is false"
        error = self._api.failure(response, text, envelope)
        if failure_kind(error_code(envelope), text) == "rate" and isinstance(
            error, RateLimitedError
        ):
            self._block(error)  # every worker stops asking until the window clears
        return error

    def _block(self, exc: RateLimitedError) -> None:
        if self._budget is not None:
            self._budget.block(exc.retry_after or self._api.rate_limited_retry_after_s)

    def _release(self) -> None:
        if self._budget is not None:
            self._budget.release()

    def _out_of_budget(self, budget: ExportBudget, *, starting: bool) -> RateLimitedError:
        state = budget.state()
        wait = state.wait_s
        if starting and state.lock_s > 0:
            # another export is building; it usually finishes long before its lock expires
            wait = max(wait, min(state.lock_s, self._api.busy_retry_after_s))
        reason = "another export is running" if starting and state.lock_s > 0 else "budget used up"
        return RateLimitedError(
            f"getcourse export API: {reason} ({state.used}/{budget.budget} requests "
            f"in {budget.window_s} s); not sent",
            retry_after=max(wait, 1.0),
            platform="getcourse",
            account=self._api.endpoint.account,
        )


# --------------------------------------------------------------------------- deal rows


class Column(NamedTuple):
    """A column of the deal export we rely on, and how sure we are of its title."""

    field: str
    titles: tuple[str, ...]  # the first present wins; "Стоимость, *" matches by prefix
    required: bool
    confidence: str


# Titles as GetCourse writes them in info.fields. None is in GetCourse's own documentation;
# each comes from public integrations that read real exports by title.
DEAL_COLUMNS: Final[tuple[Column, ...]] = (
    Column("id", ("ID заказа",), True, "medium: 2 integrations; column 0 in a 3rd"),
    Column("number", ("Номер",), True, "high: 3 integrations"),
    Column("status", ("Статус",), True, "high: 3 integrations (Russian names as values)"),
    Column("user_id", ("ID пользователя",), False, "medium: 2 integrations"),
    Column("user_name", ("Пользователь",), False, "high: 3 integrations"),
    Column("email", ("Email",), False, "high: 3 integrations"),
    Column("phone", ("Телефон",), False, "medium: 2 integrations"),
    Column("created_at", ("Дата создания",), False, "high: 3 integrations"),
    Column("payed_at", ("Дата оплаты",), False, "high: 3 integrations"),
    Column("cost", ("Стоимость, *", "Стоимость"), False, "high: 'Стоимость, RUB'/'…, BYN'"),
    Column("payed", ("Оплачено",), False, "medium: 2 integrations"),
    Column("received", ("Получено",), False, "low: 1 integration"),
    Column("currency", ("Валюта",), False, "low: 1 integration"),
    Column("manager", ("Менеджер",), False, "unverified: not seen in public code"),
    Column("product", ("Состав заказа", "Title"), False, "medium: 2 + 2 integrations"),
)


def _fold(title: str) -> str:
    return " ".join(title.split()).casefold().replace("ё", "е")


def _locate(fields: list[str], column: Column) -> tuple[int, str] | None:
    """(index, matched title) of ``column`` in ``fields``."""
    folded = [_fold(title) for title in fields]
    for wanted in column.titles:
        target = _fold(wanted)
        for index, title in enumerate(folded):
            if title == target or (target.endswith("*") and title.startswith(target[:-1])):
                return index, fields[index]
    return None


def _iso(code: str | None) -> str | None:
    return code if code and len(code) == 3 and code.isalpha() and code.isupper() else None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class DealExportRow(BaseModel):
    """One order from a deal export, read by column title (see ``DEAL_COLUMNS``).

    ``status`` is the code (``payed``) when the title is one we know, else the title as given;
    times are aware, in the account's zone; money is exact. Columns we do not name (custom
    fields, UTM tags) are kept in ``extra`` by title.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    number: str
    status: str
    status_title: str
    user_id: str | None = None
    user_name: str | None = None
    email: str | None = None
    phone: str | None = None
    created_at: datetime | None = None
    payed_at: datetime | None = None
    cost: Money | None = None
    payed: Money | None = None
    received: Money | None = None
    currency: str | None = None
    manager: str | None = None
    product: str | None = None
    extra: dict[str, Any] = {}

    @property
    def manager_email(self) -> str | None:
        """The manager column when it holds an email (it may hold a name)."""
        return self.manager if self.manager and "@" in self.manager else None

    @classmethod
    def parse_table(
        cls, table: ExportTable, *, tz: ZoneInfo, default_currency: str = "RUB"
    ) -> list[DealExportRow]:
        """Every row of ``table``; ``MalformedInputError`` names a missing required column, or
        the row and column of a cell that cannot be read."""
        found: dict[str, tuple[int, str]] = {}
        for column in DEAL_COLUMNS:
            place = _locate(table.fields, column)
            if place is not None:
                found[column.field] = place
            elif column.required:
                raise MalformedInputError(
                    f"deal export has no column {column.titles[0]!r}", platform="getcourse"
                )
        cost_title = found["cost"][1] if "cost" in found else ""
        suffix = cost_title.partition(",")[2].strip()
        title_currency = suffix if len(suffix) == 3 and suffix.isalpha() else None
        named = {index for index, _ in found.values()}
        keys = table.keys()
        rows: list[DealExportRow] = []
        for number, row in enumerate(table.items, start=1):
            cells = {
                field: _cell(row[i]) if i < len(row) else None for field, (i, _) in found.items()
            }
            rows.append(
                cls._from_cells(
                    cells,
                    extra={
                        keys[i]: row[i] for i in range(min(len(row), len(keys))) if i not in named
                    },
                    tz=tz,
                    currency=title_currency or _iso(cells.get("currency")) or default_currency,
                    where=f"deal export row {number}",
                )
            )
        return rows

    @classmethod
    def _from_cells(
        cls,
        cells: dict[str, str | None],
        *,
        extra: dict[str, Any],
        tz: ZoneInfo,
        currency: str,
        where: str,
    ) -> DealExportRow:
        for field in ("id", "number", "status"):
            if cells.get(field) is None:
                raise MalformedInputError(f"{where}: empty {field!r}", platform="getcourse")

        def when(field: str) -> datetime | None:
            text = cells.get(field)
            if text is None:
                return None
            try:
                return parse_local_datetime(text, tz)
            except ValueError as exc:
                raise MalformedInputError(
                    f"{where}, {field}: {exc}", platform="getcourse"
                ) from None

        def money(field: str) -> Money | None:
            try:
                return parse_money(cells.get(field), default_currency=currency)
            except MalformedInputError as exc:
                raise MalformedInputError(
                    f"{where}, {field}: {exc.message}", platform="getcourse"
                ) from None

        title = str(cells["status"])
        return cls(
            id=str(cells["id"]),
            number=str(cells["number"]),
            status=status_code(title),
            status_title=title,
            user_id=cells.get("user_id"),
            user_name=cells.get("user_name"),
            email=cells.get("email"),
            phone=cells.get("phone"),
            created_at=when("created_at"),
            payed_at=when("payed_at"),
            cost=money("cost"),
            payed=money("payed"),
            received=money("received"),
            currency=cells.get("currency"),
            manager=cells.get("manager"),
            product=cells.get("product"),
            extra=extra,
        )


__all__ = [
    "DEAL_COLUMNS",
    "BudgetState",
    "Column",
    "DealExportRow",
    "ExportBudget",
    "ExportKind",
    "ExportTable",
    "GetCourseExports",
    "flatten_filters",
]
