"""The amoCRM client against recorded doc payloads (respx): shapes, paging, errors, 401 and 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.models import (
    WON_STATUS_ID,
    ComplexLead,
    Contact,
    LeadUpdate,
    NewContact,
    NewLead,
    NewNote,
    NewTask,
    email_field,
    phone_field,
    text_field,
)
from schoolsync.connectors.amocrm.oauth import LongLivedToken
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.core.errors import (
    AuthError,
    MalformedInputError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UnavailableError,
)

BASE = "https://school.amocrm.ru"
ENDPOINT = Endpoint("amocrm", "main")
FIXTURES = Path(__file__).parents[2] / "fixtures" / "amocrm"
PROBLEM = {"Content-Type": "application/problem+json"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def last_page(name: str) -> Any:
    """A doc page without ``_links.next``: what the last page looks like."""
    page = fixture(name)
    del page["_links"]["next"]
    return page


class FakeTokens:
    """A TokenProvider: hands out tokens in order; a refused one is replaced by the next."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.refused: list[str] = []

    def access_token(self) -> str:
        return self.tokens[0]

    def on_unauthorized(self, token: str) -> None:
        self.refused.append(token)
        if self.tokens[0] == token and len(self.tokens) > 1:
            self.tokens.pop(0)


class FakePacer:
    def __init__(self) -> None:
        self.acquired = 0
        self.penalties: list[float | None] = []

    def acquire(self, *, max_wait: float = 10.0) -> None:
        self.acquired += 1

    def penalize(self, retry_after: float | None = None) -> None:
        self.penalties.append(retry_after)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def pacer() -> FakePacer:
    return FakePacer()


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens("token-1", "token-2")


@pytest.fixture
def client(pacer: FakePacer, tokens: FakeTokens) -> Iterator[AmoCrmClient]:
    with build_client(BASE, timeout=2) as http:
        yield AmoCrmClient(http, ENDPOINT, tokens, pacer)  # type: ignore[arg-type]


def body(route: respx.Route, call: int = -1) -> Any:
    return json.loads(route.calls[call].request.content)


# --- leads ---------------------------------------------------------------------------------


def test_leads_complex_sends_leads_with_contacts_and_reads_the_ids(
    api: respx.MockRouter, client: AmoCrmClient, pacer: FakePacer
) -> None:
    route = api.post("/api/v4/leads/complex").respond(200, json=fixture("leads_complex.json"))
    lead = ComplexLead(
        name="Order 12345",
        price=15000,
        pipeline_id=3177727,
        status_id=32392159,
        created_by=0,
        custom_fields_values=[text_field(555, "gc-order:12345")],
        tags=["getcourse"],
        contact=NewContact(
            first_name="Иван",
            custom_fields_values=[email_field("ivan@example.com"), phone_field("+79991234567")],
        ),
        request_id="1",
    )

    results = client.leads_complex([lead])

    assert [(r.id, r.contact_id, r.request_id, r.merged) for r in results] == [
        (9774766, 12117258, ["1"], False)
    ]
    sent = body(route)
    assert sent == [
        {
            "name": "Order 12345",
            "price": 15000,
            "status_id": 32392159,
            "pipeline_id": 3177727,
            "created_by": 0,
            "custom_fields_values": [{"field_id": 555, "values": [{"value": "gc-order:12345"}]}],
            "request_id": "1",
            "_embedded": {
                "contacts": [
                    {
                        "first_name": "Иван",
                        "custom_fields_values": [
                            {
                                "field_code": "EMAIL",
                                "values": [{"value": "ivan@example.com", "enum_code": "WORK"}],
                            },
                            {
                                "field_code": "PHONE",
                                "values": [{"value": "+79991234567", "enum_code": "WORK"}],
                            },
                        ],
                    }
                ],
                "tags": [{"name": "getcourse"}],
            },
        }
    ]
    assert route.calls[0].request.headers["Authorization"] == "Bearer token-1"
    assert pacer.acquired == 1


