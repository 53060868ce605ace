"""GetCourse "Call URL" (Вызвать URL) callbacks from order processes.

A school adds a "Call URL" operation to an order process with the URL below. GetCourse
substitutes the ``{object.…}`` placeholders and calls it; with GET or POST alike, "all data will
be transferred in the link" (getcourse.ru/blog/759199), so only the QUERY STRING is read and the
body ignored. Nothing is signed: the ``secret`` parameter, compared in constant time against
each school's callback secret, proves who configured the URL, and the callback is a hint to be
reconciled through the export API, not proof of payment.

Values are URL-decoded; an empty value or a placeholder left unsubstituted (``{object.id}``)
counts as missing. ``created_at`` is account-local time (formats in ``models``). One payment
fires two identical calls (status changed + paid): ``dedup_key`` makes the second a duplicate,
while a change of status or of the amount paid is a new event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from schoolsync.connectors.getcourse.models import parse_local_datetime, status_code
from schoolsync.connectors.getcourse.money import parse_money
from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.core.domain import Money
from schoolsync.core.errors import MalformedInputError, VerificationError

CALLBACK_QUERY_TEMPLATE: Final = (
    "id={object.id}&number={object.number}&status={object.status}"
    "&cost={object.cost_money_value}&payed={object.payed_money}"
    "&email={object.user.email}&phone={object.user.phone}"
    "&first_name={object.user.first_name}&last_name={object.user.last_name}"
    "&positions={object.positions}&payment_link={object.payment_link}"
    "&created_at={object.created_at}"
)
# what we tell schools to put in the "Call URL" operation of an order process
CALLBACK_URL_TEMPLATE: Final = (
    "https://<schoolsync host>/webhooks/getcourse?secret=<callback secret>&"
    + CALLBACK_QUERY_TEMPLATE
)
# every parameter we read; all optional except that one of id and number must be present
PARAMETERS: Final = (
    "id",
    "number",
    "status",
    "cost",
    "payed",
    "left",
    "email",
    "phone",
    "first_name",
    "last_name",
    "name",
    "product",
    "positions",
    "offers",
    "payment_link",
    "created_at",
)

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_MAX_DEDUP = 200


def callback_url(webhook_url: str, secret: str) -> str:
    """The URL a school pastes into GetCourse: ``webhook_url`` with the secret and parameters."""
    return f"{webhook_url}?secret={quote(secret, safe='')}&{CALLBACK_QUERY_TEMPLATE}"


class OrderCallback(BaseModel):
    """An order as a "Call URL" callback describes it; every field may be missing."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    number: str | None = None
    status: str | None = None  # the code; a Russian name is translated, an unknown kept as is
    cost: Money | None = None
    payed: Money | None = None
    left: Money | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    product: str | None = None  # "product", else "positions", else "offers"
    positions: str | None = None
    offers: str | None = None
    payment_link: str | None = None
    created_at: datetime | None = None

    @property
    def reference(self) -> str:
        """The order number, or ``id:<id>`` when only the id came."""
        return self.number if self.number is not None else f"id:{self.id}"

    @property
    def dedup_key(self) -> str:
        """``{number}:{status}:{amount paid}``: the same for a repeated call, new for a change."""
        payed = f"{self.payed.amount:.2f}" if self.payed is not None else ""
        key = f"{self.reference}:{self.status or ''}:{payed}"
        if len(key) > _MAX_DEDUP:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return key


def _values(query: str, *, strict: bool) -> dict[str, str]:
    """First non-missing value of each parameter; empty and ``{placeholder}`` values are missing."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict" if strict else "replace")
    except UnicodeDecodeError:
        raise MalformedInputError(
            "callback query string is not UTF-8", platform="getcourse"
        ) from None
    values: dict[str, str] = {}
    for name, raw in pairs:
        value = raw.strip()
        if value and not _PLACEHOLDER.fullmatch(value) and name not in values:
            values[name] = value
    return values


def parse_callback(query: str, tz: ZoneInfo | str) -> OrderCallback:
    """Read an order callback from its raw query string.

    Raises ``MalformedInputError`` naming the parameter: both ``number`` and ``id`` missing,
    or a ``cost``/``payed``/``left``/``created_at`` that cannot be read.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    values = _values(query, strict=True)
    if "number" not in values and "id" not in values:
        raise MalformedInputError(
            "callback has no order 'number' (nor 'id'); is {object.number} in the URL?",
            platform="getcourse",
        )

    def money(name: str) -> Money | None:
        try:
            return parse_money(values.get(name))
        except MalformedInputError as exc:
            raise MalformedInputError(
                f"callback '{name}': {exc.message}", platform="getcourse"
            ) from None

    created_at = None
    if "created_at" in values:
        try:
            created_at = parse_local_datetime(values["created_at"], zone)
        except ValueError as exc:
            raise MalformedInputError(
                f"callback 'created_at': {exc}", platform="getcourse"
            ) from None

    text = {name: values.get(name) for name in PARAMETERS}
    return OrderCallback(
        id=text["id"],
        number=text["number"],
        status=status_code(values["status"]) if "status" in values else None,
        cost=money("cost"),
        payed=money("payed"),
        left=money("left"),
        email=text["email"],
        phone=text["phone"],
        first_name=text["first_name"],
        last_name=text["last_name"],
        name=text["name"],
        product=text["product"] or text["positions"] or text["offers"],
        positions=text["positions"],
        offers=text["offers"],
        payment_link=text["payment_link"],
        created_at=created_at,
    )


class GetCourseCallbacks:
    """``/webhooks/getcourse``: one URL for every school, told apart by its callback secret."""

    name = "getcourse"

    def __init__(
        self,
        secrets: Mapping[str, str],
        *,
        timezones: Mapping[str, str] | None = None,
        default_timezone: str = "Europe/Moscow",
    ) -> None:
        """``secrets`` maps a callback secret to its school id; ``timezones`` a school id to its
        GetCourse account's zone (for ``created_at``)."""
        if any(not secret for secret in secrets):
            raise ValueError("an empty callback secret would accept any request")
        self._secrets = [(secret.encode(), school) for secret, school in secrets.items()]
        self._zones = {school: ZoneInfo(zone) for school, zone in (timezones or {}).items()}
        self._default_zone = ZoneInfo(default_timezone)

    def school_for(self, secret: str | None) -> str:
        """The school whose secret this is; ``VerificationError`` otherwise (constant time)."""
        if not secret:
            raise VerificationError("callback has no secret parameter", platform="getcourse")
        given = secret.encode()
        school: str | None = None
        for known, candidate in self._secrets:  # no early exit: every secret is compared
            if hmac.compare_digest(known, given):
                school = candidate
        if school is None:
            raise VerificationError("callback secret is not one we issued", platform="getcourse")
        return school

    def accept(self, request: RawRequest) -> AcceptedEvent:
        school = self.school_for(_values(request.query, strict=False).get("secret"))
        callback = parse_callback(request.query, self._zones.get(school, self._default_zone))
        return AcceptedEvent(dedup_key=callback.dedup_key, school=school)
