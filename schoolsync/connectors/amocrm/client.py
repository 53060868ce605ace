"""A typed client for the amoCRM API v4.

Every request takes a token from the account's shared budget (:class:`Pacer`), carries a bearer
token from a :class:`TokenProvider`, and goes through ``connectors.http.send``, which turns
statuses into our errors. On top of that:

- 401: the token is reported (``on_unauthorized``) and the request is sent once more with a
  fresh one; a second 401, or no fresh token, is an ``AuthError``.
- 429: the budget is penalised (shrunk, and closed for ``Retry-After`` or the body's
  ``retry_after``) and ``RateLimitedError`` is raised: the job retries later, nobody loops here.
- 204: an empty list (past the last page, or nothing matched).

Write methods take typed models (``models.ComplexLead``...) or dicts already in wire form, at
most 50 items per call (amoCRM's advice, and the hard cap of ``/leads/complex``);
callers batch, so that each batch maps to one effect in the ledger. Nothing here retries a
write: amoCRM has no idempotency keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from schoolsync.connectors.amocrm.models import (
    ComplexLead,
    ComplexResult,
    Contact,
    Created,
    CustomField,
    Lead,
    LeadUpdate,
    NewContact,
    NewLead,
    NewNote,
    NewTask,
    Note,
    Pipeline,
    Task,
    User,
    parse_problem,
)
from schoolsync.connectors.amocrm.oauth import TokenProvider
from schoolsync.connectors.http import Endpoint, send
from schoolsync.connectors.pacing import Pacer
from schoolsync.core.errors import (
    AuthError,
    MalformedInputError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)

MAX_BATCH = 50
MAX_PAGE = 250
NOTE_ENTITIES = frozenset({"leads", "contacts", "companies", "customers"})

M = TypeVar("M", bound=BaseModel)
# A write item already in wire form (what a mapping builds), sent as it is.
Wire = Mapping[str, Any]


class _ProblemReader:
    """The ``detail`` callable for ``send``: describes a problem body and keeps its retry_after."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def __call__(self, response: httpx.Response) -> str:
        problem = parse_problem(response.content)
        if problem is None:
            return ""
        self.retry_after = problem.retry_after
        return problem.describe()


