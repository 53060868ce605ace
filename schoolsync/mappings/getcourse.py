"""GetCourse order (a process callback or an export row) -> domain ``Order``.

Pure: no I/O. A status GetCourse sends that we do not know (a renamed or custom status) is an
``UnmappableError`` naming the value and the config key that maps it::

    mappings:
      getcourse:
        statuses: {"Архив": cancelled}   # extra GetCourse statuses -> one of ours
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.errors import UnmappableError

PLATFORM = "getcourse"


class GetCourseMapping(BaseModel):
    """The ``mappings.getcourse`` block of a school."""

    model_config = ConfigDict(extra="forbid")

    statuses: dict[str, OrderStatus] = Field(
        default_factory=dict,
        description="GetCourse statuses beyond the standard ten (code or Russian name) -> ours",
    )


def order_status(
    value: str | None, mapping: GetCourseMapping | None, *, school: str
) -> OrderStatus:
    text = (value or "").strip()
    try:
        return OrderStatus(text)
    except ValueError:
        pass
    for name, status in (mapping.statuses if mapping else {}).items():
        if name.casefold() == text.casefold():
            return status
    known = ", ".join(s.value for s in OrderStatus)
    raise UnmappableError(
        f"GetCourse status '{text}' is unknown; map it to one of ({known}) under "
        f"schools[{school}].mappings.getcourse.statuses in schoolsync.yaml",
        platform=PLATFORM,
    )


def order_from_fields(
    *,
    account: str,
    school: str,
    mapping: GetCourseMapping | None,
    number: str,
    external_id: str | None,
    status: str | None,
    product: str | None,
    cost: Money | None,
    payed: Money | None,
    email: str | None,
    phone: str | None,
    first_name: str | None,
    last_name: str | None,
    manager_email: str | None,
    payment_link: str | None,
    created_at: datetime | None,
) -> Order:
    """The domain order; every input already parsed from its wire format by the connector."""
    return Order(
        platform=PLATFORM,
        account=account,
        number=number,
        external_id=external_id,
        status=order_status(status, mapping, school=school),
        product=product.strip() if product else None,
        cost=cost,
        payed=payed,
        customer=Customer(email=email, phone=phone, first_name=first_name, last_name=last_name),
        manager_email=manager_email.strip().lower() if manager_email else None,
        payment_link=payment_link,
        created_at=created_at,
    )


def order_from_wire(
    wire: Any, *, account: str, school: str, mapping: GetCourseMapping | None
) -> Order:
    """From a connector's callback or export row (both expose the same attribute names)."""
    return order_from_fields(
        account=account,
        school=school,
        mapping=mapping,
        number=str(wire.number),
        external_id=str(wire.id) if getattr(wire, "id", None) else None,
        status=wire.status,
        product=getattr(wire, "product", None),
        cost=getattr(wire, "cost", None),
        payed=getattr(wire, "payed", None),
        email=getattr(wire, "email", None),
        phone=getattr(wire, "phone", None),
        first_name=getattr(wire, "first_name", None),
        last_name=getattr(wire, "last_name", None),
        manager_email=getattr(wire, "manager_email", None),
        payment_link=getattr(wire, "payment_link", None),
        created_at=getattr(wire, "created_at", None),
    )
