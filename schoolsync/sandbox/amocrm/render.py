"""Entities as API v4 returns them: fields, ``_links.self`` and ``_embedded``.

Shapes follow the response examples of the amoCRM v4 docs (leads-api, contacts-api,
leads_pipelines, users-api, custom-fields, account-info, notes, tasks-api).
"""

from __future__ import annotations

from typing import Any

from schoolsync.sandbox.amocrm.catalog import Catalog
from schoolsync.sandbox.amocrm.config import AmoField, AmoPipeline, AmoStatus, AmoUser
from schoolsync.sandbox.amocrm.store import Entity

_LEAD_KEYS = (
    "id",
    "name",
    "price",
    "responsible_user_id",
    "group_id",
    "status_id",
    "pipeline_id",
    "loss_reason_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closed_at",
    "closest_task_at",
    "is_deleted",
    "custom_fields_values",
    "score",
    "account_id",
    "labor_cost",
)
_CONTACT_KEYS = (
    "id",
    "name",
    "first_name",
    "last_name",
    "responsible_user_id",
    "group_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closest_task_at",
    "is_deleted",
    "is_unsorted",
    "custom_fields_values",
    "account_id",
)
_COMPANY_KEYS = (
    "id",
    "name",
    "responsible_user_id",
    "group_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closest_task_at",
    "is_deleted",
    "custom_fields_values",
    "account_id",
)


def link(base: str, path: str) -> dict[str, dict[str, str]]:
    return {"self": {"href": f"{base}{path}"}}


def _ref(base: str, kind: str, entity_id: int) -> dict[str, Any]:
    return {"id": entity_id, "_links": link(base, f"/api/v4/{kind}/{entity_id}")}


def _tags(entity: Entity) -> list[dict[str, Any]]:
    return [{"id": t["id"], "name": t["name"], "color": t["color"]} for t in entity["tags"]]


def lead(entity: Entity, base: str, *, with_contacts: bool = False) -> dict[str, Any]:
    out = {key: entity[key] for key in _LEAD_KEYS}
    out["_links"] = link(base, f"/api/v4/leads/{entity['id']}")
    embedded: dict[str, Any] = {
        "tags": _tags(entity),
        "companies": [_ref(base, "companies", cid) for cid in entity["company_ids"]],
    }
    if with_contacts:
        embedded["contacts"] = [
            {**_ref(base, "contacts", cid), "is_main": i == 0}
            for i, cid in enumerate(entity["contact_ids"])
        ]
    out["_embedded"] = embedded
    return out


def contact(entity: Entity, base: str, *, with_leads: bool = False) -> dict[str, Any]:
    out = {key: entity[key] for key in _CONTACT_KEYS}
    out["_links"] = link(base, f"/api/v4/contacts/{entity['id']}")
    embedded: dict[str, Any] = {
        "tags": _tags(entity),
        "companies": [_ref(base, "companies", cid) for cid in entity["company_ids"]],
    }
    if with_leads:
        embedded["leads"] = [_ref(base, "leads", lid) for lid in entity["lead_ids"]]
    out["_embedded"] = embedded
    return out


def company(entity: Entity, base: str) -> dict[str, Any]:
    out = {key: entity[key] for key in _COMPANY_KEYS}
    out["_links"] = link(base, f"/api/v4/companies/{entity['id']}")
    out["_embedded"] = {"tags": _tags(entity)}
    return out


def note(entity: Entity, base: str) -> dict[str, Any]:
    out = {k: v for k, v in entity.items() if k != "entity_type"}
    out["_links"] = link(base, f"/api/v4/{entity['entity_type']}/notes/{entity['id']}")
    return out


def task(entity: Entity, base: str) -> dict[str, Any]:
    return {**entity, "_links": link(base, f"/api/v4/tasks/{entity['id']}")}


def status(value: AmoStatus, pipeline: AmoPipeline, base: str, account_id: int) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "sort": value.sort,
        "is_editable": value.type == 0 and value.id not in (142, 143),
        "pipeline_id": pipeline.id,
        "color": value.color,
        "type": value.type,
        "account_id": account_id,
        "_links": link(base, f"/api/v4/leads/pipelines/{pipeline.id}/statuses/{value.id}"),
    }


def pipeline(value: AmoPipeline, base: str, account_id: int) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "sort": value.sort,
        "is_main": value.is_main,
        "is_unsorted_on": any(s.type == 1 for s in value.statuses),
        "is_archive": False,
        "account_id": account_id,
        "_links": link(base, f"/api/v4/leads/pipelines/{value.id}"),
        "_embedded": {
            "statuses": [
                status(s, value, base, account_id)
                for s in sorted(value.statuses, key=lambda s: s.sort)
            ]
        },
    }


def user(value: AmoUser, base: str) -> dict[str, Any]:
    rights = "A" if value.is_admin else "M"
    entity_rights = {k: rights for k in ("view", "edit", "add", "delete", "export")}
    return {
        "id": value.id,
        "name": value.name,
        "email": value.email,
        "lang": "ru",
        "rights": {
            "leads": entity_rights,
            "contacts": entity_rights,
            "companies": entity_rights,
            "tasks": {"edit": "A", "delete": "A"},
            "mail_access": value.is_admin,
            "catalog_access": value.is_admin,
            "status_rights": None,
            "is_admin": value.is_admin,
            "is_free": False,
            "is_active": True,
            "group_id": None,
            "role_id": None,
        },
        "_links": link(base, f"/api/v4/users/{value.id}"),
    }


def custom_field(value: AmoField, entity_type: str, base: str, account_id: int) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "type": value.type,
        "account_id": account_id,
        "code": value.code,
        "sort": value.sort,
        "is_api_only": False,
        "enums": [{"id": e.id, "value": e.value, "sort": e.sort} for e in value.enums] or None,
        "group_id": None,
        "required_statuses": [],
        "is_deletable": value.code is None,
        "is_predefined": value.code is not None,
        "entity_type": entity_type,
        "remind": None,
        "_links": link(base, f"/api/v4/{entity_type}/custom_fields/{value.id}"),
    }


def account(catalog: Catalog, subdomain: str, account_id: int, base: str) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": subdomain,
        "subdomain": subdomain,
        "created_at": 1585840134,
        "created_by": catalog.api_user.id,
        "updated_at": 1585840134,
        "updated_by": catalog.api_user.id,
        "current_user_id": catalog.api_user.id,
        "country": "RU",
        "currency": "RUB",
        "currency_symbol": "₽",
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "_links": link(base, "/api/v4/account"),
    }