class AmoCrmClient:
    """One amoCRM account. ``max_wait`` (s) bounds how long a call waits for the rate budget."""

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        tokens: TokenProvider,
        pacer: Pacer | None,
        *,
        max_wait: float = 10.0,
    ) -> None:
        self._http = http
        self._endpoint = endpoint
        self._tokens = tokens
        self._pacer = pacer
        self._max_wait = max_wait

    # -- leads --

    def leads_complex(self, items: Sequence[ComplexLead | Wire]) -> list[ComplexResult]:
        """Create leads with their contacts in one request (at most 50)."""
        _check_batch(items, "leads_complex")
        if not items:
            return []
        data = self._call("POST", "/api/v4/leads/complex", json=_wire(items))
        if data is None:
            return []
        if not isinstance(data, list):
            raise self._malformed("leads/complex answer", "expected a list")
        return [self._parse(ComplexResult, item, "leads/complex answer") for item in data]

    def create_leads(self, items: Sequence[NewLead | Wire]) -> list[Created]:
        """``POST /api/v4/leads`` (at most 50)."""
        _check_batch(items, "create_leads")
        return self._write("POST", "/api/v4/leads", "leads", _wire(items))

    def update_leads(self, items: Sequence[LeadUpdate | Wire]) -> list[Created]:
        """``PATCH /api/v4/leads`` (at most 50), each with its ``id``; unsent fields stay."""
        _check_batch(items, "update_leads")
        return self._write("PATCH", "/api/v4/leads", "leads", _wire(items))

    def get_lead(self, lead_id: int, *, with_contacts: bool = True) -> Lead:
        """One lead; ``NotFoundError`` if it does not exist (or was deleted)."""
        params = {"with": "contacts"} if with_contacts else None
        data = self._call("GET", f"/api/v4/leads/{int(lead_id)}", params=params)
        if data is None:
            raise NotFoundError(
                f"amocrm lead {lead_id} not found",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
            )
        return self._parse(Lead, data, "lead")

    def find_leads(self, query: str) -> list[Lead]:
        """Leads whose filled fields match ``query`` (every page)."""
        return list(
            self._pages("/api/v4/leads", "leads", Lead, {"query": query, "with": "contacts"})
        )

    def iter_leads(self, updated_since: datetime | None = None) -> Iterator[Lead]:
        """Every lead, oldest change first, optionally only those updated at or after a time."""
        params: dict[str, Any] = {"with": "contacts", "order[updated_at]": "asc"}
        params.update(_since(updated_since))
        return self._pages("/api/v4/leads", "leads", Lead, params)

    def leads_in_stage(self, pipeline_id: int, status_id: int) -> Iterator[Lead]:
        """Every lead now in one stage (``filter[statuses]``), oldest id first, no contacts."""
        params = {
            "filter[statuses][0][pipeline_id]": int(pipeline_id),
            "filter[statuses][0][status_id]": int(status_id),
        }
        return self._pages("/api/v4/leads", "leads", Lead, params)

    # -- contacts --

    def iter_contacts(
        self,
        updated_since: datetime | None = None,
        limit: int = MAX_PAGE,
        *,
        order_by: Literal["updated_at", "id"] = "updated_at",
        first_page: int = 1,
    ) -> Iterator[Contact]:
        """Every contact, oldest change first (or by id: a stable order to resume a full read
        at ``first_page``), optionally only those updated since a time."""
        params: dict[str, Any] = {f"order[{order_by}]": "asc"}
        params.update(_since(updated_since))
        return self._pages(
            "/api/v4/contacts", "contacts", Contact, params, limit=limit, first_page=first_page
        )

    def find_contacts(self, query: str) -> list[Contact]:
        """Contacts whose filled fields (phone, email, name) match ``query`` (every page)."""
        return list(self._pages("/api/v4/contacts", "contacts", Contact, {"query": query}))

    def get_contact(self, contact_id: int) -> Contact:
        """One contact; ``NotFoundError`` if it does not exist."""
        data = self._call("GET", f"/api/v4/contacts/{int(contact_id)}")
        if data is None:
            raise NotFoundError(
                f"amocrm contact {contact_id} not found",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
            )
        return self._parse(Contact, data, "contact")

    def create_contacts(self, items: Sequence[NewContact | Wire]) -> list[Created]:
        """``POST /api/v4/contacts`` (at most 50)."""
        _check_batch(items, "create_contacts")
        return self._write("POST", "/api/v4/contacts", "contacts", _wire(items))

    # -- notes and tasks --

    def add_notes(self, notes: Sequence[NewNote | Wire], *, entity: str = "leads") -> list[Created]:
        """``POST /api/v4/{entity}/notes`` (at most 50)."""
        if entity not in NOTE_ENTITIES:
            raise ValueError(f"notes go on one of {sorted(NOTE_ENTITIES)}, not {entity!r}")
        _check_batch(notes, "add_notes")
        return self._write("POST", f"/api/v4/{entity}/notes", "notes", _wire(notes))

    def notes(self, entity: str, entity_id: int, *, note_type: str = "common") -> list[Note]:
        """The notes of one lead or contact (every page)."""
        if entity not in NOTE_ENTITIES:
            raise ValueError(f"notes are on one of {sorted(NOTE_ENTITIES)}, not {entity!r}")
        return list(
            self._pages(
                f"/api/v4/{entity}/{int(entity_id)}/notes",
                "notes",
                Note,
                {"filter[note_type][]": note_type},
            )
        )

    def tasks(self, entity_type: str, entity_id: int) -> list[Task]:
        """The tasks on one lead or contact (every page, open and completed)."""
        return list(
            self._pages(
                "/api/v4/tasks",
                "tasks",
                Task,
                {"filter[entity_type]": entity_type, "filter[entity_id][]": int(entity_id)},
            )
        )

    def add_tasks(self, tasks: Sequence[NewTask | Wire]) -> list[Created]:
        """``POST /api/v4/tasks`` (at most 50)."""
        _check_batch(tasks, "add_tasks")
        return self._write("POST", "/api/v4/tasks", "tasks", _wire(tasks))

    # -- account settings --

    def pipelines(self) -> list[Pipeline]:
        """Lead pipelines with their statuses."""
        data = self._call("GET", "/api/v4/leads/pipelines")
        return [self._parse(Pipeline, p, "pipeline") for p in self._embedded(data, "pipelines")]

    def users(self) -> list[User]:
        return list(self._pages("/api/v4/users", "users", User, {}))

    def custom_fields(self, entity: str) -> list[CustomField]:
        """Custom fields of ``leads``, ``contacts``, ``companies``..."""
        if not entity.isidentifier():
            raise ValueError(f"not an entity name: {entity!r}")
        return list(
            self._pages(f"/api/v4/{entity}/custom_fields", "custom_fields", CustomField, {})
        )

    # -- plumbing --

    def _write(self, method: str, path: str, key: str, body: list[dict[str, Any]]) -> list[Created]:
        if not body:
            return []
        data = self._call(method, path, json=body)
        return [self._parse(Created, item, f"{key} answer") for item in self._embedded(data, key)]

    def _pages(
        self,
        path: str,
        key: str,
        model: type[M],
        params: Mapping[str, Any],
        *,
        limit: int = MAX_PAGE,
        first_page: int = 1,
    ) -> Iterator[M]:
        limit = max(1, min(int(limit), MAX_PAGE))
        page = max(1, first_page)
        while True:
            data = self._call("GET", path, params={**params, "page": page, "limit": limit})
            items = self._embedded(data, key)
            for item in items:
                yield self._parse(model, item, key)
            links = data.get("_links") if isinstance(data, dict) else None
            if not items or not (isinstance(links, dict) and "next" in links):
                return
            page += 1

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """The decoded JSON of a 2xx answer, ``None`` for 204 or an empty body."""
        used: list[str] = []
        try:
            return self._attempt(method, path, used, params, json)
        except AuthError as exc:
            if exc.status != 401 or not used:
                raise
            self._tokens.on_unauthorized(used[0])
            return self._attempt(method, path, used, params, json)

    def _attempt(
        self,
        method: str,
        path: str,
        used: list[str],
        params: Mapping[str, Any] | None,
        json: Any,
    ) -> Any:
        """One request; ``used`` collects the tokens sent.

        The token is fetched before the wait for the rate budget (a refresh, which may take a
        while, happens before we hold a turn: requests that waited for it would otherwise go
        out together and exceed the limit) and read again after it (a refresh by another worker
        during the wait is seen, so a replaced token is not sent).
        """
        self._tokens.access_token()
        if self._pacer is not None:
            self._pacer.acquire(max_wait=self._max_wait)
        token = self._tokens.access_token()
        if used and token == used[0]:
            raise AuthError(
                f"amocrm {method} {path}: the token was refused and no newer one is available",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
                status=401,
            )
        used.append(token)
        request = self._http.build_request(
            method,
            path,
            params=dict(params) if params else None,
            json=json,
            headers={"Authorization": f"Bearer {token}"},
        )
        problem = _ProblemReader()
        try:
            response = send(self._http, self._endpoint, request, detail=problem)
        except RateLimitedError as exc:
            if exc.retry_after is None:
                exc.retry_after = problem.retry_after
            if self._pacer is not None:
                self._pacer.penalize(exc.retry_after)
            raise
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnavailableError(
                f"amocrm {method} {path} answered {response.status_code} with a body that is not JSON",
                platform=self._endpoint.platform,
                account=self._endpoint.account,
                status=response.status_code,
                request_id=response.headers.get("X-Request-Id"),
            ) from None

    def _embedded(self, data: Any, key: str) -> list[Any]:
        if data is None:
            return []
        embedded = data.get("_embedded") if isinstance(data, dict) else None
        items = embedded.get(key, []) if isinstance(embedded, dict) else None
        if not isinstance(items, list):
            raise self._malformed(key, f"expected _embedded.{key} to be a list")
        return items

    def _parse(self, model: type[M], data: Any, what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(item)'}: {e['type']}"
                for e in exc.errors()[:5]
            )
            raise self._malformed(what, problems) from None

    def _malformed(self, what: str, problem: str) -> MalformedInputError:
        return MalformedInputError(
            f"amocrm {what} not understood: {problem}",
            platform=self._endpoint.platform,
            account=self._endpoint.account,
        )


def _wire(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [item.to_wire() if hasattr(item, "to_wire") else dict(item) for item in items]


def _check_batch(items: Sequence[object], what: str) -> None:
    if len(items) > MAX_BATCH:
        raise ValueError(f"{what} takes at most {MAX_BATCH} items per call, got {len(items)}")


def _since(when: datetime | None) -> dict[str, int]:
    if when is None:
        return {}
    if when.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    return {"filter[updated_at][from]": int(when.timestamp())}
