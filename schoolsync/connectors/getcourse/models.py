"""GetCourse wire formats: import params, import results, statuses and local times.

Import params follow the documented template (getcourse.ru/help/api and the official PHP SDK
README, copied in ``tests/fixtures/getcourse/``): ``{"user": …, "system": …, "session": …,
"deal": …}``, sent as base64 of the JSON in the ``params`` form field.

Times: GetCourse writes and reads times in the ACCOUNT's time zone with no offset
(``2026-11-23 10:15:00``). ``parse_local_datetime`` accepts::

    2026-11-23 10:15:00    2026-11-23 10:15    2026-11-23
    23.11.2026 10:15:00    23.11.2026 10:15    23.11.2026
    2026-11-23T10:15:00    2026-11-23T10:15:00+03:00    2026-11-23 10:15:00+03:00
    (an explicit offset is honoured)

A trailing ``Z`` is read as account-local time, not UTC: GetCourse has been seen appending ``Z``
to local times (third-party report, github.com/zenland-dev/n8n-nodes-getcourse README).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from schoolsync.core.domain import OrderStatus

# the Russian names managers see, and the codes the API uses (core.domain.OrderStatus)
STATUS_BY_NAME: Final[dict[str, str]] = {
    status.russian.casefold().replace("ё", "е"): status.value for status in OrderStatus
}
STATUS_CODES: Final = frozenset(status.value for status in OrderStatus)

_LOCAL_FORMATS: Final = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_ISO_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?(\.\d+)?([+-]\d{2}:?\d{2})?"
    r"| \d{2}:\d{2}(:\d{2})?(\.\d+)?[+-]\d{2}:?\d{2})"
)
LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?")


def status_code(value: str) -> str:
    """The status code for a code or a Russian name (``"Завершен"``, ``"завершён"`` -> ``payed``).

    An unknown value comes back stripped but otherwise as given, so that the mapping layer can
    refuse it with a precise ``UnmappableError`` instead of the parse failing here.
    """
    text = " ".join(value.split())
    folded = text.casefold().replace("ё", "е")
    if folded in STATUS_CODES:
        return folded
    return STATUS_BY_NAME.get(folded, text)


def parse_local_datetime(text: str, tz: ZoneInfo) -> datetime:
    """An aware datetime from a GetCourse time string (formats in the module docstring).

    Raises ``ValueError`` naming the accepted formats; callers turn it into the error for their
    input (a callback parameter, an export column).
    """
    value = text.strip().removesuffix("Z")
    if _ISO_WITH_OFFSET.fullmatch(value):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise ValueError(
        f"{text!r} is not a time like 2026-11-23 10:15:00 or 23.11.2026 10:15 (account-local)"
    )


def format_local_datetime(moment: datetime, tz: ZoneInfo) -> str:
    """``moment`` (aware) as GetCourse expects it in imports: account-local, no offset."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; pass an aware one")
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def truthy(value: object) -> bool:
    """GetCourse flags arrive as ``true``, ``"true"``, ``1`` or ``"1"``; anything else is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "нет")
    return False


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImportUser(_Params):
    """``user``: who the user or the order's buyer is. GetCourse identifies people by email."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    country: str | None = None
    created_at: str | None = Field(default=None, pattern=LOCAL_DATETIME.pattern)
    group_name: list[str | list[str]] | None = None  # "Group" or ["Group", "2026-05-01 21:21"]
    addfields: dict[str, str] | None = None  # additional fields by their title


class ImportSystem(_Params):
    """``system``: how the import behaves. Flags are sent as 1/0."""

    refresh_if_exists: bool | None = None  # update the existing user / order
    partner_email: str | None = None
    multiple_offers: bool | None = None
    return_payment_link: bool | None = None
    return_deal_number: bool | None = None

    @field_serializer(
        "refresh_if_exists", "multiple_offers", "return_payment_link", "return_deal_number"
    )
    def _as_flag(self, value: bool | None) -> int | None:
        return _flag(value)


class ImportSession(_Params):
    """``session``: where the person came from."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_content: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_group: str | None = None
    gcpc: str | None = None
    gcao: str | None = None
    referer: str | None = None


class ImportDeal(_Params):
    """``deal``: the order. Times are account-local strings (``format_local_datetime``)."""

    deal_number: str | None = None
    offer_code: str | None = None
    product_title: str | None = None
    product_description: str | None = None
    quantity: int | None = Field(default=None, ge=1)
    deal_cost: Decimal | None = None
    deal_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    deal_status: str | None = None
    deal_is_paid: bool | None = None
    manager_email: str | None = None
    deal_created_at: str | None = Field(default=None, pattern=LOCAL_DATETIME.pattern)
    deal_finished_at: str | None = Field(default=None, pattern=LOCAL_DATETIME.pattern)
    deal_comment: str | None = None
    payment_type: str | None = None
    payment_status: str | None = None
    partner_email: str | None = None
    addfields: dict[str, str] | None = None

    @field_validator("deal_status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = status_code(value)
        if code not in STATUS_CODES:
            raise ValueError(f"unknown deal status {value!r}; use one of {sorted(STATUS_CODES)}")
        return code

    @field_serializer("deal_cost")
    def _cost(self, value: Decimal | None) -> str | None:
        # a string, as in the documented template ("deal_cost":"сумма заказа"): exact, no float
        return None if value is None else f"{value:f}"

    @field_serializer("deal_is_paid")
    def _paid(self, value: bool | None) -> int | None:
        return _flag(value)


class UserImport(_Params):
    """Params of ``POST /pl/api/users`` with ``action=add``."""

    user: ImportUser
    system: ImportSystem = ImportSystem()
    session: ImportSession = ImportSession()

    def wire(self) -> dict[str, Any]:
        """The JSON document GetCourse reads, without unset fields or empty sections."""
        document = self.model_dump(mode="json", exclude_none=True)
        return {name: section for name, section in document.items() if section}


class DealImport(UserImport):
    """Params of ``POST /pl/api/deals`` with ``action=add``: the buyer plus the order.

    A retry must not create a second order: set a stable ``deal.deal_number`` and
    ``system.refresh_if_exists``, so that a repeat updates the same order.
    """

    deal: ImportDeal


class ImportResult(BaseModel):
    """``result`` of a successful import."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str | None = None
    user_status: str | None = None
    deal_id: str | None = None
    deal_number: str | None = None
    payment_link: str | None = None

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> ImportResult:
        def text(name: str) -> str | None:
            value = result.get(name)
            return None if value in (None, "") else str(value)

        return cls(**{name: text(name) for name in cls.model_fields})
