"""Turning request items into checked plans: what to create or change, or why not.

A plan is only built from an item that passed every check; the store applies plans without
checking again, so a request either applies whole or changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schoolsync.sandbox.amocrm.catalog import Catalog
from schoolsync.sandbox.amocrm.config import UNSORTED_STATUS_TYPE
from schoolsync.sandbox.amocrm.fields import (
    CustomFieldChanges,
    Item,
    custom_fields,
    is_int,
    request_id_of,
)
from schoolsync.sandbox.amocrm.responses import ValidationErrors
from schoolsync.sandbox.amocrm.store import Store

Mode = Literal["add", "update", "complex"]

_LEAD_KEYS = frozenset(
    {
        "name",
        "price",
        "status_id",
        "pipeline_id",
        "responsible_user_id",
        "loss_reason_id",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "closed_at",
        "labor_cost",
        "custom_fields_values",
        "tags_to_add",
        "_embedded",
        "request_id",
    }
)
_LEAD_INTS = (
    "price",
    "responsible_user_id",
    "loss_reason_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closed_at",
    "labor_cost",
)
_CONTACT_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "responsible_user_id",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "custom_fields_values",
        "_embedded",
        "request_id",
    }
)
_NOTE_KEYS = frozenset(
    {
        "entity_id",
        "note_type",
        "params",
        "request_id",
        "created_by",
        "responsible_user_id",
        "created_at",
        "updated_at",
        "is_need_to_trigger_digital_pipeline",
    }
)
NOTE_TYPES = frozenset(
    {
        "common",
        "call_in",
        "call_out",
        "service_message",
        "extended_service_message",
        "message_cashier",
        "geolocation",
        "sms_in",
        "sms_out",
        "attachment",
    }
)
_TASK_KEYS = frozenset(
    {
        "text",
        "complete_till",
        "entity_id",
        "entity_type",
        "task_type_id",
        "responsible_user_id",
        "duration",
        "is_completed",
        "result",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "request_id",
    }
)
TASK_TYPES = {1: "Связаться", 2: "Встреча"}
_TASK_ENTITY_TYPES = frozenset({"leads", "contacts", "companies", "customers"})


@dataclass
class ContactPlan:
    request_id: str
    contact_id: int | None = None
    link_only: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    custom_fields: CustomFieldChanges | None = None
    tags: list[dict[str, Any]] | None = None


@dataclass
class CompanyPlan:
    company_id: int | None = None
    name: str = ""


@dataclass
class LeadPlan:
    request_id: str
    lead_id: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    custom_fields: CustomFieldChanges | None = None
    tags: list[dict[str, Any]] | None = None
    tags_to_add: list[dict[str, Any]] = field(default_factory=list)
    tags_to_delete: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[ContactPlan] = field(default_factory=list)
    companies: list[CompanyPlan] = field(default_factory=list)


@dataclass
class NotePlan:
    request_id: str
    entity_type: str
    entity_id: int
    note_type: str
    params: dict[str, Any]
    values: dict[str, Any]


@dataclass
class TaskPlan:
    request_id: str
    values: dict[str, Any]


class Checker:
    """Checks items against the account setup and the current state (read under the lock)."""

    def __init__(self, catalog: Catalog, store: Store) -> None:
        self.catalog = catalog
        self.store = store
        self.errors = ValidationErrors()

    # leads -------------------------------------------------------------------------------

    def lead(self, raw: object, index: int, mode: Mode) -> LeadPlan | None:
        if not isinstance(raw, dict):
            self.errors.wrong_type(str(index), "", "object")
            return None
        item = Item(raw, request_id_of(raw, index), self.errors)
        item.only((_LEAD_KEYS | {"id", "tags_to_delete"}) if mode == "update" else _LEAD_KEYS)
        plan = LeadPlan(request_id=item.request_id)
        current = None
        if mode == "update":
            plan.lead_id = item.int_("id", required=True)
            current = self.store.leads.get(plan.lead_id) if plan.lead_id is not None else None
            if plan.lead_id is not None and current is None:
                self.errors.bad_choice(item.request_id, "id")
        name = item.str_("name")
        if name is not None:
            plan.values["name"] = name
        for key in _LEAD_INTS:
            value = item.int_(key)
            if value is not None:
                plan.values[key] = value
        self._user(item, plan.values.get("responsible_user_id"))
        self._status(item, plan, current, creating=mode != "update")
        plan.custom_fields = custom_fields(item, self.catalog.lead_fields)
        plan.tags_to_add = self._tags(item, "tags_to_add", "leads")
        if mode == "update":
            plan.tags_to_delete = self._tags(item, "tags_to_delete", "leads")
        embedded = item.child(raw["_embedded"], "_embedded") if item.has("_embedded") else None
        if embedded is not None:
            self._lead_embedded(embedded, plan, mode)
        return plan

    def _status(
        self, item: Item, plan: LeadPlan, current: dict[str, Any] | None, *, creating: bool
    ) -> None:
        pipeline_id = item.int_("pipeline_id")
        status_id = item.int_("status_id")
        rid, catalog = item.request_id, self.catalog
        if pipeline_id is not None and pipeline_id not in catalog.pipelines:
            self.errors.bad_choice(rid, "pipeline_id")
            return
        if status_id is not None:
            if pipeline_id is None:
                preferred = current["pipeline_id"] if current else None
                found = catalog.pipeline_of(status_id, preferred)
                pipeline_id = found.id if found else None
            status = catalog.status(pipeline_id, status_id) if pipeline_id is not None else None
            if status is None:
                self.errors.bad_choice(rid, "status_id")
                return
            if status.type == UNSORTED_STATUS_TYPE:
                # leads reach "unsorted" only through the unsorted API, never by status_id
                self.errors.bad_choice(rid, "status_id")
                return
        elif pipeline_id is not None:
            if creating or current is None or current["pipeline_id"] != pipeline_id:
                status_id = catalog.first_open_status(catalog.pipelines[pipeline_id]).id
        elif creating:
            pipeline_id = catalog.main_pipeline.id
            status_id = catalog.first_open_status(catalog.main_pipeline).id
        if pipeline_id is not None and status_id is not None:
            plan.values["pipeline_id"] = pipeline_id
            plan.values["status_id"] = status_id

    def _lead_embedded(self, embedded: Item, plan: LeadPlan, mode: Mode) -> None:
        allowed = {"tags"}
        if mode != "update":
            allowed |= {"contacts", "companies", "source"}
        if mode == "complex":
            allowed.add("metadata")  # unsorted metadata is accepted and not modelled
        embedded.only(frozenset(allowed))
        rid = embedded.request_id
        if embedded.has("tags"):
            plan.tags = self._tags(embedded, "tags", "leads")
        if embedded.has("source"):
            # the sandbox account has no sources, so any external_id is unknown
            self.errors.bad_choice(rid, embedded.path("source.external_id"))
        contacts = embedded.list_("contacts") or []
        companies = embedded.list_("companies") or []
        if mode == "complex":
            for key, found in (("contacts", contacts), ("companies", companies)):
                if len(found) > 1:
                    self.errors.add(
                        rid,
                        "InvalidCount",
                        embedded.path(key),
                        "This collection should contain 1 element or less.",
                    )
        for i, raw in enumerate(contacts):
            contact = self._embedded_contact(embedded, raw, i, complex_=mode == "complex")
            if contact is not None:
                plan.contacts.append(contact)
        for i, raw in enumerate(companies):
            company = self._embedded_company(embedded, raw, i, complex_=mode == "complex")
            if company is not None:
                plan.companies.append(company)

    def _embedded_contact(
        self, embedded: Item, raw: object, index: int, *, complex_: bool
    ) -> ContactPlan | None:
        item = embedded.child(raw, f"contacts.{index}")
        if item is None:
            return None
        if "id" in item.raw or not complex_:
            contact_id = item.int_("id", required=True)
            if not complex_:
                item.only(frozenset({"id", "is_main"}))
            if contact_id is not None and contact_id not in self.store.contacts:
                self.errors.bad_choice(item.request_id, item.path("id"))
                return None
            return ContactPlan(item.request_id, contact_id=contact_id, link_only=True)
        return self._contact_body(item, ContactPlan(item.request_id), allowed=_CONTACT_KEYS)

    def _embedded_company(
        self, embedded: Item, raw: object, index: int, *, complex_: bool
    ) -> CompanyPlan | None:
        item = embedded.child(raw, f"companies.{index}")
        if item is None:
            return None
        if "id" in item.raw or not complex_:
            company_id = item.int_("id", required=True)
            if company_id is not None and company_id not in self.store.companies:
                self.errors.bad_choice(item.request_id, item.path("id"))
                return None
            return CompanyPlan(company_id=company_id)
        item.only(frozenset({"name"}))
        return CompanyPlan(name=item.str_("name") or "")

    # contacts ----------------------------------------------------------------------------

    def contact(self, raw: object, index: int, mode: Mode) -> ContactPlan | None:
        if not isinstance(raw, dict):
            self.errors.wrong_type(str(index), "", "object")
            return None
        item = Item(raw, request_id_of(raw, index), self.errors)
        plan = ContactPlan(item.request_id)
        allowed = _CONTACT_KEYS
        if mode == "update":
            allowed = allowed | {"id"}
            plan.contact_id = item.int_("id", required=True)
            if plan.contact_id is not None and plan.contact_id not in self.store.contacts:
                self.errors.bad_choice(item.request_id, "id")
        return self._contact_body(item, plan, allowed=allowed)

    def _contact_body(
        self, item: Item, plan: ContactPlan, *, allowed: frozenset[str]
    ) -> ContactPlan:
        item.only(allowed)
        for key in ("name", "first_name", "last_name"):
            text = item.str_(key)
            if text is not None:
                plan.values[key] = text
        for key in ("responsible_user_id", "created_by", "updated_by", "created_at", "updated_at"):
            number = item.int_(key)
            if number is not None:
                plan.values[key] = number
        self._user(item, plan.values.get("responsible_user_id"))
        plan.custom_fields = custom_fields(item, self.catalog.contact_fields)
        if item.has("_embedded"):
            embedded = item.child(item.raw["_embedded"], "_embedded")
            if embedded is not None:
                embedded.only(frozenset({"tags"}))
                plan.tags = self._tags(embedded, "tags", "contacts")
        return plan

    # notes and tasks ---------------------------------------------------------------------

    def note(
        self, raw: object, index: int, entity_type: str, entity_id: int | None
    ) -> NotePlan | None:
        """A note on a lead, contact or company; ``entity_id`` comes from the path if given."""
        if not isinstance(raw, dict):
            self.errors.wrong_type(str(index), "", "object")
            return None
        item = Item(raw, request_id_of(raw, index), self.errors)
        item.only(_NOTE_KEYS)
        given = item.int_("entity_id", required=entity_id is None)
        if entity_id is not None and given is not None and given != entity_id:
            self.errors.bad_choice(item.request_id, "entity_id")
        target = entity_id if entity_id is not None else given
        if target is not None and not self._exists(entity_type, target):
            self.errors.bad_choice(item.request_id, "entity_id")
        note_type = item.str_("note_type", required=True)
        if note_type is not None and note_type not in NOTE_TYPES:
            self.errors.bad_choice(item.request_id, "note_type")
        params = item.object_("params")
        if params is None and "params" not in raw:
            self.errors.missing(item.request_id, "params")
        if note_type == "common" and params is not None:
            Item(params, item.request_id, self.errors, prefix="params.").str_(
                "text", required=True, non_empty=True
            )
        values = {}
        for key in ("created_by", "responsible_user_id", "created_at", "updated_at"):
            value = item.int_(key)
            if value is not None:
                values[key] = value
        self._user(item, values.get("responsible_user_id"))
        if target is None or note_type is None or params is None:
            return None
        return NotePlan(item.request_id, entity_type, target, note_type, params, values)

    def task(self, raw: object, index: int) -> TaskPlan | None:
        if not isinstance(raw, dict):
            self.errors.wrong_type(str(index), "", "object")
            return None
        item = Item(raw, request_id_of(raw, index), self.errors)
        item.only(_TASK_KEYS)
        values: dict[str, Any] = {
            "text": item.str_("text", required=True, non_empty=True),
            "complete_till": item.int_("complete_till", required=True),
        }
        for key in ("responsible_user_id", "duration", "created_by", "updated_by", "created_at"):
            value = item.int_(key)
            if value is not None:
                values[key] = value
        self._user(item, values.get("responsible_user_id"))
        task_type = item.int_("task_type_id")
        if task_type is not None and task_type not in TASK_TYPES:
            self.errors.bad_choice(item.request_id, "task_type_id")
        values["task_type_id"] = task_type or 1
        completed = item.bool_("is_completed")
        values["is_completed"] = bool(completed)
        entity_type = item.str_("entity_type")
        entity_id = item.int_("entity_id")
        if (entity_type is None) != (entity_id is None):
            self.errors.missing(
                item.request_id, "entity_type" if entity_type is None else "entity_id"
            )
        elif entity_type is not None and entity_id is not None:
            if entity_type not in _TASK_ENTITY_TYPES:
                self.errors.bad_choice(item.request_id, "entity_type")
            elif not self._exists(entity_type, entity_id):
                self.errors.bad_choice(item.request_id, "entity_id")
            values["entity_type"], values["entity_id"] = entity_type, entity_id
        result = item.object_("result")
        values["result"] = result or []
        return TaskPlan(item.request_id, values)

    # shared ------------------------------------------------------------------------------

    def _user(self, item: Item, user_id: int | None) -> None:
        if user_id is not None and user_id not in self.catalog.users:
            self.errors.bad_choice(item.request_id, item.path("responsible_user_id"))

    def _exists(self, entity_type: str, entity_id: int) -> bool:
        table = {
            "leads": self.store.leads,
            "contacts": self.store.contacts,
            "companies": self.store.companies,
        }.get(entity_type)
        return table is not None and entity_id in table

    def _tags(self, item: Item, key: str, entity_type: str) -> list[dict[str, Any]]:
        refs = item.list_(key) or []
        out: list[dict[str, Any]] = []
        for i, raw in enumerate(refs):
            ref = item.child(raw, f"{key}.{i}")
            if ref is None:
                continue
            ref.only(frozenset({"id", "name"}))
            tag_id, name = ref.raw.get("id"), ref.raw.get("name")
            if tag_id is not None:
                if not is_int(tag_id) or self.store.find_tag(entity_type, tag_id=tag_id) is None:
                    self.errors.bad_choice(ref.request_id, ref.path("id"))
                    continue
                out.append({"id": tag_id})
            elif isinstance(name, str) and name.strip():
                out.append({"name": name.strip()})
            else:
                self.errors.missing(ref.request_id, ref.path("name"))
        return out
