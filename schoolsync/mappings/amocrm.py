"""Domain ``Order`` -> amoCRM lead and contact, all from the school's ``mappings.amocrm`` block.

Pure: no I/O. The flusher asks :class:`LeadMapping` for the lead of each order and sends the
result in batches; everything the school decides (pipeline, stage per status, product names,
responsible user per manager, which custom field holds the order number) is config::

    mappings:
      amocrm:
        pipeline_id: 1000
        stages: {new: 1002, in_work: 1003, payed: 142, cancelled: 143, "false": 143}
        products: {"Пакет Эконом": {}, "Пакет VIP": {name: "VIP"}}
        managers: {"anna@school.ru": 11}
        fields: {order_number: 5001, product: 5002, payment_link: 5003}
        tags: [GetCourse]
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.connectors.amocrm.models import (
    ComplexLead,
    CustomFieldValue,
    LeadUpdate,
    NewContact,
    email_field,
    phone_field,
    text_field,
)
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.errors import UnmappableError


class ProductMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None  # how the product is called in the CRM; default: its own title
    tags: list[str] = []


class LeadFields(BaseModel):
    """Custom field ids of the lead (``GET /api/v4/leads/custom_fields``)."""

    model_config = ConfigDict(extra="forbid")

    order_number: int = Field(description="text field that holds the order number; required")
    product: int | None = None
    payment_link: int | None = None
    order_status: int | None = None


class AmoCrmMapping(BaseModel):
    """The ``mappings.amocrm`` block of a school."""

    model_config = ConfigDict(extra="forbid")

    pipeline_id: int
    stages: dict[OrderStatus, int] = Field(
        description="order status -> status_id in the pipeline (142 won, 143 lost)"
    )
    products: dict[str, ProductMapping] = Field(
        default_factory=dict,
        description="known products by title; empty means every product is accepted as is",
    )
    managers: dict[str, int] = Field(
        default_factory=dict, description="manager email -> amoCRM user id"
    )
    default_responsible_user_id: int | None = None
    fields: LeadFields
    tags: list[str] = ["GetCourse"]
    lead_name: str = "Заказ {number}: {product}"


class LeadDraft(BaseModel):
    """What we want the lead (and, if new, its contact) to look like."""

    order_number: str
    name: str
    price: int | None
    status_id: int
    pipeline_id: int
    responsible_user_id: int | None
    fields: list[CustomFieldValue]
    tags: list[str]
    contact: NewContact
    email: str | None
    phone: str | None

    def create(self, *, request_id: str, contact_id: str | None) -> ComplexLead:
        """For ``/leads/complex``: with the known contact, or a new one."""
        return ComplexLead(
            name=self.name,
            price=self.price,
            status_id=self.status_id,
            pipeline_id=self.pipeline_id,
            responsible_user_id=self.responsible_user_id,
            created_by=0,
            custom_fields_values=self.fields,
            tags=self.tags,
            contact=None if contact_id else self.contact,
            contact_id=int(contact_id) if contact_id else None,
            request_id=request_id,
        )

    def update(self, lead_id: str) -> LeadUpdate:
        """For ``PATCH /leads``: the same lead brought up to date."""
        return LeadUpdate(
            id=int(lead_id),
            name=self.name,
            price=self.price,
            status_id=self.status_id,
            pipeline_id=self.pipeline_id,
            responsible_user_id=self.responsible_user_id,
            custom_fields_values=self.fields,
        )


def _where(school: str, key: str) -> str:
    return f"schools[{school}].mappings.amocrm.{key}"


def lead_for(order: Order, mapping: AmoCrmMapping, *, school: str) -> LeadDraft:
    """The lead and contact for ``order``; ``UnmappableError`` names the value and the config key."""
    status_id = mapping.stages.get(order.status)
    if status_id is None:
        raise UnmappableError(
            f"order {order.number}: status '{order.status.value}' ({order.status.russian}) has no "
            f"stage; add it to {_where(school, 'stages')} in schoolsync.yaml",
            platform="amocrm",
        )
    product_name = order.product or ""
    tags = list(mapping.tags)
    if mapping.products:
        product = mapping.products.get(order.product or "")
        if product is None:
            raise UnmappableError(
                f"order {order.number}: product '{order.product or ''}' is unknown; add it to "
                f"{_where(school, 'products')} in schoolsync.yaml",
                platform="amocrm",
            )
        product_name = product.name or product_name
        tags += product.tags
    responsible = mapping.default_responsible_user_id
    if order.manager_email:
        manager = mapping.managers.get(order.manager_email.lower())
        if manager is None:
            raise UnmappableError(
                f"order {order.number}: manager '{order.manager_email}' has no amoCRM user; add "
                f"them to {_where(school, 'managers')} in schoolsync.yaml",
                platform="amocrm",
            )
        responsible = manager

    fields = [text_field(mapping.fields.order_number, order.number)]
    if mapping.fields.product and product_name:
        fields.append(text_field(mapping.fields.product, product_name))
    if mapping.fields.payment_link and order.payment_link:
        fields.append(text_field(mapping.fields.payment_link, order.payment_link))
    if mapping.fields.order_status:
        fields.append(text_field(mapping.fields.order_status, order.status.russian))

    customer = order.customer
    contact_fields = []
    if customer.phone:
        contact_fields.append(phone_field(customer.phone))
    if customer.email:
        contact_fields.append(email_field(customer.email))
    contact = NewContact(
        name=customer.full_name or f"Клиент заказа {order.number}",
        first_name=customer.first_name,
        last_name=customer.last_name,
        responsible_user_id=responsible,
        custom_fields_values=contact_fields or None,
    )
    return LeadDraft(
        order_number=order.number,
        name=mapping.lead_name.format(number=order.number, product=product_name).strip(": "),
        price=int(order.cost.amount) if order.cost is not None else None,  # whole roubles
        status_id=status_id,
        pipeline_id=mapping.pipeline_id,
        responsible_user_id=responsible,
        fields=fields,
        tags=list(dict.fromkeys(tags)),
        contact=contact,
        email=customer.email,
        phone=customer.phone,
    )
