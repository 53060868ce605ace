"""amoCRM account webhooks: verify by a secret in the URL, parse the PHP-style form body.

amoCRM signs nothing. A webhook is accepted when its URL carries one of our random secrets
(``/webhooks/amocrm?secret=...``, compared in constant time), each secret standing for one
school's account, and when the ``account[subdomain]``/``account[id]`` in the body match that
account where we know them. The worker still re-fetches the lead before acting on it.

The body is ``application/x-www-form-urlencoded`` with PHP bracket keys
(``leads[status][0][status_id]=142``) and the legacy v2 field names (``last_modified``,
``date_create``, ``custom_fields``)::

    leads[status][0][id]=...&leads[status][0][status_id]=142&...&account[subdomain]=school

It becomes a nested dict (lists where the keys are 0..n-1), then typed events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.core.errors import MalformedInputError, VerificationError

PLATFORM = "amocrm"
ENTITIES = frozenset({"leads", "contacts", "companies", "customers", "task", "tasks", "catalogs"})
LEAD_ACTIONS = frozenset({"add", "update", "status", "delete", "restore", "responsible"})
MAX_FIELDS = 10_000

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_SAFE_KEY = re.compile(r"^[\w\[\]-]{1,100}$")

E = TypeVar("E", bound=BaseModel)


def _malformed(message: str) -> MalformedInputError:
    return MalformedInputError(message, platform=PLATFORM)


def _show(key: str) -> str:
    """A key for an error message: keys are structure, but a garbage body may put data in them."""
    return repr(key) if _SAFE_KEY.match(key) else "a key"


# --- form body -> nested dict ----------------------------------------------------------------


def parse_form(body: bytes) -> dict[str, Any]:
    """Decode a PHP-style form body into nested dicts, with lists where keys are 0..n-1.

    Raises:
        MalformedInputError: not UTF-8, not form-urlencoded, or keys that contradict each other.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("webhook body is not UTF-8 text") from None
    if not text.strip():
        raise _malformed("webhook body is empty")
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FIELDS
        )
    except ValueError:
        # the exception text quotes the offending field, which may be personal data
        raise _malformed("webhook body is not form-urlencoded") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        _insert(root, _key_path(key), value, key)
    return _listify(root)  # type: ignore[no-any-return]


