from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import respx
from redis.backoff import NoBackoff
from redis.retry import Retry

from schoolsync.connectors.getcourse.exports import (
    DealExportRow,
    ExportBudget,
    ExportTable,
    GetCourseExports,
    flatten_filters,
)
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.core.domain import Money
from schoolsync.core.errors import (
    AuthError,
    MalformedInputError,
    RateLimitedError,
    RejectedError,
    StoreUnavailableError,
    UnavailableError,
)
from tests.conftest import RedisServer, free_port

FIXTURES = Path(__file__).parents[2] / "fixtures" / "getcourse"
BASE = "https://school.getcourse.ru"
KEY = "export-key-not-for-logs"
MSK = ZoneInfo("Europe/Moscow")
SINCE = {"created_at": {"from": date(2026, 11, 1)}}

pytestmark = pytest.mark.respx(base_url=BASE)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def http() -> Iterator[Any]:
    client = build_client(BASE, timeout=2)
    yield client
    client.close()


@pytest.fixture
def exports(http: Any) -> GetCourseExports:
    return GetCourseExports(http, Endpoint("getcourse", "school"), KEY, budget=None)


@pytest.fixture
def budget(redis_server: RedisServer) -> ExportBudget:
    return ExportBudget(redis.Redis.from_url(redis_server.url), "school", budget=3, window_s=7200)


# ---------------------------------------------------------------------------- the API


def test_start_sends_key_and_filters_and_returns_the_id(
    respx_mock: respx.MockRouter, exports: GetCourseExports
) -> None:
    route = respx_mock.get("/pl/api/account/deals").respond(
        200, json=fixture("export_started.json")
    )

    export_id = exports.start_export("deals", {**SINCE, "status": "payed"})

    assert export_id == 34522897
    query = route.calls.last.request.url.params
    assert query["key"] == KEY
    assert query["created_at[from]"] == "2026-11-01"
    assert query["status"] == "payed"


def test_fetch_returns_none_while_the_file_is_being_built(
    respx_mock: respx.MockRouter, exports: GetCourseExports
) -> None:
    respx_mock.get("/pl/api/account/exports/34522897").respond(
        200, json=fixture("export_not_ready.json")
    )

    assert exports.fetch_export(34522897) is None


def test_fetch_returns_rows_keyed_by_russian_title(
    respx_mock: respx.MockRouter, exports: GetCourseExports
) -> None:
    respx_mock.get("/pl/api/account/exports/34522897").respond(
        200, json=fixture("export_deals_ready.json")
    )

    table = exports.fetch_export(34522897)

    assert table is not None
    first = table.rows()[0]
    assert first["Номер"] == "30046"
    assert first["Статус"] == "Завершен"
    assert first["Стоимость, RUB"] == "12\u00a0000"


