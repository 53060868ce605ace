"""Checking request items field by field, the way amoCRM's validator reports them.

Every problem goes into :class:`ValidationErrors` with the item's ``request_id`` and a dotted
path (``custom_fields_values.0.field_id``); a request with any problem is refused whole.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from schoolsync.sandbox.amocrm.catalog import FieldSet
from schoolsync.sandbox.amocrm.config import AmoField
from schoolsync.sandbox.amocrm.responses import ValidationErrors

MAX_CUSTOM_FIELD_VALUES = 40  # per entity (Kommo complex-leads docs)
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

CustomFieldChanges = list[tuple[AmoField, list[dict[str, Any]] | None]]


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class Item:
    """One object of a request body, with typed getters that record what is wrong."""

    def __init__(
        self, raw: dict[str, Any], request_id: str, errors: ValidationErrors, prefix: str = ""
    ) -> None:
        self.raw = raw
        self.request_id = request_id
        self.errors = errors
        self.prefix = prefix

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def only(self, allowed: frozenset[str]) -> None:
        for key in self.raw:
            if key not in allowed:
                self.errors.unexpected(self.request_id, self.path(key))

    def has(self, key: str) -> bool:
        return key in self.raw

    def int_(self, key: str, *, required: bool = False) -> int | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors.missing(self.request_id, self.path(key))
            return None
        if not is_int(value):
            self.errors.wrong_type(self.request_id, self.path(key), "int")
            return None
        return value

    def str_(self, key: str, *, required: bool = False, non_empty: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors.missing(self.request_id, self.path(key))
            return None
        if not isinstance(value, str):
            self.errors.wrong_type(self.request_id, self.path(key), "string")
            return None
        if non_empty and not value.strip():
            self.errors.add(
                self.request_id, "NotBlank", self.path(key), "This value should not be blank."
            )
            return None
        return value

    def bool_(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.errors.wrong_type(self.request_id, self.path(key), "bool")
            return None
        return value

    def list_(self, key: str) -> list[Any] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.errors.wrong_type(self.request_id, self.path(key), "array")
            return None
        return value

    def object_(self, key: str) -> dict[str, Any] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.errors.wrong_type(self.request_id, self.path(key), "object")
            return None
        return value

    def child(self, raw: object, path: str) -> Item | None:
        if not isinstance(raw, dict):
            self.errors.wrong_type(self.request_id, self.path(path), "object")
            return None
        return Item(raw, self.request_id, self.errors, prefix=f"{self.path(path)}.")


def request_id_of(raw: dict[str, Any], index: int) -> str:
    value = raw.get("request_id")
    if isinstance(value, str) or is_int(value):
        return str(value)
    return str(index)


def custom_fields(item: Item, fields: FieldSet) -> CustomFieldChanges | None:
    """``custom_fields_values``: each entry names a field by ``field_id`` or ``field_code``;
    ``values: null`` clears the field."""
    raw = item.list_("custom_fields_values")
    if raw is None:
        return None
    changes: CustomFieldChanges = []
    count = 0
    for i, entry_raw in enumerate(raw):
        entry = item.child(entry_raw, f"custom_fields_values.{i}")
        if entry is None:
            continue
        entry.only(frozenset({"field_id", "field_code", "field_name", "field_type", "values"}))
        field = _field_of(entry, fields)
        if field is None:
            continue
        if "values" not in entry.raw:
            entry.errors.missing(entry.request_id, entry.path("values"))
            continue
        values = entry.list_("values")
        if values is None:
            changes.append((field, None))
            continue
        parsed = []
        for j, value_raw in enumerate(values):
            value = _value(entry, field, value_raw, f"values.{j}")
            if value is not None:
                parsed.append(value)
        count += len(parsed)
        changes.append((field, parsed or None))
    if count > MAX_CUSTOM_FIELD_VALUES:
        item.errors.add(
            item.request_id,
            "InvalidCount",
            item.path("custom_fields_values"),
            f"This collection should contain {MAX_CUSTOM_FIELD_VALUES} elements or less.",
        )
    return changes


def _field_of(entry: Item, fields: FieldSet) -> AmoField | None:
    field_id = entry.raw.get("field_id")
    if field_id is not None:
        if not is_int(field_id):
            entry.errors.wrong_type(entry.request_id, entry.path("field_id"), "int")
            return None
        found = fields.by_id.get(field_id)
        if found is None:
            entry.errors.bad_choice(entry.request_id, entry.path("field_id"))
        return found
    code = entry.str_("field_code")
    if code is None:
        if "field_code" not in entry.raw:
            entry.errors.missing(entry.request_id, entry.path("field_id"))
        return None
    found = fields.by_code.get(code)
    if found is None:
        entry.errors.bad_choice(entry.request_id, entry.path("field_code"))
    return found


def _value(entry: Item, field: AmoField, raw: object, path: str) -> dict[str, Any] | None:
    value_item = entry.child(raw, path)
    if value_item is None:
        return None
    value_item.only(frozenset({"value", "enum_id", "enum_code"}))
    value = value_item.raw.get("value")
    rid, errors, value_path = value_item.request_id, value_item.errors, value_item.path("value")
    kind = field.type
    if kind in ("multitext", "select", "multiselect", "radiobutton"):
        return _enum_value(value_item, field)
    if value is None:
        errors.missing(rid, value_path)
        return None
    if kind in ("text", "textarea"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors.wrong_type(rid, value_path, "string")
            return None
        return {"value": str(value)}
    if kind == "url":
        if not isinstance(value, str) or not _URL.match(value):
            errors.add(rid, "InvalidUrl", value_path, "This value is not a valid URL.")
            return None
        return {"value": value}
    if kind == "numeric":
        if (
            is_int(value)
            or isinstance(value, float)
            or (isinstance(value, str) and _NUMBER.match(value))
        ):
            return {"value": str(value)}
        errors.wrong_type(rid, value_path, "numeric")
        return None
    if kind == "checkbox":
        if not isinstance(value, bool):
            errors.wrong_type(rid, value_path, "bool")
            return None
        return {"value": value}
    if kind in ("date", "date_time", "birthday"):
        if not is_int(value):
            errors.wrong_type(rid, value_path, "int")
            return None
        return {"value": value}
    return {"value": value}


def _enum_value(item: Item, field: AmoField) -> dict[str, Any] | None:
    rid, errors = item.request_id, item.errors
    enum_id, enum_code, value = (item.raw.get(k) for k in ("enum_id", "enum_code", "value"))
    chosen = None
    if enum_id is not None:
        chosen = next((e for e in field.enums if e.id == enum_id), None)
        if chosen is None:
            errors.bad_choice(rid, item.path("enum_id"))
            return None
    elif enum_code is not None:
        chosen = next((e for e in field.enums if e.value == enum_code), None)
        if chosen is None:
            errors.bad_choice(rid, item.path("enum_code"))
            return None
    if field.type == "multitext":
        if value is None:
            errors.missing(rid, item.path("value"))
            return None
        if not isinstance(value, str):
            errors.wrong_type(rid, item.path("value"), "string")
            return None
        chosen = chosen or (field.enums[0] if field.enums else None)
        if chosen is None:
            return {"value": value}
        return {"value": value, "enum_id": chosen.id, "enum_code": chosen.value}
    if chosen is None and value is not None:
        chosen = next((e for e in field.enums if e.value == value), None)
    if chosen is None:
        errors.bad_choice(rid, item.path("enum_id"))
        return None
    return {"value": chosen.value, "enum_id": chosen.id}
