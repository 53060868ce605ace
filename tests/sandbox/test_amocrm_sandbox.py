"""The amoCRM sandbox behaves like the account our client will meet: OAuth with single-use
refresh tokens, strict validation, paging with 204, search, the rate limit and its block,
injected faults (including a write that happened but was never answered) and webhooks."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.sandbox.amocrm import AmoSandboxConfig, create_app

PREFIX = "/amocrm"
TOKEN = "long-lived-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OAUTH = {
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "redirect_uri": "http://127.0.0.1:8000/amocrm/oauth",
}


def sandbox(**config: Any) -> TestClient:
    """The sandbox mounted under a prefix, as the service mounts it."""
    config.setdefault("long_lived_token", TOKEN)
    config.setdefault("rate_per_s", 1000.0)
    app = Starlette(routes=[Mount(PREFIX, app=create_app(AmoSandboxConfig(**config)))])
    return TestClient(app, base_url=f"http://testserver{PREFIX}")


def order_lead(n: int, *, phone: str | None = None, email: str | None = None) -> dict[str, Any]:
    contact_fields = []
    if phone:
        contact_fields.append(
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "MOB"}]}
        )
    if email:
        contact_fields.append({"field_code": "EMAIL", "values": [{"value": email}]})
    return {
        "name": f"Заказ {n}",
        "price": 1000 + n,
        "request_id": f"gc-{n}",
        "custom_fields_values": [{"field_id": 5001, "values": [{"value": f"gc-{n}"}]}],
        "_embedded": {
            "contacts": [
                {
                    "first_name": "Ученик",
                    "last_name": str(n),
                    "custom_fields_values": contact_fields,
                }
            ]
        },
    }


def state(client: TestClient) -> dict[str, Any]:
    return client.get("/_sandbox/state").json()


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def exchange(client: TestClient, **body: str) -> httpx.Response:
    return client.post("/oauth2/access_token", json={**OAUTH, **body})


# OAuth -----------------------------------------------------------------------------------


def test_code_gives_tokens_that_open_the_api_and_refresh_once() -> None:
    client = sandbox(long_lived_token=None)
    code = client.post("/_sandbox/oauth/code").json()["code"]

    first = exchange(client, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 86400
    assert isinstance(tokens["server_time"], int)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v4/account", headers=bearer).status_code == 200

    refreshed = exchange(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert (
        client.get(
            "/api/v4/account", headers={"Authorization": f"Bearer {new['access_token']}"}
        ).status_code
        == 200
    )
    # the old access token lives until its own expiry
    assert client.get("/api/v4/account", headers=bearer).status_code == 200

    counts = state(client)
    assert counts["refreshes"] == 1
    assert counts["refresh_token_uses"] == {
        hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()[:16]: 1
    }
    # a code is good once
    again = exchange(client, grant_type="authorization_code", code=code)
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"


def test_spent_refresh_token_is_refused_once_its_successor_was_used() -> None:
    client = sandbox(long_lived_token=None)
    code = client.post("/_sandbox/oauth/code").json()["code"]
    r0 = exchange(client, grant_type="authorization_code", code=code).json()["refresh_token"]

    lost = exchange(client, grant_type="refresh_token", refresh_token=r0)
    assert lost.status_code == 200
    # the answer was lost: the docs let the client send the old token again
    r1 = exchange(client, grant_type="refresh_token", refresh_token=r0).json()["refresh_token"]
    # the pair nobody received is dead, the new one works and retires r0
    assert (
        exchange(
            client, grant_type="refresh_token", refresh_token=lost.json()["refresh_token"]
        ).status_code
        == 401
    )
    assert exchange(client, grant_type="refresh_token", refresh_token=r1).status_code == 200

    spent = exchange(client, grant_type="refresh_token", refresh_token=r0)
    assert spent.status_code == 401
    assert spent.json()["hint"] == "Token has been revoked"
    assert state(client)["refresh_rejected"] == 2


def test_strictly_single_use_refresh_tokens_when_grace_is_off() -> None:
    client = sandbox(long_lived_token=None, refresh_grace=False)
    code = client.post("/_sandbox/oauth/code").json()["code"]
    r0 = exchange(client, grant_type="authorization_code", code=code).json()["refresh_token"]
    assert exchange(client, grant_type="refresh_token", refresh_token=r0).status_code == 200
    assert exchange(client, grant_type="refresh_token", refresh_token=r0).status_code == 401


@pytest.mark.parametrize(
    "wrong",
    [
        {"client_secret": "not-the-secret"},
        {"client_id": "someone-else"},
        {"redirect_uri": "https://elsewhere.example/cb"},
    ],
)
def test_wrong_client_credentials_are_refused(wrong: dict[str, str]) -> None:
    client = sandbox(long_lived_token=None)
    code = client.post("/_sandbox/oauth/code").json()["code"]
    answer = client.post(
        "/oauth2/access_token",
        json={**OAUTH, **wrong, "grant_type": "authorization_code", "code": code},
    )
    assert answer.status_code == 401
    assert answer.json()["title"] == "Некорректный клиент"
    assert state(client)["codes_exchanged"] == 0


def test_token_endpoint_also_takes_a_form() -> None:
    client = sandbox(long_lived_token=None)
    code = client.post("/_sandbox/oauth/code").json()["code"]
    answer = client.post(
        "/oauth2/access_token", data={**OAUTH, "grant_type": "authorization_code", "code": code}
    )
    assert answer.status_code == 200 and answer.json()["access_token"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer forged"}, {"Authorization": TOKEN}]
)
def test_api_needs_a_valid_bearer_token(headers: dict[str, str]) -> None:
    client = sandbox()
    answer = client.post("/api/v4/leads", headers=headers, json=[{"name": "x"}])
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert state(client)["leads"] == 0


# lists -----------------------------------------------------------------------------------


def test_pages_follow_next_links_and_end_with_204() -> None:
    client = sandbox()
    seeded = client.post("/_sandbox/leads", json={"leads": [order_lead(n) for n in range(120)]})
    assert seeded.status_code == 200

    ids, url, pages = [], "/api/v4/leads?limit=50&with=contacts", 0
    while True:
        page = client.get(url, headers=AUTH)
        assert page.status_code == 200
        assert page.headers["content-type"] == "application/hal+json"
        body = page.json()
        pages += 1
        assert body["_page"] == pages
        ids += [lead["id"] for lead in body["_embedded"]["leads"]]
        assert all(len(lead["_embedded"]["contacts"]) == 1 for lead in body["_embedded"]["leads"])
        if "next" not in body["_links"]:
            break
        url = body["_links"]["next"]["href"]
        assert url.startswith(f"http://testserver{PREFIX}/api/v4/leads?")
    assert pages == 3 and len(ids) == len(set(ids)) == 120

    past_the_end = client.get("/api/v4/leads?limit=50&page=4", headers=AUTH)
    assert past_the_end.status_code == 204 and past_the_end.content == b""
    nothing = client.get("/api/v4/leads?query=no-such-order", headers=AUTH)
    assert nothing.status_code == 204


def test_limit_above_250_is_refused() -> None:
    client = sandbox()
    answer = client.get("/api/v4/leads?limit=251", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["validation-errors"][0]["errors"][0]["path"] == "limit"


def test_query_finds_contacts_by_email_any_case_and_by_phone_digits() -> None:
    client = sandbox()
    client.post(
        "/api/v4/leads/complex",
        headers=AUTH,
        json=[
            order_lead(1, phone="+7 (999) 123-45-67", email="Masha.Petrova@Example.com"),
            order_lead(2, phone="+7 916 000-00-00", email="other@example.com"),
        ],
    )

    def found(query: str) -> list[str]:
        answer = client.get("/api/v4/contacts", params={"query": query}, headers=AUTH)
        if answer.status_code == 204:
            return []
        return [c["last_name"] for c in answer.json()["_embedded"]["contacts"]]

    assert found("masha.petrova@example.com") == ["1"]
    assert found("89991234567") == ["1"]
    assert found("79991234567") == ["1"]
    assert found("nobody@example.com") == []
    leads = client.get("/api/v4/leads", params={"query": "gc-2"}, headers=AUTH).json()
    assert [lead["name"] for lead in leads["_embedded"]["leads"]] == ["Заказ 2"]


def test_filter_by_ids_and_updated_at() -> None:
    client = sandbox()
    made = client.post(
        "/api/v4/leads/complex", headers=AUTH, json=[order_lead(n) for n in range(3)]
    ).json()
    wanted = [made[0]["id"], made[2]["id"]]
    answer = client.get(
        "/api/v4/leads", params=[("filter[id][]", str(i)) for i in wanted], headers=AUTH
    )
    assert [lead["id"] for lead in answer.json()["_embedded"]["leads"]] == wanted
    later = client.get(
        "/api/v4/leads",
        params={"filter[updated_at][from]": str(int(time.time()) + 60)},
        headers=AUTH,
    )
    assert later.status_code == 204


# writes ----------------------------------------------------------------------------------


def test_complex_takes_50_leads_and_links_the_new_contacts() -> None:
    client = sandbox()
    answer = client.post(
        "/api/v4/leads/complex",
        headers=AUTH,
        json=[order_lead(n, phone=f"+7999000{n:04d}") for n in range(50)],
    )
    assert answer.status_code == 200
    rows = answer.json()
    assert [row["request_id"] for row in rows] == [[f"gc-{n}"] for n in range(50)]
    assert all(row["merged"] is False and row["company_id"] is None for row in rows)

    leads = client.get("/_sandbox/leads").json()
    assert len(leads) == 50
    for row, lead in zip(rows, leads, strict=True):
        (contact,) = lead["_embedded"]["contacts"]
        assert contact["id"] == row["contact_id"]
        assert lead["_embedded"]["contacts"][0]["custom_fields_values"][0]["field_code"] == "PHONE"
    linked = client.get(f"/api/v4/contacts/{rows[0]['contact_id']}?with=leads", headers=AUTH).json()
    assert linked["_embedded"]["leads"][0]["id"] == rows[0]["id"]


def test_complex_with_51_leads_is_refused_whole() -> None:
    client = sandbox()
    answer = client.post(
        "/api/v4/leads/complex", headers=AUTH, json=[order_lead(n) for n in range(51)]
    )
    assert answer.status_code == 400
    assert "validation-errors" in answer.json()
    assert state(client)["leads"] == state(client)["contacts"] == 0


def test_complex_links_an_existing_contact_and_refuses_two() -> None:
    client = sandbox()
    contact_id = client.post(
        "/api/v4/contacts", headers=AUTH, json=[{"name": "Старый клиент"}]
    ).json()["_embedded"]["contacts"][0]["id"]
    lead = {"name": "Повторный заказ", "_embedded": {"contacts": [{"id": contact_id}]}}
    row = client.post("/api/v4/leads/complex", headers=AUTH, json=[lead]).json()[0]
    assert row["contact_id"] == contact_id
    assert state(client)["contacts"] == 1

    two = {"name": "x", "_embedded": {"contacts": [{"id": contact_id}, {"first_name": "Второй"}]}}
    refused = client.post("/api/v4/leads/complex", headers=AUTH, json=[two])
    assert refused.status_code == 400
    assert state(client)["leads"] == 1


@pytest.mark.parametrize(
    ("lead", "path"),
    [
        ({"name": "x", "price": "1000"}, "price"),
        ({"name": "x", "price": 10.5}, "price"),
        ({"name": "x", "pipeline_id": 1000, "status_id": 999}, "status_id"),
        ({"name": "x", "status_id": 1001}, "status_id"),
        ({"name": "x", "discount": 5}, "discount"),
        (
            {"name": "x", "custom_fields_values": [{"field_id": 9999, "values": [{"value": "a"}]}]},
            "custom_fields_values.0.field_id",
        ),
        (
            {
                "name": "x",
                "custom_fields_values": [{"field_id": 5003, "values": [{"value": "not a url"}]}],
            },
            "custom_fields_values.0.values.0.value",
        ),
        (
            {
                "name": "x",
                "_embedded": {
                    "contacts": [
                        {
                            "first_name": "Y",
                            "custom_fields_values": [
                                {
                                    "field_code": "PHONE",
                                    "values": [{"value": "1", "enum_code": "PAGER"}],
                                }
                            ],
                        }
                    ]
                },
            },
            "_embedded.contacts.0.custom_fields_values.0.values.0.enum_code",
        ),
    ],
)
def test_wrong_types_and_unknown_fields_are_refused_with_their_path(
    lead: dict[str, Any], path: str
) -> None:
    client = sandbox()
    answer = client.post("/api/v4/leads/complex", headers=AUTH, json=[order_lead(1), lead])
    assert answer.status_code == 400
    (errors,) = answer.json()["validation-errors"]
    assert errors["request_id"] == "1"
    assert path in [e["path"] for e in errors["errors"]]
    assert state(client)["leads"] == 0


def test_more_than_250_leads_in_one_post_is_422() -> None:
    client = sandbox()
    answer = client.post("/api/v4/leads", headers=AUTH, json=[{"name": str(n)} for n in range(251)])
    assert answer.status_code == 422
    assert state(client)["leads"] == 0


def test_patch_moves_a_lead_and_updates_fields() -> None:
    client = sandbox()
    lead_id = client.post("/api/v4/leads", headers=AUTH, json=[{"name": "x"}]).json()["_embedded"][
        "leads"
    ][0]["id"]
    patched = client.patch(
        f"/api/v4/leads/{lead_id}",
        headers=AUTH,
        json={
            "status_id": 142,
            "custom_fields_values": [
                {"field_id": 5003, "values": [{"value": "https://pay.example/1"}]}
            ],
        },
    )
    assert patched.status_code == 200
    lead = client.get(f"/api/v4/leads/{lead_id}", headers=AUTH).json()
    assert (lead["status_id"], lead["pipeline_id"]) == (142, 1000)
    assert lead["closed_at"] is not None
    assert lead["custom_fields_values"][0]["values"] == [{"value": "https://pay.example/1"}]
    missing = client.get("/api/v4/leads/1", headers=AUTH)
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    )


def test_notes_and_tasks_on_a_lead() -> None:
    client = sandbox()
    lead_id = client.post("/api/v4/leads", headers=AUTH, json=[{"name": "x"}]).json()["_embedded"][
        "leads"
    ][0]["id"]
    note = [{"entity_id": lead_id, "note_type": "common", "params": {"text": "Оплата получена"}}]
    assert client.post("/api/v4/leads/notes", headers=AUTH, json=note).status_code == 200
    notes = client.get(f"/api/v4/leads/{lead_id}/notes", headers=AUTH).json()["_embedded"]["notes"]
    assert [n["params"]["text"] for n in notes] == ["Оплата получена"]
    contact_id = client.post("/api/v4/contacts", headers=AUTH, json=[{"name": "Y"}]).json()[
        "_embedded"
    ]["contacts"][0]["id"]
    on_contact = [{"note_type": "common", "params": {"text": "Клиент перезвонит"}}]
    assert (
        client.post(
            f"/api/v4/contacts/{contact_id}/notes", headers=AUTH, json=on_contact
        ).status_code
        == 200
    )
    assert state(client)["notes"] == 2
    wrong_entity = [{"entity_id": contact_id, "note_type": "common", "params": {"text": "x"}}]
    assert client.post("/api/v4/leads/notes", headers=AUTH, json=wrong_entity).status_code == 400
    bad = [{"entity_id": lead_id, "note_type": "shout", "params": {"text": "x"}}]
    assert client.post("/api/v4/leads/notes", headers=AUTH, json=bad).status_code == 400

    task = [
        {
            "text": "Позвонить",
            "complete_till": int(time.time()) + 3600,
            "entity_id": lead_id,
            "entity_type": "leads",
        }
    ]
    assert client.post("/api/v4/tasks", headers=AUTH, json=task).status_code == 200
    assert (
        client.post("/api/v4/tasks", headers=AUTH, json=[{"text": "no deadline"}]).status_code
        == 400
    )
    tasks = client.get(
        "/api/v4/tasks", params={"filter[entity_type]": "leads"}, headers=AUTH
    ).json()
    assert [t["entity_id"] for t in tasks["_embedded"]["tasks"]] == [lead_id]


def test_account_setup_endpoints() -> None:
    client = sandbox()
    pipelines = client.get("/api/v4/leads/pipelines", headers=AUTH).json()["_embedded"]["pipelines"]
    statuses = {s["id"]: s for s in pipelines[0]["_embedded"]["statuses"]}
    assert {1001, 1002, 1003, 142, 143} == set(statuses) and statuses[1001]["type"] == 1
    listed = client.get("/api/v4/leads/pipelines/1000/statuses", headers=AUTH).json()
    assert len(listed["_embedded"]["statuses"]) == 5
    fields = client.get("/api/v4/contacts/custom_fields", headers=AUTH).json()["_embedded"][
        "custom_fields"
    ]
    phone = next(f for f in fields if f["code"] == "PHONE")
    assert {"WORK", "MOB"} <= {e["value"] for e in phone["enums"]}
    lead_fields = client.get("/api/v4/leads/custom_fields", headers=AUTH).json()["_embedded"][
        "custom_fields"
    ]
    assert {(f["id"], f["type"]) for f in lead_fields} == {
        (5001, "text"),
        (5002, "text"),
        (5003, "url"),
    }
    assert len(client.get("/api/v4/users", headers=AUTH).json()["_embedded"]["users"]) == 2
    assert client.get("/api/v4/users?page=2", headers=AUTH).status_code == 204
    assert client.get("/api/v4/account", headers=AUTH).json()["subdomain"] == "sandbox"


# rate limit ------------------------------------------------------------------------------


def test_past_seven_a_second_is_429_and_changes_nothing() -> None:
    client = sandbox(rate_per_s=7.0)
    answers = [
        client.post("/api/v4/leads", headers=AUTH, json=[{"name": str(n)}]) for n in range(10)
    ]
    assert [a.status_code for a in answers] == [200] * 7 + [429] * 3
    assert answers[-1].json()["retry_after"] >= 1
    counts = state(client)
    assert counts["leads"] == 7 and counts["responses_429"] == 3

    time.sleep(1.05)
    assert client.post("/api/v4/leads", headers=AUTH, json=[{"name": "later"}]).status_code == 200


def test_hammering_after_429s_is_blocked_with_403() -> None:
    client = sandbox(rate_per_s=7.0, block_after_429s=5, block_for_s=0.5, rate_limit_body="html")
    codes = [client.get("/api/v4/account", headers=AUTH).status_code for _ in range(20)]
    assert codes[:12] == [200] * 7 + [429] * 5
    assert set(codes[12:]) == {403}
    blocked = client.post("/api/v4/leads", headers=AUTH, json=[{"name": "x"}])
    assert blocked.status_code == 403 and blocked.headers["content-type"].startswith("text/html")
    assert state(client)["leads"] == 0

    time.sleep(1.05)
    assert client.get("/api/v4/account", headers=AUTH).status_code == 200


# faults ----------------------------------------------------------------------------------


def test_injected_errors_answer_500_and_create_nothing() -> None:
    client = sandbox()
    rule = {"endpoint": "/api/v4/leads/complex", "error_rate": 1.0, "status": 500}
    assert client.post("/_sandbox/faults", json=rule).status_code == 200
    answer = client.post("/api/v4/leads/complex", headers=AUTH, json=[order_lead(1)])
    assert answer.status_code == 500
    assert state(client)["leads"] == 0
    # other endpoints are untouched
    assert client.get("/api/v4/account", headers=AUTH).status_code == 200

    client.delete("/_sandbox/faults")
    assert (
        client.post("/api/v4/leads/complex", headers=AUTH, json=[order_lead(1)]).status_code == 200
    )


def test_an_outage_answers_every_endpoint_until_it_ends() -> None:
    client = sandbox()
    client.post(
        "/_sandbox/faults", json={"endpoint": "*", "status": 503, "outage_until": time.time() + 0.3}
    )
    assert client.get("/api/v4/account", headers=AUTH).status_code == 503
    time.sleep(0.35)
    assert client.get("/api/v4/account", headers=AUTH).status_code == 200


def test_a_timeout_without_the_write_applied_creates_nothing() -> None:
    client = sandbox()
    client.post(
        "/_sandbox/faults",
        json={"endpoint": "/api/v4/leads/complex", "timeout_rate": 1.0, "timeout_s": 0.1},
    )
    answer = client.post("/api/v4/leads/complex", headers=AUTH, json=[order_lead(1)])
    assert answer.status_code == 504
    assert state(client)["leads"] == 0


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_write_applied_but_never_answered_can_be_found_by_the_order_number() -> None:
    app = Starlette(
        routes=[Mount(PREFIX, app=create_app(AmoSandboxConfig(long_lived_token=TOKEN)))]
    )
    with serving(app) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        rule = {
            "endpoint": "/api/v4/leads/complex",
            "timeout_rate": 1.0,
            "timeout_s": 1.0,
            "apply_on_timeout": True,
        }
        http.post("/_sandbox/faults", json=rule)
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/v4/leads/complex", json=[order_lead(77)], timeout=0.3)

        (lead,) = http.get("/_sandbox/leads").json()
        assert lead["custom_fields_values"][0]["values"] == [{"value": "gc-77"}]
        http.delete("/_sandbox/faults")
        found = http.get("/api/v4/leads", params={"query": "gc-77"}).json()["_embedded"]["leads"]
        assert [f["id"] for f in found] == [lead["id"]]


# webhooks --------------------------------------------------------------------------------


class Receiver:
    """A local HTTP endpoint that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        received: list[tuple[str, str]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append((self.headers["Content-Type"], self.rfile.read(length).decode()))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/amocrm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def test_lead_added_and_moved_webhooks_are_php_style_forms(receiver: Receiver) -> None:
    client = sandbox(webhook_url=receiver.url)
    row = client.post("/api/v4/leads/complex", headers=AUTH, json=[order_lead(5)]).json()[0]
    moved = client.post(f"/_sandbox/leads/{row['id']}/status", json={"status_id": 142})
    assert moved.status_code == 200

    wait_for(lambda: len(receiver.received) == 2)
    (added_type, added), (_, status) = receiver.received
    assert added_type == "application/x-www-form-urlencoded"
    assert "leads%5Badd%5D%5B0%5D%5Bid%5D=" in added  # brackets are percent-encoded on the wire

    add = dict(parse_qsl(added))
    assert add["leads[add][0][id]"] == str(row["id"])
    assert add["leads[add][0][name]"] == "Заказ 5"
    assert add["leads[add][0][status_id]"] == "1002"
    assert add["leads[add][0][custom_fields][0][id]"] == "5001"
    assert add["leads[add][0][custom_fields][0][values][0][value]"] == "gc-5"

    moved_form = dict(parse_qsl(status))
    # the keys of the recorded payload in samples/amocrm_lead_status_webhook.txt
    for key in (
        "id",
        "name",
        "status_id",
        "old_status_id",
        "price",
        "responsible_user_id",
        "last_modified",
        "modified_user_id",
        "created_user_id",
        "date_create",
        "pipeline_id",
        "account_id",
    ):
        assert f"leads[status][0][{key}]" in moved_form, key
    assert (
        moved_form["leads[status][0][status_id]"],
        moved_form["leads[status][0][old_status_id]"],
    ) == ("142", "1002")
    assert moved_form["account[subdomain]"] == "sandbox"
    assert moved_form["account[id]"] == "29000001"
    assert state(client)["webhooks_sent"] == 2


def test_undeliverable_webhooks_are_retried_then_dropped_and_counted() -> None:
    failing = Receiver(status=500)
    try:
        client = sandbox(webhook_url=failing.url, webhook_retries=2, webhook_retry_delay_s=0.01)
        client.post("/api/v4/leads", headers=AUTH, json=[{"name": "x"}])
        wait_for(lambda: state(client)["webhooks_failed"] == 1)
        counts = state(client)
        assert len(failing.received) == 3
        assert counts["webhook_attempts_failed"] == 3 and counts["webhooks_sent"] == 0
    finally:
        failing.close()
