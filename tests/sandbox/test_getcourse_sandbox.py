"""The GetCourse sandbox behaves as GetCourse does for the things our integration relies on:
import answers, the export life cycle and its limits, and process callbacks."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.sandbox.getcourse import GetCourseSandboxConfig, create_app

KEY = "test-key"


def params(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, ensure_ascii=False).encode()).decode()


def deal_import(client: TestClient, data: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    response = client.post(
        "/pl/api/deals", data={"action": "add", "key": key, "params": params(data)}
    )
    assert response.status_code == 200
    return response.json()


def orders(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/_sandbox/orders").json()["orders"]


@dataclass
class Receiver:
    """A local HTTP server standing in for our webhook endpoint."""

    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def queries(self) -> list[dict[str, str]]:
        with self.lock:
            return [{k: v[0] for k, v in parse_qs(r["query"]).items()} for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as our web server speaks

        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with box.lock:
                box.requests.append(
                    {"method": self.command, "path": parts.path, "query": parts.query, "body": body}
                )
            self.send_response(box.status)
            self.send_header("content-length", "0")  # one write: no Nagle delay on keep-alive
            self.end_headers()

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def make_client(**settings: Any) -> TestClient:
    return TestClient(create_app(GetCourseSandboxConfig(key=KEY, **settings)))


def wait_callbacks(client: TestClient) -> dict[str, int]:
    answer = client.post("/_sandbox/callbacks/wait", json={"timeout_s": 10}).json()
    assert answer["idle"], answer
    return answer["counts"]


# -- import API -----------------------------------------------------------------------------


def test_import_with_a_wrong_key_is_refused_and_creates_nothing() -> None:
    with make_client() as client:
        answer = deal_import(
            client, {"user": {"email": "a@example.com"}, "deal": {"offer_code": "vip"}}, key="wrong"
        )
        assert answer["success"] is False
        assert answer["error_code"] == 901
        assert answer["error_message"] == "Неавторизованное API-обращение"
        assert client.get("/_sandbox/state").json()["orders"] == 0


def test_import_creates_a_deal_and_refresh_if_exists_updates_the_same_one() -> None:
    with make_client() as client:
        first = deal_import(
            client,
            {
                "user": {
                    "email": "olga@example.com",
                    "first_name": "Ольга",
                    "phone": "8 923 111-22-33",
                },
                "deal": {
                    "deal_number": "900001",
                    "product_title": "Пакет Стандарт",
                    "deal_cost": "12 000",
                },
                "system": {"return_payment_link": 1},
            },
        )
        assert first["success"] is True and first["action"] == "add"
        result = first["result"]
        assert result["success"] is True and result["error"] is False
        assert result["deal_number"] == 900001 and result["user_status"] == "added"
        assert result["payment_link"].startswith("https://")

        repeated = deal_import(
            client,
            {
                "user": {"email": "olga@example.com"},
                "deal": {"deal_number": "900001", "deal_status": "payed"},
            },
        )
        assert repeated["success"] is True
        assert repeated["result"]["success"] is False
        assert "900001" in repeated["result"]["error_message"]

        updated = deal_import(
            client,
            {
                "user": {"email": "olga@example.com"},
                "deal": {"deal_number": "900001", "deal_status": "payed"},
                "system": {"refresh_if_exists": 1},
            },
        )
        assert updated["result"]["success"] is True
        assert updated["result"]["deal_id"] == result["deal_id"]
        [order] = orders(client)
        assert (order["number"], order["status"], order["cost"], order["payed"]) == (
            "900001",
            "payed",
            "12000.00",
            "12000.00",
        )


def test_unknown_status_and_malformed_params_are_refused_with_a_message() -> None:
    with make_client() as client:
        answer = deal_import(
            client,
            {
                "user": {"email": "a@example.com"},
                "deal": {"offer_code": "vip", "deal_status": "paid"},
            },
        )
        assert answer["success"] is True
        assert answer["result"]["success"] is False and answer["result"]["error"] is True
        assert "paid" in answer["result"]["error_message"]

        broken = client.post(
            "/pl/api/deals", data={"action": "add", "key": KEY, "params": "{not base64"}
        )
        assert broken.status_code == 200
        assert broken.json()["success"] is False and broken.json()["error_message"]
        assert client.get("/_sandbox/state").json()["orders"] == 0


def test_user_import_adds_then_reports_exists_then_updates() -> None:
    def add(user: dict[str, Any], system: dict[str, Any] | None = None) -> dict[str, Any]:
        data = {"user": user, "system": system or {}}
        response = client.post(
            "/pl/api/users", data={"action": "add", "key": KEY, "params": params(data)}
        )
        return response.json()["result"]

    with make_client() as client:
        added = add({"email": "Petr@Example.com", "first_name": "Пётр"})
        assert added["success"] is True and added["user_status"] == "added"
        again = add({"email": "petr@example.com", "first_name": "Петя"})
        assert (again["user_id"], again["user_status"]) == (added["user_id"], "exists")
        updated = add({"email": "petr@example.com", "city": "Казань"}, {"refresh_if_exists": 1})
        assert updated["user_status"] == "updated"
        assert add({"email": "not-an-email"})["success"] is False


# -- export API -----------------------------------------------------------------------------


def start_export(client: TestClient, kind: str = "deals", **filters: str) -> dict[str, Any]:
    query = {"key": KEY, "created_at[from]": "2000-01-01", **filters}
    return client.get(f"/pl/api/account/{kind}", params=query).json()


def poll(client: TestClient, export_id: int) -> dict[str, Any]:
    return client.get(f"/pl/api/account/exports/{export_id}", params={"key": KEY}).json()


def test_export_is_not_ready_then_ready_with_russian_column_titles() -> None:
    with make_client(export_ready_after_s=0.2) as client:
        client.post("/_sandbox/orders", json={"count": 3, "product": "Пакет Стандарт"})
        number = orders(client)[1]["number"]
        client.post(f"/_sandbox/orders/{number}/status", json={"status": "payed"})

        started = start_export(client, status="payed")
        assert started["success"] is True
        export_id = started["info"]["export_id"]
        not_ready = poll(client, export_id)
        assert not_ready["success"] is False
        assert not_ready["error_message"] == "Файл еще не создан"

        time.sleep(0.25)
        ready = poll(client, export_id)
        assert ready["success"] is True
        fields = ready["info"]["fields"]
        assert fields[:11] == [
            "ID заказа", "Номер", "ID пользователя", "Пользователь", "Email", "Телефон",
            "Дата создания", "Дата оплаты", "Title", "Статус", "Стоимость, RUB",
        ]  # fmt: skip
        [row] = [dict(zip(fields, item, strict=True)) for item in ready["info"]["items"]]
        assert row["Номер"] == number
        assert row["Статус"] == "Завершен"
        assert row["Title"] == "Пакет Стандарт"
        assert row["Стоимость, RUB"].replace("\u00a0", " ") == "12 000,00"
        assert row["Оплачено"].replace("\u00a0", " ") == "12 000,00"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["Дата оплаты"])


def test_users_and_payments_exports_have_rows_as_wide_as_their_columns() -> None:
    with make_client(export_ready_after_s=0) as client:
        client.post("/_sandbox/orders", json={"count": 2, "status": "payed"})
        for kind, first_column in (("users", "id"), ("payments", "Номер")):
            export_id = start_export(client, kind)["info"]["export_id"]
            table = poll(client, export_id)["info"]
            assert table["fields"][0] == first_column
            assert len(table["items"]) == 2
            assert all(len(row) == len(table["fields"]) for row in table["items"])


def test_export_start_needs_a_filter() -> None:
    with make_client() as client:
        answer = client.get("/pl/api/account/deals", params={"key": KEY}).json()
        assert answer["success"] is False and answer["error_message"]


def test_export_limits_refuse_a_second_export_and_requests_over_budget() -> None:
    with make_client(export_budget=3, export_ready_after_s=60) as client:
        first = start_export(client)
        assert first["success"] is True

        busy = start_export(client)
        assert (busy["success"], busy["error_code"]) == (False, 905)
        assert "Уже запущен один экспорт" in busy["error_message"]

        assert poll(client, first["info"]["export_id"])["error_message"] == "Файл еще не создан"
        over = poll(client, first["info"]["export_id"])
        assert (over["success"], over["error_code"]) == (False, 903)
        assert "Слишком много запросов" in over["error_message"]

        exports = client.get("/_sandbox/state").json()["exports"]
        assert (exports["started"], exports["refused_busy"], exports["refused_budget"]) == (1, 1, 1)


def test_export_budget_is_a_sliding_window() -> None:
    with make_client(export_budget=1, export_window_s=0.2, export_ready_after_s=0) as client:
        assert start_export(client)["success"] is True
        assert start_export(client)["error_code"] == 903
        time.sleep(0.25)
        assert start_export(client)["success"] is True


# -- control API ----------------------------------------------------------------------------


def test_control_api_creates_100_realistic_orders_fast() -> None:
    with make_client() as client:
        started = time.perf_counter()
        answer = client.post("/_sandbox/orders", json={"count": 100}).json()
        assert time.perf_counter() - started < 1.0
        assert answer["created"] == 100

        created = orders(client)
        numbers = [int(order["number"]) for order in created]
        assert numbers == list(range(numbers[0], numbers[0] + 100))
        assert len({order["user"]["email"].lower() for order in created}) == 100
        assert all(re.fullmatch(r"[А-ЯЁ][а-яё]+", o["user"]["first_name"]) for o in created)
        phone_shapes = {re.sub(r"\d", "9", order["user"]["phone"]) for order in created}
        assert len(phone_shapes) >= 3, phone_shapes
        assert all(order["created_at"].endswith("+03:00") for order in created)  # Moscow time
        assert {order["offer"]["title"] for order in created} <= {
            "Пакет Эконом",
            "Пакет Стандарт",
            "Пакет VIP",
        }


# -- callbacks ------------------------------------------------------------------------------

TEMPLATE = (
    "/hook?secret=XYZ&id={object.id}&number={object.number}&status={object.status}"
    "&cost={object.cost_money}&value={object.cost_money_value}&left={object.left_cost_money}"
    "&email={object.user.email}&name={object.user.first_name}&positions={object.positions}"
    "&day={object.created_at format='Y-m-d'}&missing={object.no_such_field}"
)


def test_callbacks_carry_substituted_url_encoded_values_in_the_query_of_a_post(
    receiver: Receiver,
) -> None:
    with make_client(callback_url=receiver.url + TEMPLATE, callback_method="POST") as client:
        answer = deal_import(
            client,
            {
                "user": {"email": "ivan+school@example.com", "first_name": "Иван"},
                "deal": {"offer_code": "vip", "deal_number": "7777"},
            },
        )
        counts = wait_callbacks(client)
        assert counts["delivered"] == 1

        [request] = receiver.requests
        assert request["method"] == "POST" and request["body"] == b""
        assert "%2B" in request["query"]  # the '+' of the e-mail is encoded, not a space
        [query] = receiver.queries()
        assert query["secret"] == "XYZ"
        assert query["id"] == str(answer["result"]["deal_id"])
        assert (query["number"], query["status"]) == ("7777", "new")
        assert (query["cost"], query["value"], query["left"]) == (
            "45 000 руб.",
            "45000",
            "45 000 руб.",
        )
        assert (query["email"], query["name"]) == ("ivan+school@example.com", "Иван")
        assert query["positions"] == "Пакет VIP"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", query["day"])
        assert "missing" not in query  # an unknown placeholder is substituted empty


def test_a_payment_fires_two_callbacks(receiver: Receiver) -> None:
    url = (
        receiver.url
        + "/hook?number={object.number}&status={object.status}&paid={object.payed_money}"
    )
    with make_client(callback_url=url, callback_method="GET") as client:
        number = client.post(
            "/_sandbox/orders", json={"count": 1, "product": "Пакет Эконом"}
        ).json()["orders"][0]["number"]
        paid = client.post(f"/_sandbox/orders/{number}/status", json={"status": "payed"}).json()
        assert paid["callbacks"] == 2
        assert wait_callbacks(client)["delivered"] == 3

        statuses = sorted(q["status"] for q in receiver.queries())
        assert statuses == ["new", "payed", "payed"]
        assert {q["paid"] for q in receiver.queries() if q["status"] == "payed"} == {"991 руб."}
        assert {r["method"] for r in receiver.requests} == {"GET"}


def dropped_numbers(client: TestClient) -> list[str]:
    deliveries = client.get("/_sandbox/callbacks").json()["deliveries"]
    return sorted(
        parse_qs(urlsplit(d["url"]).query)["number"][0]
        for d in deliveries
        if d["outcome"] == "dropped"
    )


def test_seeded_drop_rate_drops_about_a_fifth_and_the_same_ones_each_run(
    receiver: Receiver,
) -> None:
    with make_client(callback_url=receiver.url + "/hook?number={object.number}") as client:
        runs = []
        for _ in range(2):
            client.post("/_sandbox/reset")
            client.post("/_sandbox/faults", json={"drop_callbacks_rate": 0.2, "seed": 42})
            client.post("/_sandbox/orders", json={"count": 400})
            counts = wait_callbacks(client)
            assert counts["delivered"] + counts["dropped"] == 400
            assert 50 <= counts["dropped"] <= 110, counts
            runs.append(dropped_numbers(client))
        assert runs[0] == runs[1]
        assert len(runs[0]) == counts["dropped"]


def test_a_failing_receiver_is_retried_then_counted_as_failed(receiver: Receiver) -> None:
    receiver.status = 500
    with make_client(callback_url=receiver.url + "/hook?n={object.number}") as client:
        client.post("/_sandbox/orders", json={"count": 1})
        counts = wait_callbacks(client)
        assert (counts["failed"], counts["delivered"], counts["attempts"]) == (1, 0, 3)
        assert len(receiver.requests) == 3


def test_works_mounted_under_a_prefix() -> None:
    outer = Starlette(routes=[Mount("/getcourse", app=create_app(GetCourseSandboxConfig(key=KEY)))])
    with TestClient(outer) as client:
        assert client.post("/getcourse/_sandbox/orders", json={"count": 1}).status_code == 201
        answer = client.post(
            "/getcourse/pl/api/deals",
            data={
                "action": "add",
                "key": KEY,
                "params": params(
                    {"user": {"email": "m@example.com"}, "deal": {"offer_code": "vip"}}
                ),
            },
        ).json()
        assert answer["result"]["success"] is True
        started = client.get(
            "/getcourse/pl/api/account/deals", params={"key": KEY, "status": "new"}
        )
        assert started.json()["success"] is True
        assert client.get("/getcourse/_sandbox/state").json()["orders"] == 2


# -- faults ---------------------------------------------------------------------------------


def test_error_rate_and_outage_answer_like_a_broken_proxy() -> None:
    with make_client() as client:
        client.post("/_sandbox/faults", json={"error_rate": 1.0, "endpoint": "export"})
        failed = client.get("/pl/api/account/deals", params={"key": KEY, "status": "new"})
        assert failed.status_code == 502 and "nginx" in failed.text
        still_fine = deal_import(
            client, {"user": {"email": "a@example.com"}, "deal": {"offer_code": "vip"}}
        )
        assert still_fine["result"]["success"] is True

        client.post("/_sandbox/faults", json={"outage_until": time.time() + 60})
        assert client.post("/pl/api/deals", data={"key": KEY}).status_code == 503

        client.delete("/_sandbox/faults")
        assert start_export(client)["success"] is True
        assert client.post("/_sandbox/faults", json={"error_rate": 2}).status_code == 422
