"""The Robokassa sandbox does what Robokassa's docs say for our side of it: the payment page
checks the Password #1 signature, ResultURL is signed with Password #2 (the Shp_ pairs sorted
case-insensitively) and retried until the shop answers OK{InvId}."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from schoolsync.sandbox.robokassa import RobokassaSandboxConfig, create_app
from tests.conftest import serving

LOGIN = "schoolsync-sandbox"
PW1, PW2 = "sandbox-password-1", "sandbox-password-2"
TEST_PW1, TEST_PW2 = "sandbox-test-password-1", "sandbox-test-password-2"
PAGE = "/robokassa/Merchant/Index.aspx"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Robokassa's default hash


def make_client(**settings: Any) -> TestClient:
    config = RobokassaSandboxConfig(result_retry_delay_s=0.01, **settings)
    return TestClient(Starlette(routes=[Mount("/robokassa", app=create_app(config))]))


def link(
    *,
    out_sum: str = "2500.00",
    inv_id: str = "12",
    password: str = PW1,
    login: str = LOGIN,
    extra: dict[str, str] | None = None,
    shp_text: str = "",
) -> str:
    params = {
        "MerchantLogin": login,
        "OutSum": out_sum,
        "InvId": inv_id,
        "Description": "Курс",
        "SignatureValue": md5(f"{login}:{out_sum}:{inv_id}:{password}{shp_text}"),
        **(extra or {}),
    }
    return f"{PAGE}?{urlencode(params)}"


class Shop:
    """A shop's ResultURL handler that answers what it is told and keeps what it got."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.received: list[dict[str, str]] = []
        self.methods: list[str] = []

    def app(self) -> Starlette:
        async def result(request: Request) -> PlainTextResponse:
            form = dict(parse_qsl((await request.body()).decode())) or dict(request.query_params)
            self.received.append(form)
            self.methods.append(request.method)
            status, text = self.replies.pop(0) if self.replies else (200, f"OK{form['InvId']}")
            return PlainTextResponse(text, status_code=status)

        return Starlette(routes=[Route("/result", result, methods=["GET", "POST"])])


@pytest.fixture
def shop() -> Iterator[tuple[Shop, str]]:
    receiver = Shop()
    with serving(receiver.app()) as url:
        yield receiver, f"{url}/result"


# -- the payment page -------------------------------------------------------------------------


def test_a_signed_link_opens_the_invoice() -> None:
    with make_client() as client:
        page = client.get(link(extra={"Shp_order": "7"}, shp_text=":Shp_order=7"))
        assert page.status_code == 200
        assert "Оплата счёта №12" in page.text
        invoices = client.get("/robokassa/_sandbox/state").json()["invoices"]
        assert invoices[0]["inv_id"] == "12"
        assert invoices[0]["shp"] == {"Shp_order": "7"}


def test_a_post_to_the_page_works_too() -> None:
    with make_client() as client:
        query = link().split("?", 1)[1]
        page = client.post(
            PAGE, content=query, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert page.status_code == 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (link(password="wrong"), "Код ошибки 29"),
        (link(login="someone-else"), "Код ошибки 26"),
        (link(out_sum="2500.00").replace("OutSum=2500.00", "OutSum=25.00"), "Код ошибки 29"),
        (link(out_sum="1,5"), "OutSum"),
        (link(inv_id="A1"), "InvId"),
        (link(extra={"Shp_order": "7"}), "Код ошибки 29"),  # a Shp_ pair left out of the signature
    ],
)
def test_the_page_refuses_bad_links(url: str, reason: str) -> None:
    with make_client() as client:
        page = client.get(url)
        assert page.status_code == 400
        assert reason in page.text
        assert client.get("/robokassa/_sandbox/state").json()["page_errors"]


def test_test_mode_needs_the_test_password_and_test_settings() -> None:
    with make_client() as client:
        assert client.get(link(password=TEST_PW1, extra={"IsTest": "1"})).status_code == 200
        assert client.get(link(password=PW1, extra={"IsTest": "1"})).status_code == 400
    with make_client(test_password1=None, test_password2=None) as client:
        page = client.get(link(extra={"IsTest": "1"}))
        assert page.status_code == 400
        assert "Код ошибки 23" in page.text


def test_shp_pairs_on_the_page_are_sorted_case_insensitively() -> None:
    extra = {"Shp_order": "7", "shp_label": "x"}
    with make_client() as client:
        right = link(extra=extra, shp_text=":shp_label=x:Shp_order=7")
        assert client.get(right).status_code == 200
        wrong = link(extra=extra, shp_text=":Shp_order=7:shp_label=x")
        assert client.get(wrong).status_code == 400


