"""The account's data in memory: leads, contacts, companies, notes, tasks and tags.

Entities are plain dicts in amoCRM's v4 field names plus a few private keys (``tags``,
``contact_ids``, ``lead_ids``, ``company_ids``, ``searchable_at``) that rendering turns into
``_embedded``. Callers hold :attr:`Store.lock` around a whole request (check, then apply), so a
request is atomic for every other request, whichever thread or task sends it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schoolsync.sandbox.amocrm.catalog import CLOSED_STATUS_IDS, Catalog
from schoolsync.sandbox.amocrm.config import AmoSandboxConfig

if TYPE_CHECKING:
    from schoolsync.sandbox.amocrm.fields import CustomFieldChanges
    from schoolsync.sandbox.amocrm.plans import (
        CompanyPlan,
        ContactPlan,
        LeadPlan,
        NotePlan,
        TaskPlan,
    )

Entity = dict[str, Any]
_NON_DIGITS = re.compile(r"\D")

_FIRST_IDS = {
    "lead": 20_000_001,
    "contact": 30_000_001,
    "company": 40_000_001,
    "note": 50_000_001,
    "task": 60_000_001,
    "tag": 70_000_001,
}


@dataclass(frozen=True)
class StatusChange:
    old_status_id: int
    old_pipeline_id: int


class Store:
    def __init__(self, catalog: Catalog, config: AmoSandboxConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.leads: dict[int, Entity] = {}
            self.contacts: dict[int, Entity] = {}
            self.companies: dict[int, Entity] = {}
            self.notes: dict[int, Entity] = {}
            self.tasks: dict[int, Entity] = {}
            self._tags: dict[str, dict[int, Entity]] = {}
            self._next = dict(_FIRST_IDS)

    def next_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # tags ------------------------------------------------------------------------------

    def find_tag(
        self, entity_type: str, *, tag_id: int | None = None, name: str | None = None
    ) -> Entity | None:
        tags = self._tags.get(entity_type, {})
        if tag_id is not None:
            return tags.get(tag_id)
        wanted = (name or "").lower()
        return next((t for t in tags.values() if t["name"].lower() == wanted), None)

    def _resolve_tags(self, entity_type: str, refs: list[dict[str, Any]]) -> list[Entity]:
        out: list[Entity] = []
        for ref in refs:
            tag = self.find_tag(entity_type, tag_id=ref.get("id"), name=ref.get("name"))
            if tag is None:
                tag = {"id": self.next_id("tag"), "name": ref["name"], "color": None}
                self._tags.setdefault(entity_type, {})[tag["id"]] = tag
            if all(t["id"] != tag["id"] for t in out):
                out.append(tag)
        return out

    # leads -----------------------------------------------------------------------------

    def create_lead(self, plan: LeadPlan, *, now: int, user_id: int) -> Entity:
        lead_id = self.next_id("lead")
        values = plan.values
        lead: Entity = {
            "id": lead_id,
            "name": values.get("name", f"Сделка #{lead_id}"),
            "price": values.get("price", 0),
            "responsible_user_id": values.get("responsible_user_id", user_id),
            "group_id": 0,
            "status_id": values["status_id"],
            "pipeline_id": values["pipeline_id"],
            "loss_reason_id": values.get("loss_reason_id"),
            "created_by": values.get("created_by", user_id),
            "updated_by": values.get("updated_by", user_id),
            "created_at": values.get("created_at", now),
            "updated_at": values.get("updated_at", now),
            "closed_at": values.get("closed_at"),
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": None,
            "score": None,
            "account_id": self.config.account_id,
            "labor_cost": values.get("labor_cost"),
            "tags": self._resolve_tags("leads", [*(plan.tags or []), *plan.tags_to_add]),
            "contact_ids": [],
            "company_ids": [],
        }
        if lead["status_id"] in CLOSED_STATUS_IDS and lead["closed_at"] is None:
            lead["closed_at"] = now
        _apply_custom_fields(lead, plan.custom_fields)
        self._searchable(lead)
        self.leads[lead_id] = lead
        return lead

    def update_lead(
        self, lead: Entity, plan: LeadPlan, *, now: int, user_id: int
    ) -> StatusChange | None:
        values = dict(plan.values)
        change = None
        status_id = values.pop("status_id", lead["status_id"])
        pipeline_id = values.pop("pipeline_id", lead["pipeline_id"])
        if (status_id, pipeline_id) != (lead["status_id"], lead["pipeline_id"]):
            change = self._move(lead, pipeline_id, status_id, now=now)
        lead.update(values)
        if plan.tags is not None:
            lead["tags"] = self._resolve_tags("leads", plan.tags)
        if plan.tags_to_add:
            lead["tags"] = self._resolve_tags("leads", [*lead["tags"], *plan.tags_to_add])
        if plan.tags_to_delete:
            gone = {t["id"] for t in self._resolve_tags("leads", plan.tags_to_delete)}
            lead["tags"] = [t for t in lead["tags"] if t["id"] not in gone]
        _apply_custom_fields(lead, plan.custom_fields)
        lead["updated_at"] = values.get("updated_at", now)
        lead["updated_by"] = values.get("updated_by", user_id)
        self._searchable(lead)
        return change

    def move_lead(
        self, lead: Entity, *, pipeline_id: int, status_id: int, now: int, user_id: int
    ) -> StatusChange | None:
        """A manager drags the lead to another stage."""
        if (status_id, pipeline_id) == (lead["status_id"], lead["pipeline_id"]):
            return None
        change = self._move(lead, pipeline_id, status_id, now=now)
        lead["updated_at"], lead["updated_by"] = now, user_id
        return change

    def _move(self, lead: Entity, pipeline_id: int, status_id: int, *, now: int) -> StatusChange:
        change = StatusChange(lead["status_id"], lead["pipeline_id"])
        lead["status_id"], lead["pipeline_id"] = status_id, pipeline_id
        if status_id in CLOSED_STATUS_IDS:
            lead["closed_at"] = lead["closed_at"] or now
        else:
            lead["closed_at"] = None
        return change

    # contacts and companies ------------------------------------------------------------

    def create_contact(self, plan: ContactPlan, *, now: int, user_id: int) -> Entity:
        values = plan.values
        first, last = values.get("first_name", ""), values.get("last_name", "")
        contact: Entity = {
            "id": self.next_id("contact"),
            "name": values.get("name") or " ".join(p for p in (first, last) if p),
            "first_name": first,
            "last_name": last,
            "responsible_user_id": values.get("responsible_user_id", user_id),
            "group_id": 0,
            "created_by": values.get("created_by", user_id),
            "updated_by": values.get("updated_by", user_id),
            "created_at": values.get("created_at", now),
            "updated_at": values.get("updated_at", now),
            "closest_task_at": None,
            "is_deleted": False,
            "is_unsorted": False,
            "custom_fields_values": None,
            "account_id": self.config.account_id,
            "tags": self._resolve_tags("contacts", plan.tags or []),
            "lead_ids": [],
            "company_ids": [],
        }
        _apply_custom_fields(contact, plan.custom_fields)
        self._searchable(contact)
        self.contacts[contact["id"]] = contact
        return contact

    def update_contact(self, contact: Entity, plan: ContactPlan, *, now: int, user_id: int) -> None:
        contact.update(plan.values)
        if "name" not in plan.values and {"first_name", "last_name"} & plan.values.keys():
            parts = (contact["first_name"], contact["last_name"])
            contact["name"] = " ".join(p for p in parts if p)
        if plan.tags is not None:
            contact["tags"] = self._resolve_tags("contacts", plan.tags)
        _apply_custom_fields(contact, plan.custom_fields)
        contact["updated_at"] = plan.values.get("updated_at", now)
        contact["updated_by"] = plan.values.get("updated_by", user_id)
        self._searchable(contact)

    def create_company(self, plan: CompanyPlan, *, now: int, user_id: int) -> Entity:
        company: Entity = {
            "id": self.next_id("company"),
            "name": plan.name,
            "responsible_user_id": user_id,
            "group_id": 0,
            "created_by": user_id,
            "updated_by": user_id,
            "created_at": now,
            "updated_at": now,
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": None,
            "account_id": self.config.account_id,
            "tags": [],
            "lead_ids": [],
            "contact_ids": [],
        }
        self.companies[company["id"]] = company
        return company

    def link_contact(self, lead: Entity, contact: Entity) -> None:
        if contact["id"] not in lead["contact_ids"]:
            lead["contact_ids"].append(contact["id"])
        if lead["id"] not in contact["lead_ids"]:
            contact["lead_ids"].append(lead["id"])

    def link_company(self, company: Entity, *, lead: Entity | None, contact: Entity | None) -> None:
        for other, key in ((lead, "lead_ids"), (contact, "contact_ids")):
            if other is not None:
                if company["id"] not in other["company_ids"]:
                    other["company_ids"].append(company["id"])
                if other["id"] not in company[key]:
                    company[key].append(other["id"])

    # notes and tasks -------------------------------------------------------------------

    def create_note(self, plan: NotePlan, *, now: int, user_id: int) -> Entity:
        values = plan.values
        note: Entity = {
            "id": self.next_id("note"),
            "entity_id": plan.entity_id,
            "entity_type": plan.entity_type,
            "created_by": values.get("created_by", user_id),
            "updated_by": values.get("created_by", user_id),
            "created_at": values.get("created_at", now),
            "updated_at": values.get("updated_at", now),
            "responsible_user_id": values.get("responsible_user_id", user_id),
            "group_id": 0,
            "note_type": plan.note_type,
            "params": plan.params,
            "account_id": self.config.account_id,
        }
        self.notes[note["id"]] = note
        return note

    def create_task(self, plan: TaskPlan, *, now: int, user_id: int) -> Entity:
        values = plan.values
        task: Entity = {
            "id": self.next_id("task"),
            "created_by": values.get("created_by", user_id),
            "updated_by": values.get("updated_by", user_id),
            "created_at": values.get("created_at", now),
            "updated_at": now,
            "responsible_user_id": values.get("responsible_user_id", user_id),
            "group_id": 0,
            "entity_id": values.get("entity_id"),
            "entity_type": values.get("entity_type"),
            "duration": values.get("duration", 0),
            "is_completed": values["is_completed"],
            "task_type_id": values["task_type_id"],
            "text": values["text"],
            "result": values["result"],
            "complete_till": values["complete_till"],
            "account_id": self.config.account_id,
        }
        self.tasks[task["id"]] = task
        if task["entity_type"] == "leads" and not task["is_completed"]:
            lead = self.leads[task["entity_id"]]
            closest = lead["closest_task_at"]
            lead["closest_task_at"] = min(closest or task["complete_till"], task["complete_till"])
        return task

    def _searchable(self, entity: Entity) -> None:
        """(Re)indexes what ``query=`` searches: names and custom field values, lowercased, and
        phone numbers as digits."""
        texts = [str(entity[k]) for k in ("name", "first_name", "last_name") if entity.get(k)]
        phones = []
        for entry in entity["custom_fields_values"] or []:
            for value in entry["values"]:
                texts.append(str(value.get("value", "")))
                if entry["field_code"] == "PHONE":
                    phones.append(_NON_DIGITS.sub("", str(value.get("value", ""))))
        entity["search_text"] = "\x00".join(texts).lower()
        entity["phone_digits"] = phones
        entity["searchable_at"] = time.time() + self.config.search_index_delay_s


def _apply_custom_fields(entity: Entity, changes: CustomFieldChanges | None) -> None:
    """Values given for a field replace that field's values; ``null`` clears the field."""
    if changes is None:
        return
    current = {entry["field_id"]: entry for entry in entity["custom_fields_values"] or []}
    for field, values in changes:
        current.pop(field.id, None)
        if values:
            current[field.id] = {
                "field_id": field.id,
                "field_name": field.name,
                "field_code": field.code,
                "field_type": field.type,
                "values": values,
            }
    entity["custom_fields_values"] = list(current.values()) or None
