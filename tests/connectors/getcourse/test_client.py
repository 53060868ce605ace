from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from schoolsync.connectors.getcourse.client import GetCourseClient
from schoolsync.connectors.getcourse.models import (
    DealImport,
    ImportDeal,
    ImportSession,
    ImportSystem,
    ImportUser,
)
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.core.errors import AuthError, RateLimitedError, RejectedError, UnavailableError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "getcourse"
BASE = "https://school.getcourse.ru"
KEY = "Jm8OSMY9ju2UtnBW6CHHYvRu8CdGNo4c-secret-key"

pytestmark = pytest.mark.respx(base_url=BASE)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class RecordingPacer:
    def __init__(self) -> None:
        self.acquired: list[float] = []
        self.penalties: list[float] = []

    def acquire(self, *, max_wait: float) -> None:
        self.acquired.append(max_wait)

    def penalize(self, retry_after: float) -> None:
        self.penalties.append(retry_after)


@pytest.fixture
def pacer() -> RecordingPacer:
    return RecordingPacer()


@pytest.fixture
def client(pacer: RecordingPacer) -> Iterator[GetCourseClient]:
    http = build_client(BASE, timeout=2)
    yield GetCourseClient(http, Endpoint("getcourse", "school"), KEY, pacer)
    http.close()


def sample_deal() -> DealImport:
    """The official SDK sample (sample/dealadd.php), as a typed import."""
    return DealImport(
        user=ImportUser(
            email="vasiliy.pupkin@getcourse.ru",
            first_name="Василий",
            last_name="Пупкин",
            addfields={"Почтовый адрес": "New Васюки"},
        ),
        system=ImportSystem(refresh_if_exists=True),
        session=ImportSession(referer="http://getcourse.ru"),
        deal=ImportDeal(
            deal_number="30046",
            product_title="Как заработать первый доллар",
            deal_cost=Decimal("64.24"),
            addfields={"Таможенная стоимость": "10"},
        ),
    )


def sent_form(request: httpx.Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.content.decode()).items()}


def test_add_deal_posts_the_documented_form_and_reads_the_result(
    respx_mock: respx.MockRouter, client: GetCourseClient, pacer: RecordingPacer
) -> None:
    route = respx_mock.post("/pl/api/deals").respond(200, json=fixture("import_success.json"))

    result = client.add_deal(sample_deal())

    form = sent_form(route.calls.last.request)
    assert form["action"] == "add"
    assert form["key"] == KEY
    assert json.loads(base64.b64decode(form["params"])) == fixture("deal_import_params.json")
    assert route.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert result.deal_id == "184467391"
    assert result.deal_number == "30046"
    assert result.payment_link and result.payment_link.startswith("https://")
    assert pacer.acquired == [5.0]


def test_add_user_accepts_a_plain_params_dict(
    respx_mock: respx.MockRouter, client: GetCourseClient
) -> None:
    route = respx_mock.post("/pl/api/users").respond(
        200, json={"success": "true", "action": "add", "result": {"success": "true", "user_id": 7}}
    )
    params = {"user": {"email": "a@example.org", "group_name": ["Группа1"]}}

    result = client.add_user(params)

    assert json.loads(base64.b64decode(sent_form(route.calls.last.request)["params"])) == params
    assert result.user_id == "7"


def test_failure_inside_http_200_is_rejected_with_the_platform_message(
    respx_mock: respx.MockRouter, client: GetCourseClient
) -> None:
    respx_mock.post("/pl/api/deals").respond(200, json=fixture("import_result_error.json"))

    with pytest.raises(RejectedError) as caught:
        client.add_deal(sample_deal())

    assert "Не указано предложение или сумма заказа" in str(caught.value)
    assert caught.value.status == 200


def test_envelope_failure_never_carries_the_key_or_personal_data(
    respx_mock: respx.MockRouter, client: GetCourseClient
) -> None:
    respx_mock.post("/pl/api/deals").respond(
        200,
        json={
            "success": False,
            "error_message": f"Пользователь vasiliy.pupkin@getcourse.ru не найден (key={KEY})",
        },
    )

    with pytest.raises(RejectedError) as caught:
        client.add_deal(sample_deal())

    message = str(caught.value)
    assert "не найден" in message
    assert KEY not in message
    assert "vasiliy.pupkin@" not in message


def test_wrong_key_is_an_auth_error(respx_mock: respx.MockRouter, client: GetCourseClient) -> None:
    respx_mock.post("/pl/api/deals").respond(200, json=fixture("bad_key.json"))

    with pytest.raises(AuthError, match="Неавторизованное"):
        client.add_deal(sample_deal())


def test_read_only_key_is_an_auth_error(
    respx_mock: respx.MockRouter, client: GetCourseClient
) -> None:
    respx_mock.post("/pl/api/users").respond(
        200, json={"success": False, "error": "Действие запрещено", "action": "add"}
    )

    with pytest.raises(AuthError):
        client.add_user({"user": {"email": "a@example.org"}})


def test_server_error_is_retryable(respx_mock: respx.MockRouter, client: GetCourseClient) -> None:
    respx_mock.post("/pl/api/deals").respond(502, text="<html>Bad Gateway</html>")

    with pytest.raises(UnavailableError) as caught:
        client.add_deal(sample_deal())

    assert caught.value.status == 502


def test_timeout_is_retryable(respx_mock: respx.MockRouter, client: GetCourseClient) -> None:
    respx_mock.post("/pl/api/deals").mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UnavailableError, match="timed out"):
        client.add_deal(sample_deal())


def test_429_penalizes_the_shared_pacer(
    respx_mock: respx.MockRouter, client: GetCourseClient, pacer: RecordingPacer
) -> None:
    respx_mock.post("/pl/api/deals").respond(429, headers={"Retry-After": "30"})

    with pytest.raises(RateLimitedError):
        client.add_deal(sample_deal())

    assert pacer.penalties == [30.0]


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b""), (200, b"<html>login</html>"), (200, b"[]"), (200, b'{"success": true}')],
)
def test_unreadable_answers_are_rejected_not_taken_for_success(
    respx_mock: respx.MockRouter, client: GetCourseClient, status: int, body: bytes
) -> None:
    respx_mock.post("/pl/api/deals").respond(status, content=body)

    with pytest.raises(RejectedError):
        client.add_deal(sample_deal())


def test_a_redirect_is_not_followed(respx_mock: respx.MockRouter, client: GetCourseClient) -> None:
    # an account that force-redirects to its own domain would turn the POST into a bodyless GET
    respx_mock.post("/pl/api/deals").respond(301, headers={"Location": "https://learn.school.ru/"})

    with pytest.raises(RejectedError):
        client.add_deal(sample_deal())


def test_import_params_refuse_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="unknown deal status"):
        ImportDeal(deal_status="paid")
    assert ImportDeal(deal_status="Завершен").deal_status == "payed"