@pytest.mark.parametrize(
    ("body", "error", "retry_after"),
    [
        ("export_too_many.json", RateLimitedError, 600.0),
        ("export_busy.json", RateLimitedError, 60.0),
        ("bad_key.json", AuthError, None),
    ],
)
def test_start_failures_inside_http_200(
    respx_mock: respx.MockRouter,
    exports: GetCourseExports,
    body: str,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    respx_mock.get("/pl/api/account/deals").respond(200, json=fixture(body))

    with pytest.raises(error) as caught:
        exports.start_export("deals", SINCE)

    assert getattr(caught.value, "retry_after", None) == retry_after
    assert KEY not in str(caught.value)


def test_rate_limit_wait_is_configurable(respx_mock: respx.MockRouter, http: Any) -> None:
    exports = GetCourseExports(
        http, Endpoint("getcourse", "school"), KEY, None, rate_limited_retry_after_s=1800
    )
    respx_mock.get("/pl/api/account/exports/1").respond(200, json=fixture("export_too_many.json"))

    with pytest.raises(RateLimitedError) as caught:
        exports.fetch_export(1)

    assert caught.value.retry_after == 1800


def test_an_empty_filter_is_refused_before_any_request(exports: GetCourseExports) -> None:
    with pytest.raises(ValueError, match="at least one filter"):
        exports.start_export("deals", {})


def test_filters_flatten_to_getcourse_brackets() -> None:
    assert flatten_filters(
        {"created_at": {"from": date(2026, 1, 1), "to": None}, "user_id": [1, 2], "status": "new"}
    ) == {"created_at[from]": "2026-01-01", "user_id": "1,2", "status": "new"}


def test_rows_refuse_a_row_longer_than_the_header() -> None:
    with pytest.raises(MalformedInputError, match="row 2"):
        ExportTable(fields=["a", "b"], items=[["1"], ["1", "2", "3"]]).rows()


def test_repeated_titles_keep_every_column() -> None:
    table = ExportTable(fields=["Город", "Город"], items=[["Омск", "Тара"]])
    assert table.rows() == [{"Город": "Омск", "Город (2)": "Тара"}]


# ---------------------------------------------------------------------------- deal rows


def test_deal_rows_map_titles_statuses_money_and_local_times() -> None:
    info = fixture("export_deals_ready.json")["info"]

    paid, partial, new = DealExportRow.parse_table(ExportTable(**info), tz=MSK)

    assert (paid.id, paid.number, paid.status, paid.status_title) == (
        "184467391",
        "30046",
        "payed",
        "Завершен",
    )
    assert paid.cost == Money(amount=Decimal("12000"), currency="RUB")
    assert paid.created_at == datetime(2026, 11, 23, 10, 15, tzinfo=MSK)
    assert paid.manager == "Анна Менеджер"
    assert paid.product == "Как заработать первый доллар"
    assert paid.extra["Размер одежды"] == "M"
    assert paid.extra["utm_source"] == "vk"
    assert partial.status == "part_payed"
    assert partial.cost == Money(amount=Decimal("24500.50"))
    assert partial.payed_at is None and partial.phone is None
    assert new.status == "new" and new.payed == Money(amount=Decimal(0))


def test_deal_rows_do_not_depend_on_column_order_and_tolerate_missing_optional_ones() -> None:
    table = ExportTable(
        fields=["Статус", "Стоимость, BYN", "Номер", "Некое поле", "ID заказа"],
        items=[["Отменён", "150,5", "77", "x", "9"]],
    )

    (row,) = DealExportRow.parse_table(table, tz=MSK)

    assert (row.id, row.number, row.status) == ("9", "77", "cancelled")
    assert row.cost == Money(amount=Decimal("150.5"), currency="BYN")
    assert row.email is None and row.manager is None and row.created_at is None


def test_an_unknown_status_is_kept_for_the_mapping_to_refuse() -> None:
    table = ExportTable(fields=["ID заказа", "Номер", "Статус"], items=[["1", "2", "Архив"]])
    (row,) = DealExportRow.parse_table(table, tz=MSK)
    assert row.status == "Архив"


def test_a_missing_required_column_is_named() -> None:
    table = ExportTable(fields=["ID заказа", "Статус"], items=[])
    with pytest.raises(MalformedInputError, match="'Номер'"):
        DealExportRow.parse_table(table, tz=MSK)


def test_an_unreadable_cell_names_its_row_and_column() -> None:
    table = ExportTable(
        fields=["ID заказа", "Номер", "Статус", "Оплачено"],
        items=[["1", "2", "Новый", "0"], ["3", "4", "Новый", "много"]],
    )
    with pytest.raises(MalformedInputError, match="row 2, payed"):
        DealExportRow.parse_table(table, tz=MSK)


# ---------------------------------------------------------------------------- budget


def budgeted(http: Any, budget: ExportBudget) -> GetCourseExports:
    return GetCourseExports(http, Endpoint("getcourse", "school"), KEY, budget)


def test_exhausted_budget_raises_without_calling_getcourse(
    respx_mock: respx.MockRouter, http: Any, budget: ExportBudget
) -> None:
    start = respx_mock.get("/pl/api/account/deals").respond(
        200, json=fixture("export_started.json")
    )
    fetch = respx_mock.get("/pl/api/account/exports/34522897").respond(
        200, json=fixture("export_deals_ready.json")
    )
    exports = budgeted(http, budget)
    exports.start_export("deals", SINCE)  # request 1 of 3
    assert exports.fetch_export(34522897) is not None  # 2: status checks count too
    exports.start_export("deals", SINCE)  # 3

    with pytest.raises(RateLimitedError) as caught:
        exports.fetch_export(34522897)

    assert start.call_count == 2 and fetch.call_count == 1
    assert caught.value.retry_after is not None
    assert 7000 < caught.value.retry_after <= 7200  # until the oldest request leaves the window
    assert "not sent" in str(caught.value)


def test_one_export_at_a_time_across_workers(
    respx_mock: respx.MockRouter, http: Any, redis_server: RedisServer
) -> None:
    start = respx_mock.get("/pl/api/account/deals").respond(
        200, json=fixture("export_started.json")
    )
    fetch = respx_mock.get("/pl/api/account/exports/34522897")
    fetch.side_effect = [
        respx.MockResponse(200, json=fixture("export_not_ready.json")),
        respx.MockResponse(200, json=fixture("export_deals_ready.json")),
    ]
    # two workers: separate connections, one Redis
    one = budgeted(http, ExportBudget(redis.Redis.from_url(redis_server.url), "school", 100, 7200))
    two = budgeted(http, ExportBudget(redis.Redis.from_url(redis_server.url), "school", 100, 7200))

    export_id = one.start_export("deals", SINCE)
    with pytest.raises(RateLimitedError, match="another export is running") as caught:
        two.start_export("deals", SINCE)
    assert start.call_count == 1
    assert caught.value.retry_after == 60.0

    assert two.fetch_export(export_id) is None  # still building: the lock stays
    with pytest.raises(RateLimitedError):
        two.start_export("deals", SINCE)
    assert two.fetch_export(export_id) is not None  # fetched: the lock is gone
    two.start_export("deals", SINCE)
    assert start.call_count == 2


def test_a_failed_start_frees_the_lock(
    respx_mock: respx.MockRouter, http: Any, budget: ExportBudget
) -> None:
    route = respx_mock.get("/pl/api/account/deals")
    route.side_effect = [
        respx.MockResponse(503),
        respx.MockResponse(200, json=fixture("export_started.json")),
    ]
    exports = budgeted(http, budget)

    with pytest.raises(UnavailableError):
        exports.start_export("deals", SINCE)
    assert exports.start_export("deals", SINCE) == 34522897


def test_getcourse_saying_too_many_stops_every_worker(
    respx_mock: respx.MockRouter, http: Any, redis_server: RedisServer
) -> None:
    route = respx_mock.get("/pl/api/account/deals").respond(
        200, json=fixture("export_too_many.json")
    )
    one = budgeted(http, ExportBudget(redis.Redis.from_url(redis_server.url), "school", 100, 7200))
    two = budgeted(http, ExportBudget(redis.Redis.from_url(redis_server.url), "school", 100, 7200))

    with pytest.raises(RateLimitedError):
        one.start_export("deals", SINCE)
    with pytest.raises(RateLimitedError, match="not sent") as caught:
        two.fetch_export(1)

    assert route.call_count == 1
    assert caught.value.retry_after is not None
    assert 590 < caught.value.retry_after <= 600


def test_the_lock_expires_if_nobody_fetches(redis_server: RedisServer) -> None:
    budget = ExportBudget(
        redis.Redis.from_url(redis_server.url), "school", 100, 7200, lock_timeout_s=1
    )
    assert budget.try_start()
    assert not budget.try_start()
    assert 0 < budget.state().lock_s <= 1
    time.sleep(1.05)
    assert budget.try_start()


def test_budgets_are_per_account(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    a = ExportBudget(client, "a", 1, 7200)
    b = ExportBudget(client, "b", 1, 7200)
    assert a.try_request() and not a.try_request()
    assert b.try_start()


def test_redis_down_is_a_store_error() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(StoreUnavailableError):
        ExportBudget(dead, "a", 1, 60).try_start()


def test_rejected_fetch_frees_the_lock(
    respx_mock: respx.MockRouter, http: Any, budget: ExportBudget
) -> None:
    respx_mock.get("/pl/api/account/deals").respond(200, json=fixture("export_started.json"))
    respx_mock.get("/pl/api/account/exports/34522897").respond(
        200, json={"success": False, "error_message": "Файл не создан, попробуйте другой фильтр"}
    )
    exports = budgeted(http, budget)
    export_id = exports.start_export("deals", SINCE)

    with pytest.raises(RejectedError, match="Файл не создан"):
        exports.fetch_export(export_id)
    assert budget.state().lock_s == 0


def test_deal_rows_use_the_account_zone_and_currency(http: Any) -> None:
    exports = GetCourseExports(
        http, Endpoint("getcourse", "school"), KEY, None, tz="Asia/Almaty", default_currency="KZT"
    )
    table = ExportTable(
        fields=["ID заказа", "Номер", "Статус", "Стоимость", "Дата создания", "Менеджер"],
        items=[["1", "2", "Новый", "5 000", "2026-11-23 10:15:00", "anna@school.kz"]],
    )

    (row,) = exports.deal_rows(table)

    assert row.cost == Money(amount=Decimal(5000), currency="KZT")
    assert row.created_at == datetime(2026, 11, 23, 10, 15, tzinfo=ZoneInfo("Asia/Almaty"))
    assert row.manager_email == "anna@school.kz"