def _key_path(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        raise _malformed(f"webhook body has a malformed key: {_show(key)}")
    return [match.group(1), *_PART.findall(match.group(2))]


def _insert(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node = root
    for depth, part in enumerate(path):
        if part == "":
            part = str(len(node))  # PHP's key[] appends
        last = depth == len(path) - 1
        if last:
            if isinstance(node.get(part), dict):
                raise _malformed(f"webhook key {_show(key)} is both a value and a group")
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise _malformed(f"webhook key {_show(key)} is both a value and a group")
        node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and set(items) == {str(i) for i in range(len(items))}:
        return [items[str(i)] for i in range(len(items))]
    return items


# --- typed events ----------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if v == "" else v) for k, v in data.items()}
        return data


class WebhookFieldValue(_Event):
    value: str | None = None
    enum: int | None = None  # the enum id (select, multiselect)


class WebhookCustomField(_Event):
    id: int
    name: str | None = None
    code: str | None = None
    values: list[WebhookFieldValue] = []

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        # date fields arrive as values[0]=<unix ts>, without a [value] key
        return [v if isinstance(v, dict) else {"value": v} for v in _as_list(value)]


class LeadEvent(_Event):
    """A change to a lead, in the legacy v2 field names amoCRM webhooks still use."""

    action: str  # add | update | status | delete | restore | responsible
    id: int
    name: str | None = None
    status_id: int | None = None
    old_status_id: int | None = None
    pipeline_id: int | None = None
    old_pipeline_id: int | None = None
    price: int | None = None
    responsible_user_id: int | None = None
    old_responsible_user_id: int | None = None
    last_modified: datetime | None = None
    date_create: datetime | None = None
    created_user_id: int | None = None
    modified_user_id: int | None = None
    account_id: int | None = None
    tags: list[str] = []
    custom_fields: list[WebhookCustomField] = []

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        return [t.get("name", "") if isinstance(t, dict) else t for t in _as_list(value)]

    @field_validator("custom_fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        return _as_list(value)

    @property
    def entity(self) -> str:
        return "leads"


class EntityEvent(_Event):
    """A change to something other than a lead (contact, company, task...) or a lead note."""

    entity: str
    action: str
    id: int | None = None
    last_modified: datetime | None = None


class AccountRef(_Event):
    subdomain: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class WebhookBody:
    account: AccountRef
    events: list[LeadEvent | EntityEvent] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [
            value[k]
            for k in sorted(value, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        ]
    return [value]


def parse(body: bytes) -> WebhookBody:
    """Typed events of a webhook body.

    Raises:
        MalformedInputError: naming the problem and where it is (never a value).
    """
    document = parse_form(body)
    events: list[LeadEvent | EntityEvent] = []
    for entity in sorted(set(document) & ENTITIES):
        actions = document[entity]
        if not isinstance(actions, dict):
            raise _malformed(f"webhook {entity} block is not a group of actions")
        for action, items in actions.items():
            for index, item in enumerate(_as_list(items)):
                where = f"{entity}[{action}][{index}]"
                if not isinstance(item, dict):
                    raise _malformed(f"webhook {where} is not a group of fields")
                events.append(_event(entity, action, item, where))
    if not events:
        raise _malformed("webhook body has no lead, contact, company, customer or task events")
    account = document.get("account", {})
    if not isinstance(account, dict):
        raise _malformed("webhook account block is not a group of fields")
    return WebhookBody(account=_validate(AccountRef, account, "account"), events=events)


def _event(entity: str, action: str, item: dict[str, Any], where: str) -> LeadEvent | EntityEvent:
    if entity == "leads" and action in LEAD_ACTIONS:
        return _validate(LeadEvent, {**item, "action": action}, where)
    found = item.get(action)
    nested: dict[str, Any] = found if isinstance(found, dict) else {}
    return _validate(
        EntityEvent,
        {
            "entity": entity,
            "action": action,
            "id": item.get("id", nested.get("id")),
            "last_modified": item.get("last_modified", nested.get("last_modified")),
        },
        where,
    )


def _validate(model: type[E], data: dict[str, Any], where: str) -> E:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}{''.join(f'[{p}]' for p in e['loc'])}: {e['type']}" for e in exc.errors()[:5]
        )
        raise _malformed(f"webhook fields not understood: {problems}") from None


def dedup_key(body: WebhookBody, raw: bytes, *, account: str = "") -> str:
    """A stable identity of the change: entity ids, status and modification time of every event.

    Deliveries of the same change (retries, or an ``update`` and a ``status`` hook for one
    move) get the same key. Events without an id make the raw body the identity.
    """
    if any(event.id is None for event in body.events):
        digest = hashlib.sha256(raw).hexdigest()
        return f"amocrm:raw:{digest}"
    identity = sorted(
        {
            (
                event.entity,
                event.id or 0,
                getattr(event, "status_id", None) or 0,
                int(event.last_modified.timestamp()) if event.last_modified else 0,
            )
            for event in body.events
        }
    )
    payload = json.dumps([account, identity], separators=(",", ":"))
    return f"amocrm:{hashlib.sha256(payload.encode()).hexdigest()}"


# --- the inbound source ----------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRoute:
    """What one URL secret stands for: a school's amoCRM account."""

    school: str
    account: str  # our name for the account
    subdomain: str | None = None  # checked against account[subdomain] when set
    account_id: int | None = None  # checked against account[id] when set


class AmoCrmWebhook:
    """``POST /webhooks/amocrm?secret=...``; one secret per connected account."""

    name = "amocrm"

    def __init__(self, routes: Mapping[str, WebhookRoute | str]) -> None:
        """``routes`` maps each URL secret to its account, or just to a school id (then the
        body's account is not checked)."""
        if any(not secret for secret in routes):
            raise ValueError("an amoCRM webhook secret is empty")
        self._routes = [
            (secret.encode(), WebhookRoute(school=r, account="") if isinstance(r, str) else r)
            for secret, r in routes.items()
        ]

    def route(self, query: str) -> WebhookRoute:
        """The account a request's query string is for; ``VerificationError`` if none."""
        given = parse_qs(query, keep_blank_values=True).get("secret", [])
        if len(given) != 1 or not given[0]:
            raise VerificationError("webhook URL carries no secret", platform=PLATFORM)
        candidate = given[0].encode()
        found: WebhookRoute | None = None
        for secret, route in self._routes:  # every one, so timing says nothing about which
            if hmac.compare_digest(candidate, secret):
                found = route
        if found is None:
            raise VerificationError("webhook secret matches no amoCRM account", platform=PLATFORM)
        return found

    def accept(self, request: RawRequest) -> AcceptedEvent:
        route = self.route(request.query)
        body = parse(request.body)
        _check_account(route, body.account)
        return AcceptedEvent(
            dedup_key=dedup_key(body, request.body, account=route.account), school=route.school
        )


def _check_account(route: WebhookRoute, account: AccountRef) -> None:
    if route.subdomain is not None and account.subdomain != route.subdomain:
        raise VerificationError(
            f"webhook is not from the amoCRM account {route.account!r} (subdomain differs)",
            platform=PLATFORM,
            account=route.account,
        )
    if route.account_id is not None and account.id != route.account_id:
        raise VerificationError(
            f"webhook is not from the amoCRM account {route.account!r} (account id differs)",
            platform=PLATFORM,
            account=route.account,
        )
