"""Order status written to GetCourse (the import API: the deal by its number), remembered as
ours so that the callback it sets off is not sent on to the CRM as a new change."""

from __future__ import annotations

from schoolsync.connectors.getcourse.models import DealImport, ImportDeal, ImportSystem, ImportUser
from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.errors import ConfigError, UnmappableError
from schoolsync.mappings.status_sync import status_sync_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.echoes import remember_order_status


def write_status(
    ctx: JobContext, school: School, order: Order, status: OrderStatus, *, no_manager: bool = False
) -> None:
    """Set the GetCourse deal ``order.number`` (``order`` as we mirror it) to ``status``
    (idempotent: the same status again changes nothing there); the callback it sets off is
    remembered as ours. ``no_manager`` also clears its manager."""
    setup = ctx.platforms.of(school.id).getcourse if ctx.platforms else None
    if setup is None:
        raise ConfigError(
            f"school {school.id!r} has no GetCourse account to change order status in"
        )
    if not order.customer.email:
        raise UnmappableError(f"order {order.number} has no buyer email; GetCourse needs one")
    assert ctx.platforms is not None
    if order.status != status:  # GetCourse calls back only when the status changes
        remember_order_status(
            ctx.platforms.redis,
            school.id,
            order.number,
            status.value,
            status_sync_rules(school).echo_ttl_s,
        )
    setup.client.add_deal(
        DealImport(
            user=ImportUser(email=order.customer.email),
            system=ImportSystem(refresh_if_exists=True),
            deal=ImportDeal(
                deal_number=order.number,
                product_title=order.product,
                deal_status=status.value,
                manager_email="" if no_manager else order.manager_email,
            ),
        )
    )
