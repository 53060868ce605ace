"""amoCRM API v4 wire formats: what we read back and what we send.

Read models ignore fields they do not name (the API adds fields over time). Times are Unix
seconds on the wire and timezone-aware UTC ``datetime`` here. Write models refuse unknown
fields (a typo must not silently drop data) and serialise with :meth:`to_wire`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from schoolsync.core.pii import mask_text

WON_STATUS_ID = 142  # "Успешно реализовано", the same in every pipeline
LOST_STATUS_ID = 143  # "Закрыто и не реализовано"

UnixTime = Annotated[AwareDatetime, PlainSerializer(lambda v: int(v.timestamp()), return_type=int)]


class _Wire(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- custom fields -------------------------------------------------------------------------


class FieldValue(_Wire):
    """One value of a custom field; ``enum_code`` is ``WORK``/``MOB``... for phones and emails."""

    value: Any = None
    enum_id: int | None = None
    enum_code: str | None = Field(default=None, validation_alias=AliasChoices("enum_code", "enum"))


class CustomFieldValue(_Wire):
    """``custom_fields_values[i]``: by ``field_id``, or by ``field_code`` for system fields."""

    field_id: int | None = None
    field_code: str | None = None
    field_name: str | None = None
    field_type: str | None = None
    values: list[FieldValue] = []

    @model_validator(mode="after")
    def _named(self) -> CustomFieldValue:
        if self.field_id is None and not self.field_code:
            raise ValueError("a custom field value needs field_id or field_code")
        return self


def text_field(field_id: int, value: str | int | float) -> CustomFieldValue:
    """A single-value custom field, to send."""
    return CustomFieldValue(field_id=field_id, values=[FieldValue(value=value)])


def phone_field(*phones: str, enum_code: str = "WORK") -> CustomFieldValue:
    return CustomFieldValue(
        field_code="PHONE", values=[FieldValue(value=p, enum_code=enum_code) for p in phones]
    )


def email_field(*emails: str, enum_code: str = "WORK") -> CustomFieldValue:
    return CustomFieldValue(
        field_code="EMAIL", values=[FieldValue(value=e, enum_code=enum_code) for e in emails]
    )


def _values(
    fields: list[CustomFieldValue] | None, *, code: str | None = None, field_id: int | None = None
) -> list[str]:
    out: list[str] = []
    for item in fields or []:
        if (code is not None and item.field_code == code) or (
            field_id is not None and item.field_id == field_id
        ):
            out.extend(str(v.value) for v in item.values if v.value not in (None, ""))
    return out


# --- read models ---------------------------------------------------------------------------


class Ref(_Wire):
    """A linked entity in ``_embedded`` (contact, company, lead)."""

    id: int
    is_main: bool | None = None


class Tag(_Wire):
    id: int | None = None
    name: str


class LeadEmbedded(_Wire):
    tags: list[Tag] = []
    contacts: list[Ref] = []
    companies: list[Ref] = []


class Lead(_Wire):
    id: int
    name: str | None = None
    price: int | None = None
    responsible_user_id: int | None = None
    group_id: int | None = None
    status_id: int | None = None
    pipeline_id: int | None = None
    loss_reason_id: int | None = None
    created_by: int | None = None
    updated_by: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    is_deleted: bool = False
    custom_fields_values: list[CustomFieldValue] | None = None
    account_id: int | None = None
    embedded: LeadEmbedded = Field(default_factory=LeadEmbedded, alias="_embedded")

    def field_values(self, field_id: int) -> list[str]:
        """The values of custom field ``field_id``, as text (empty when unset)."""
        return _values(self.custom_fields_values, field_id=field_id)

    @property
    def main_contact_id(self) -> int | None:
        contacts = self.embedded.contacts
        main = next((c for c in contacts if c.is_main), contacts[0] if contacts else None)
        return main.id if main else None


class ContactEmbedded(_Wire):
    tags: list[Tag] = []
    leads: list[Ref] = []
    companies: list[Ref] = []


class Contact(_Wire):
    id: int
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    responsible_user_id: int | None = None
    group_id: int | None = None
    created_by: int | None = None
    updated_by: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    is_deleted: bool = False
    custom_fields_values: list[CustomFieldValue] | None = None
    account_id: int | None = None
    embedded: ContactEmbedded = Field(default_factory=ContactEmbedded, alias="_embedded")

    def emails(self) -> list[str]:
        """Every value of the system EMAIL field, as stored (not normalised)."""
        return _values(self.custom_fields_values, code="EMAIL")

    def phones(self) -> list[str]:
        """Every value of the system PHONE field, as typed by people (not normalised)."""
        return _values(self.custom_fields_values, code="PHONE")

    @property
    def display_name(self) -> str | None:
        """The name as staff see it: ``name``, else last and first name."""
        if self.name:
            return self.name
        return " ".join(p for p in (self.last_name, self.first_name) if p) or None


class Status(_Wire):
    id: int
    name: str
    sort: int | None = None
    pipeline_id: int | None = None
    color: str | None = None
    type: int | None = None  # 1: the "unsorted" first status
    is_editable: bool | None = None


class Pipeline(_Wire):
    id: int
    name: str
    sort: int | None = None
    is_main: bool = False
    is_archive: bool = False
    account_id: int | None = None
    statuses: list[Status] = []  # from _embedded.statuses

    @model_validator(mode="before")
    @classmethod
    def _lift_statuses(cls, data: Any) -> Any:
        if isinstance(data, dict) and "statuses" not in data:
            embedded = data.get("_embedded")
            if isinstance(embedded, dict) and "statuses" in embedded:
                return {**data, "statuses": embedded["statuses"]}
        return data


class User(_Wire):
    id: int
    name: str | None = None
    email: str | None = None
    lang: str | None = None
    rights: dict[str, Any] = {}

    @property
    def is_active(self) -> bool:
        return bool(self.rights.get("is_active", True))

    @property
    def is_admin(self) -> bool:
        return bool(self.rights.get("is_admin", False))


class FieldEnum(_Wire):
    id: int
    value: str | None = None
    sort: int | None = None
    code: str | None = None


class CustomField(_Wire):
    id: int
    name: str
    type: str
    code: str | None = None
    sort: int | None = None
    entity_type: str | None = None
    is_api_only: bool = False
    enums: list[FieldEnum] | None = None


class Created(_Wire):
    """One item of a create/update answer: the entity id and our ``request_id`` echoed back."""

    id: int
    request_id: str | None = None
    entity_id: int | None = None  # notes: the entity the note was added to
    updated_at: datetime | None = None


class ComplexResult(_Wire):
    """One item of a ``/leads/complex`` answer; ``merged`` when duplicate control merged it."""

    id: int
    contact_id: int | None = None
    company_id: int | None = None
    request_id: list[str] = []
    merged: bool = False


# --- write models --------------------------------------------------------------------------


def _tags(names: list[str]) -> list[dict[str, str]]:
    return [{"name": n} for n in names]


class NewContact(_Out):
    """A contact to create (alone, or embedded in a complex lead)."""

    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    responsible_user_id: int | None = None
    created_by: int | None = None
    custom_fields_values: list[CustomFieldValue] | None = None
    tags: list[str] = []
    request_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"tags"})
        if self.tags:
            out["_embedded"] = {"tags": _tags(self.tags)}
        return out


class ComplexLead(_Out):
    """A lead with its contact (new, or an existing one by id) for ``POST /leads/complex``."""

    name: str | None = None
    price: int | None = None
    status_id: int | None = None
    pipeline_id: int | None = None
    responsible_user_id: int | None = None
    created_by: int | None = None  # 0: created by a robot
    created_at: UnixTime | None = None
    custom_fields_values: list[CustomFieldValue] | None = None
    tags: list[str] = []
    contact: NewContact | None = None
    contact_id: int | None = None
    company_name: str | None = None
    request_id: str | None = None

    @model_validator(mode="after")
    def _one_contact(self) -> ComplexLead:
        if self.contact is not None and self.contact_id is not None:
            raise ValueError("give a new contact or an existing contact_id, not both")
        return self

    def to_wire(self) -> dict[str, Any]:
        out = self.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            exclude={"tags", "contact", "contact_id", "company_name"},
        )
        embedded: dict[str, Any] = {}
        if self.contact is not None:
            embedded["contacts"] = [self.contact.to_wire()]
        elif self.contact_id is not None:
            embedded["contacts"] = [{"id": self.contact_id}]
        if self.company_name:
            embedded["companies"] = [{"name": self.company_name}]
        if self.tags:
            embedded["tags"] = _tags(self.tags)
        if embedded:
            out["_embedded"] = embedded
        return out


class NewLead(_Out):
    """A lead to create with ``POST /leads``, linked to existing contacts by id."""

    name: str | None = None
    price: int | None = None
    status_id: int | None = None
    pipeline_id: int | None = None
    responsible_user_id: int | None = None
    created_by: int | None = None
    created_at: UnixTime | None = None
    custom_fields_values: list[CustomFieldValue] | None = None
    tags: list[str] = []
    contact_ids: list[int] = []
    request_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"tags", "contact_ids"}
        )
        embedded: dict[str, Any] = {}
        if self.contact_ids:
            embedded["contacts"] = [{"id": i} for i in self.contact_ids]
        if self.tags:
            embedded["tags"] = _tags(self.tags)
        if embedded:
            out["_embedded"] = embedded
        return out


class LeadUpdate(_Out):
    """A change to an existing lead for ``PATCH /leads``; fields left ``None`` are not sent."""

    id: int
    name: str | None = None
    price: int | None = None
    status_id: int | None = None
    pipeline_id: int | None = None
    responsible_user_id: int | None = None
    loss_reason_id: int | None = None  # only meaningful with status_id 143
    closed_at: UnixTime | None = None
    custom_fields_values: list[CustomFieldValue] | None = None
    tags_to_add: list[str] = []
    request_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"tags_to_add"}
        )
        if self.tags_to_add:
            out["tags_to_add"] = _tags(self.tags_to_add)
        return out


class Note(_Wire):
    """A note as amoCRM lists it (``params.text`` for common notes)."""

    id: int
    entity_id: int
    note_type: str
    params: dict[str, Any] | None = None
    created_at: datetime | None = None

    @property
    def text(self) -> str:
        value = (self.params or {}).get("text")
        return value if isinstance(value, str) else ""


class Task(_Wire):
    """A task as amoCRM lists it."""

    id: int
    text: str = ""
    entity_id: int | None = None
    entity_type: str | None = None
    responsible_user_id: int | None = None
    is_completed: bool = False


class NewNote(_Out):
    """A note on an entity; ``common`` notes carry ``params.text``."""

    entity_id: int
    note_type: str = "common"
    params: dict[str, Any]
    responsible_user_id: int | None = None
    created_by: int | None = None
    request_id: str | None = None

    @classmethod
    def common(cls, entity_id: int, text: str, *, request_id: str | None = None) -> NewNote:
        return cls(entity_id=entity_id, params={"text": text}, request_id=request_id)


class NewTask(_Out):
    """A task, usually on a lead (``entity_type="leads"``), due at ``complete_till``."""

    text: str
    complete_till: UnixTime
    entity_id: int | None = None
    entity_type: str | None = None
    responsible_user_id: int | None = None
    task_type_id: int | None = None  # 1: follow-up, 2: meeting (account task types)
    duration: int | None = None  # seconds
    request_id: str | None = None


# --- errors --------------------------------------------------------------------------------

_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)[?#][^\s\"']*")


class ValidationIssue(_Wire):
    code: str | None = None
    path: str | None = None


class ValidationBatch(_Wire):
    request_id: str | None = None
    errors: list[ValidationIssue] = []


class Problem(_Wire):
    """An ``application/problem+json`` error body.

    ``retry_after`` (seconds) appears in a 429 body; ``validation-errors`` in a 400 lists what
    failed by item (``request_id``), code and path.
    """

    title: str | None = None
    detail: str | None = None
    status: int | None = None
    retry_after: float | None = None
    validation_errors: list[ValidationBatch] = Field(default=[], alias="validation-errors")

    def describe(self, *, limit: int = 5) -> str:
        """A one-line summary safe for logs: titles, codes and paths, never submitted values.

        The free-text ``detail`` is the platform's; URLs in it lose their query strings and any
        personal data in it is masked.
        """
        head = " - ".join(
            mask_text(_URL_QUERY.sub(r"\1?…", part)) for part in (self.title, self.detail) if part
        )
        issues = [
            f"{issue.path or '?'} ({issue.code or 'invalid'})"
            + (f" in item {batch.request_id}" if batch.request_id is not None else "")
            for batch in self.validation_errors
            for issue in batch.errors
        ]
        if len(issues) > limit:
            issues = [*issues[:limit], f"and {len(issues) - limit} more"]
        tail = "invalid: " + ", ".join(issues) if issues else ""
        return "; ".join(part for part in (head, tail) if part)


def parse_problem(body: bytes) -> Problem | None:
    """The problem in an error body, or ``None`` when the body is empty or not a JSON object."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    try:
        return Problem.model_validate(document)
    except ValidationError:
        return None