def test_leads_complex_reports_a_merged_duplicate(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    api.post("/api/v4/leads/complex").respond(200, json=fixture("leads_complex_merged.json"))

    (result,) = client.leads_complex([ComplexLead(name="again", contact_id=12117258)])

    assert result.merged is True and result.request_id == ["2"]


def test_leads_complex_takes_at_most_50(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.post("/api/v4/leads/complex")

    with pytest.raises(ValueError, match="at most 50"):
        client.leads_complex([ComplexLead(name=str(i)) for i in range(51)])

    assert not route.called
    assert client.leads_complex([]) == []


def test_create_leads_links_existing_contacts(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.post("/api/v4/leads").respond(200, json=fixture("leads_created.json"))

    created = client.create_leads(
        [NewLead(name="a", contact_ids=[7]), NewLead(name="b", request_id="x")]
    )

    assert [(c.id, c.request_id) for c in created] == [(10185151, "0"), (10185153, "1")]
    assert body(route) == [
        {"name": "a", "_embedded": {"contacts": [{"id": 7}]}},
        {"name": "b", "request_id": "x"},
    ]


def test_writes_also_take_items_already_in_wire_form(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    route = api.patch("/api/v4/leads").respond(200, json=fixture("leads_updated.json"))

    client.update_leads([{"id": 54886, "price": 100}])

    assert body(route) == [{"id": 54886, "price": 100}]


def test_update_leads_sends_only_what_changes(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.patch("/api/v4/leads").respond(200, json=fixture("leads_updated.json"))

    updated = client.update_leads(
        [
            LeadUpdate(id=54886, status_id=WON_STATUS_ID, tags_to_add=["paid"]),
            LeadUpdate(id=54884, price=0),
        ]
    )

    assert [u.id for u in updated] == [54886, 54884]
    assert updated[0].updated_at == datetime.fromtimestamp(1589556420, UTC)
    assert body(route) == [
        {"id": 54886, "status_id": 142, "tags_to_add": [{"name": "paid"}]},
        {"id": 54884, "price": 0},
    ]
    with pytest.raises(ValueError):
        client.update_leads([LeadUpdate(id=i) for i in range(51)])


def test_get_lead_with_its_contacts(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.get("/api/v4/leads/3912171").respond(200, json=fixture("lead.json"))

    lead = client.get_lead(3912171)

    assert (lead.id, lead.status_id, lead.pipeline_id, lead.price) == (3912171, 143, 3104455, 12)
    assert lead.main_contact_id == 10971465
    assert [t.name for t in lead.embedded.tags] == ["тест"]
    assert lead.updated_at == datetime.fromtimestamp(1590683337, UTC)
    assert route.calls[0].request.url.params["with"] == "contacts"


def test_get_lead_that_does_not_exist(api: respx.MockRouter, client: AmoCrmClient) -> None:
    api.get("/api/v4/leads/1").respond(404, json=fixture("error_404.json"), headers=PROBLEM)

    with pytest.raises(NotFoundError) as caught:
        client.get_lead(1)

    assert "/api/v4/leads/1" in str(caught.value) and "status=404" in str(caught.value)


def test_find_leads_reads_every_page_until_204(
    api: respx.MockRouter, client: AmoCrmClient, pacer: FakePacer
) -> None:
    route = api.get("/api/v4/leads").mock(
        side_effect=[httpx.Response(200, json=fixture("leads_page.json")), httpx.Response(204)]
    )

    leads = client.find_leads("gc-order:12345")

    assert [lead.id for lead in leads] == [19619, 14460]
    pages = [call.request.url.params for call in route.calls]
    assert [(p["page"], p["query"], p["limit"]) for p in pages] == [
        ("1", "gc-order:12345", "250"),
        ("2", "gc-order:12345", "250"),
    ]
    assert pacer.acquired == 2  # every page is paced


def test_iter_leads_filters_by_update_time_and_stops_without_a_next_link(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    route = api.get("/api/v4/leads").mock(
        side_effect=[
            httpx.Response(200, json=fixture("leads_page.json")),
            httpx.Response(200, json=last_page("leads_page.json")),
        ]
    )
    since = datetime(2024, 1, 1, tzinfo=UTC)

    leads = list(client.iter_leads(updated_since=since))

    assert len(leads) == 4 and route.call_count == 2
    params = route.calls[0].request.url.params
    assert params["filter[updated_at][from]"] == str(int(since.timestamp()))
    assert params["order[updated_at]"] == "asc"
    with pytest.raises(ValueError, match="timezone"):
        list(client.iter_leads(updated_since=datetime(2024, 1, 1)))  # noqa: DTZ001


# --- contacts ------------------------------------------------------------------------------


def test_iter_contacts_of_an_empty_account(api: respx.MockRouter, client: AmoCrmClient) -> None:
    api.get("/api/v4/contacts").respond(204)

    assert list(client.iter_contacts()) == []


def test_iter_contacts_pages_with_the_given_limit(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    route = api.get("/api/v4/contacts").mock(
        side_effect=[
            httpx.Response(200, json=fixture("contacts_page.json")),
            httpx.Response(200, json=last_page("contacts_page.json")),
        ]
    )

    contacts = list(client.iter_contacts(updated_since=datetime(2020, 4, 1, tzinfo=UTC), limit=2))

    assert [c.id for c in contacts] == [7143599, 7767065, 7143599, 7767065]
    assert [c.request.url.params["limit"] for c in route.calls] == ["2", "2"]
    assert route.calls[1].request.url.params["page"] == "2"


def test_find_contacts_and_their_phones_and_emails(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    contact = fixture("contact.json")
    contact["custom_fields_values"].append(
        {
            "field_id": 5,
            "field_name": "Email",
            "field_code": "EMAIL",
            "field_type": "multitext",
            "values": [
                {"value": "ivan@example.com", "enum_id": 3, "enum": "WORK"},
                {"value": "", "enum": "PRIV"},
            ],
        }
    )
    route = api.get("/api/v4/contacts").respond(
        200, json={"_page": 1, "_links": {}, "_embedded": {"contacts": [contact]}}
    )

    (found,) = client.find_contacts("+79123")

    assert found.phones() == ["+79123"]
    assert found.emails() == ["ivan@example.com"]
    assert [lead.id for lead in found.embedded.leads] == [1, 3916883]
    assert route.calls[0].request.url.params["query"] == "+79123"
    assert (
        Contact.model_validate(fixture("contacts_page.json")["_embedded"]["contacts"][0]).phones()
        == []
    )


def test_create_contacts(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.post("/api/v4/contacts").respond(200, json=fixture("contacts_created.json"))

    created = client.create_contacts(
        [NewContact(name="Иван", tags=["gc"]), NewContact(name="Мария", request_id="1")]
    )

    assert [c.id for c in created] == [40401635, 40401636]
    assert body(route)[0] == {"name": "Иван", "_embedded": {"tags": [{"name": "gc"}]}}


# --- notes, tasks, settings ----------------------------------------------------------------


def test_add_notes_to_leads(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.post("/api/v4/leads/notes").respond(200, json=fixture("notes_created.json"))

    created = client.add_notes(
        [NewNote.common(167353, "Оплачено 15 000 ₽", request_id=str(i)) for i in range(4)]
    )

    assert (created[0].id, created[0].entity_id) == (76787983, 167353)
    assert body(route)[0] == {
        "entity_id": 167353,
        "note_type": "common",
        "params": {"text": "Оплачено 15 000 ₽"},
        "request_id": "0",
    }
    with pytest.raises(ValueError):
        client.add_notes([], entity="nonsense")


def test_add_tasks_sends_unix_due_times(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.post("/api/v4/tasks").respond(200, json=fixture("tasks_created.json"))

    (task,) = client.add_tasks(
        [
            NewTask(
                text="Встретиться с клиентом Иван Иванов",
                complete_till=datetime.fromtimestamp(1588885140, UTC),
                entity_id=9785993,
                entity_type="leads",
                task_type_id=1,
                request_id="example",
            )
        ]
    )

    assert (task.id, task.request_id) == (4745251, "example")
    assert body(route) == [
        {
            "text": "Встретиться с клиентом Иван Иванов",
            "complete_till": 1588885140,
            "entity_id": 9785993,
            "entity_type": "leads",
            "task_type_id": 1,
            "request_id": "example",
        }
    ]


def test_pipelines_with_their_statuses(api: respx.MockRouter, client: AmoCrmClient) -> None:
    api.get("/api/v4/leads/pipelines").respond(200, json=fixture("pipelines.json"))

    (pipeline,) = client.pipelines()

    assert (pipeline.id, pipeline.name, pipeline.is_main) == (3177727, "Воронка", True)
    assert [s.id for s in pipeline.statuses] == [32392156, 32392159, 32392165, 142, 143]
    assert pipeline.statuses[0].type == 1  # unsorted


def test_users(api: respx.MockRouter, client: AmoCrmClient) -> None:
    api.get("/api/v4/users").respond(200, json=fixture("users.json"))

    users = client.users()

    assert [(u.id, u.is_admin, u.is_active) for u in users] == [
        (123123, False, True),
        (321321, True, True),
    ]


def test_custom_fields(api: respx.MockRouter, client: AmoCrmClient) -> None:
    route = api.get("/api/v4/leads/custom_fields").respond(200, json=fixture("custom_fields.json"))

    (field,) = client.custom_fields("leads")

    assert (field.id, field.type, [e.value for e in field.enums or []]) == (
        1016236,
        "select",
        ["New", "Regular", "VIP"],
    )
    assert route.call_count == 1
    with pytest.raises(ValueError):
        client.custom_fields("../account")


# --- failures ------------------------------------------------------------------------------


def test_429_with_a_json_body_penalises_the_budget_and_raises(
    api: respx.MockRouter, client: AmoCrmClient, pacer: FakePacer
) -> None:
    route = api.get("/api/v4/leads/pipelines").respond(
        429, json=fixture("error_429.json"), headers=PROBLEM
    )

    with pytest.raises(RateLimitedError) as caught:
        client.pipelines()

    assert caught.value.retry_after == 300  # from the body: there was no Retry-After header
    assert pacer.penalties == [300]
    assert route.call_count == 1  # no retry loop here: the job retries later


def test_429_without_a_json_body(
    api: respx.MockRouter, client: AmoCrmClient, pacer: FakePacer
) -> None:
    api.get("/api/v4/leads/pipelines").mock(
        side_effect=[
            httpx.Response(
                429, text="<html>Too Many Requests</html>", headers={"Retry-After": "7"}
            ),
            httpx.Response(429, text="<html>Too Many Requests</html>"),
        ]
    )

    with pytest.raises(RateLimitedError) as first:
        client.pipelines()
    with pytest.raises(RateLimitedError) as second:
        client.pipelines()

    assert first.value.retry_after == 7 and second.value.retry_after is None
    assert pacer.penalties == [7, None]


def test_401_refreshes_once_and_retries(
    api: respx.MockRouter, client: AmoCrmClient, tokens: FakeTokens
) -> None:
    route = api.get("/api/v4/leads/pipelines").mock(
        side_effect=[
            httpx.Response(401, json=fixture("error_401.json"), headers=PROBLEM),
            httpx.Response(200, json=fixture("pipelines.json")),
        ]
    )

    assert len(client.pipelines()) == 1

    assert tokens.refused == ["token-1"]
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


def test_a_second_401_is_an_auth_error(
    api: respx.MockRouter, client: AmoCrmClient, tokens: FakeTokens
) -> None:
    route = api.get("/api/v4/leads/pipelines").respond(
        401, json=fixture("error_401.json"), headers=PROBLEM
    )

    with pytest.raises(AuthError) as caught:
        client.pipelines()

    assert route.call_count == 2
    assert "token-" not in str(caught.value)


def test_a_refused_long_lived_token_is_not_retried(api: respx.MockRouter) -> None:
    route = api.get("/api/v4/users").respond(401, json=fixture("error_401.json"), headers=PROBLEM)
    with build_client(BASE) as http:
        client = AmoCrmClient(
            http, ENDPOINT, LongLivedToken("opaque-token", endpoint=ENDPOINT), None
        )

        with pytest.raises(AuthError):
            client.users()

    assert route.call_count == 1


def test_a_rejected_write_names_the_failing_paths_but_not_the_values(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    api.post("/api/v4/leads/complex").respond(
        400, json=fixture("error_400_validation.json"), headers=PROBLEM
    )
    lead = ComplexLead(
        name="Order 12345",
        contact=NewContact(
            first_name="Иван",
            custom_fields_values=[
                email_field("ivan.petrov@example.com"),
                phone_field("+79991234567"),
            ],
        ),
    )

    with pytest.raises(RejectedError) as caught:
        client.leads_complex([lead])

    message = str(caught.value)
    assert "custom_fields_values.0.field_id (NotSupportedChoice)" in message
    assert "status_id (InvalidType)" in message
    assert "status=400" in message
    for secret in ("ivan.petrov", "79991234567", "Order 12345", "token-1"):
        assert secret not in message


def test_an_error_detail_echoing_our_url_loses_its_query(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    api.get("/api/v4/contacts").respond(
        404,
        json={
            "title": "Not Found",
            "status": 404,
            "detail": f"Cannot get {BASE}/api/v4/contacts?query=%2B79991234567&page=1",
        },
        headers=PROBLEM,
    )

    with pytest.raises(NotFoundError) as caught:
        client.find_contacts("+79991234567")

    assert "79991234567" not in str(caught.value)
    assert "Cannot get" in str(caught.value)


def test_server_errors_and_timeouts_are_retryable(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    api.get("/api/v4/users").mock(
        side_effect=[httpx.Response(502, text="bad gateway"), httpx.ConnectTimeout("slow")]
    )

    with pytest.raises(UnavailableError):
        client.users()
    with pytest.raises(UnavailableError):
        client.users()


def test_a_200_that_is_not_json_is_retryable(api: respx.MockRouter, client: AmoCrmClient) -> None:
    api.get("/api/v4/leads/pipelines").respond(200, text="<html>maintenance</html>")

    with pytest.raises(UnavailableError, match="not JSON"):
        client.pipelines()


def test_a_lead_we_cannot_read_is_malformed_input_named_by_field(
    api: respx.MockRouter, client: AmoCrmClient
) -> None:
    lead = fixture("lead.json")
    lead["status_id"] = "won"
    api.get("/api/v4/leads/3912171").respond(200, json=lead)

    with pytest.raises(MalformedInputError) as caught:
        client.get_lead(3912171)

    assert "status_id" in str(caught.value) and "won" not in str(caught.value)