def test_the_configured_hash_is_used() -> None:
    with make_client(hash="sha512") as client:
        base = f"{LOGIN}:10.00:3:{PW1}"
        params = {
            "MerchantLogin": LOGIN,
            "OutSum": "10.00",
            "InvId": "3",
            "SignatureValue": hashlib.sha512(base.encode()).hexdigest().upper(),
        }
        assert client.get(f"{PAGE}?{urlencode(params)}").status_code == 200
        assert client.get(link(out_sum="10.00", inv_id="3")).status_code == 400


# -- ResultURL --------------------------------------------------------------------------------


def test_a_payment_sends_a_signed_result_and_takes_ok(shop: tuple[Shop, str]) -> None:
    receiver, url = shop
    with make_client(result_url=url) as client:
        client.get(
            link(extra={"Shp_order": "7", "shp_label": "x"}, shp_text=":shp_label=x:Shp_order=7")
        )
        paid = client.post("/robokassa/_sandbox/pay", json={"inv_id": 12, "email": "a@b.ru"}).json()
        assert paid["delivered"] is True
        assert len(paid["attempts"]) == 1
        state = client.get("/robokassa/_sandbox/state").json()
        assert (state["paid"], state["delivered"]) == (1, 1)
    got = receiver.received[0]
    assert receiver.methods == ["POST"]
    assert got["OutSum"] == "2500.000000"
    assert got["InvId"] == "12"
    assert got["EMail"] == "a@b.ru"
    assert got["Fee"] == "97.50"  # 3.9 %
    assert "IsTest" not in got
    expected = md5(f"2500.000000:12:{PW2}:shp_label=x:Shp_order=7")
    assert got["SignatureValue"].lower() == expected


def test_anything_but_ok_is_retried(shop: tuple[Shop, str]) -> None:
    receiver, url = shop
    receiver.replies = [(500, "oops"), (200, "OK"), (200, "OK13")]
    with make_client(result_url=url) as client:
        paid = client.post("/robokassa/_sandbox/pay", json={"inv_id": 13, "out_sum": "5"}).json()
    assert paid["delivered"] is True
    assert [(a["status"], a["reply"]) for a in paid["attempts"]] == [
        (500, "oops"),
        (200, "OK"),
        (200, "OK13"),
    ]


def test_delivery_gives_up_after_the_retries(shop: tuple[Shop, str]) -> None:
    receiver, url = shop
    receiver.replies = [(400, "bad sign")] * 10
    with make_client(result_url=url, result_retries=2) as client:
        paid = client.post("/robokassa/_sandbox/pay", json={"inv_id": 14, "out_sum": "5"}).json()
        assert paid["delivered"] is False
        assert len(paid["attempts"]) == 3
        assert client.get("/robokassa/_sandbox/state").json()["failed"] == 1


def test_test_mode_signs_with_the_test_password_by_get(shop: tuple[Shop, str]) -> None:
    receiver, url = shop
    with make_client(result_url=url, result_method="GET") as client:
        paid = client.post(
            "/robokassa/_sandbox/pay", json={"inv_id": 15, "out_sum": "7.5", "is_test": True}
        ).json()
    assert paid["delivered"] is True
    got = receiver.received[0]
    assert receiver.methods == ["GET"]
    assert got["IsTest"] == "1"
    assert got["SignatureValue"].lower() == md5(f"7.500000:15:{TEST_PW2}")


def test_a_deliberately_mis_signed_result(shop: tuple[Shop, str]) -> None:
    receiver, url = shop
    with make_client(result_url=url) as client:
        client.post(
            "/robokassa/_sandbox/pay", json={"inv_id": 16, "out_sum": "5", "bad_signature": True}
        )
    assert receiver.received[0]["SignatureValue"].lower() != md5(f"5.000000:16:{PW2}")


def test_without_a_result_url_the_signed_fields_are_returned() -> None:
    with make_client() as client:
        paid = client.post(
            "/robokassa/_sandbox/pay", json={"inv_id": 17, "out_sum": "99.90", "shp": {"a": "1"}}
        ).json()
    assert paid["delivered"] is False and paid["attempts"] == []
    assert paid["fields"]["Shp_a"] == "1"
    assert paid["fields"]["SignatureValue"].lower() == md5(f"99.900000:17:{PW2}:Shp_a=1")


def test_bad_pay_requests_and_reset() -> None:
    with make_client() as client:
        assert client.post("/robokassa/_sandbox/pay", json={"out_sum": "1"}).status_code == 400
        assert client.post("/robokassa/_sandbox/pay", json={"inv_id": 1}).status_code == 400
        assert (
            client.post("/robokassa/_sandbox/pay", json={"inv_id": 1, "out_sum": "-1"}).status_code
            == 400
        )
        client.post("/robokassa/_sandbox/pay", json={"inv_id": 1, "out_sum": "1"})
        assert client.get("/robokassa/_sandbox/state").json()["paid"] == 1
        client.post("/robokassa/_sandbox/reset")
        assert client.get("/robokassa/_sandbox/state").json()["paid"] == 0
