"""W4: order status <-> lead stage, both ways, as config and pure decisions. No I/O.

The school's ``rules.status_sync`` block (every key optional)::

    rules:
      status_sync:
        enabled: true
        source_of_truth: {status: getcourse}   # or amocrm: who wins a conflict
        from_crm: {1003: in_work, 143: cancelled}   # stage -> status; default: the reverse of
                                                     # mappings.amocrm.stages (first listed wins)
        crm_may_set: [new, in_work, payment_waiting, cancelled, "false"]  # never payed: money does
        conflict_window_s: 60
        echo_ttl_s: 600

Order -> lead is the CRM push (``mappings.amocrm.stages``). Lead -> order is decided here: a
lead moved to a stage that stands for another order status changes the order, unless that is a
**conflict**: the order's status was changed on the platform within ``conflict_window_s`` and the
manager moved the lead from a stage that did not show that change (the webhook's old stage is not
the order's). Then the source of truth wins and the other side is corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.mappings.amocrm import AmoCrmMapping

Side = Literal["getcourse", "amocrm"]
CRM = "crm"  # ``orders.status_origin`` of a status we wrote to the platform from a lead stage
PLATFORM = "platform"  # changed on the platform
ECHO = "echo"  # the platform's callback of a write of ours, arriving after the order moved on

PAID_STATUSES = frozenset({OrderStatus.PAYED, OrderStatus.PART_PAYED})  # set by money only


class SourceOfTruth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Side = "getcourse"


class StatusSyncRules(BaseModel):
    """``rules.status_sync`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    source_of_truth: SourceOfTruth = SourceOfTruth()
    from_crm: dict[int, OrderStatus] = {}
    crm_may_set: list[OrderStatus] = Field(
        default_factory=lambda: [s for s in OrderStatus if s not in PAID_STATUSES]
    )
    conflict_window_s: int = Field(default=60, ge=0, le=24 * 3600)
    echo_ttl_s: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    conflict_note: str = Field(
        default=(
            "Статус заказа {number} изменили одновременно в GetCourse и в amoCRM. "
            "По правилам верен {winner}: {fixed}."
        ),
        min_length=1,
    )

    @property
    def conflict_window(self) -> timedelta:
        return timedelta(seconds=self.conflict_window_s)


def status_sync_rules(school: School) -> StatusSyncRules:
    return StatusSyncRules.model_validate(school.block("rules.status_sync") or {})


def status_of_stage(
    stage_id: int, mapping: AmoCrmMapping, rules: StatusSyncRules
) -> OrderStatus | None:
    """The order status a lead stage stands for: ``from_crm``, else the first status that
    ``mappings.amocrm.stages`` sends to this stage; ``None`` for a stage of the CRM's own."""
    if stage_id in rules.from_crm:
        return rules.from_crm[stage_id]
    return next((status for status, stage in mapping.stages.items() if stage == stage_id), None)


@dataclass(frozen=True)
class Decision:
    """What a lead's stage change does: ``none``, ``to_order`` (write ``status`` to the
    platform) or ``to_lead`` (move the lead back to the order's stage)."""

    action: Literal["none", "to_order", "to_lead"]
    reason: str
    status: OrderStatus | None = None
    conflict: bool = False


def on_lead_stage(
    order: Order,
    *,
    changed_at: datetime | None,
    origin: str | None,
    stage_id: int,
    old_stage_id: int | None,
    now: datetime,
    mapping: AmoCrmMapping,
    rules: StatusSyncRules,
) -> Decision:
    """Decide for a lead of ``order`` now in ``stage_id`` (moved from ``old_stage_id``).

    ``changed_at`` and ``origin`` say when and by whom the order's status was last changed.
    """
    ours = mapping.stages.get(order.status)
    if ours == stage_id:
        return Decision("none", "the lead's stage already stands for the order's status")
    if order.status in PAID_STATUSES:
        # money decides a paid order (a refund undoes it): no stage a manager sets, even in a
        # conflict; the lead keeps what they chose
        return Decision("none", "a paid order's status is not set from the CRM")
    target = status_of_stage(stage_id, mapping, rules)
    if target is None:
        return Decision("none", f"stage {stage_id} stands for no order status")
    if target not in rules.crm_may_set:
        return Decision(
            "none",
            f"status '{target.value}' is not set from the CRM (rules.status_sync.crm_may_set)",
        )
    conflict = (
        origin == PLATFORM
        and changed_at is not None
        and now - changed_at <= rules.conflict_window
        and old_stage_id != ours
    )
    if conflict and rules.source_of_truth.status == "getcourse":
        if ours is None:  # the order's status has no stage to put the lead back to
            return Decision("none", "both sides changed; GetCourse is the source of truth")
        return Decision(
            "to_lead", "both sides changed; GetCourse is the source of truth", conflict=True
        )
    return Decision(
        "to_order",
        "both sides changed; amoCRM is the source of truth" if conflict else "the lead moved",
        status=target,
        conflict=conflict,
    )


PlatformChange = Literal["same", "echo", "stale", "conflict", "change"]


def on_platform_status(
    current: OrderStatus,
    incoming: OrderStatus,
    *,
    changed_at: datetime | None,
    origin: str | None,
    ours: bool,
    now: datetime,
    rules: StatusSyncRules,
) -> PlatformChange:
    """What a status from the platform (a callback, an export) is to the order we mirror.

    ``same``: nothing new. ``echo``: the callback of a write of ours (``ours``) arriving after
    the mirror moved on: GetCourse calls back in the order things happened to the deal, so the
    mirror follows (and the lead with it) and a later callback brings it on; never a conflict.
    ``stale``: such a callback when the order is paid meanwhile: dropped (callbacks handled out
    of order by two workers must not unpay an order). ``conflict``: it undoes, within the
    window, a stage a manager set (that we wrote from the CRM): the source of truth decides; a
    paid status on either side never is one. ``change``: an ordinary change, pushed on.
    """
    if incoming == current:
        return "same"
    if ours:
        # a paid order never goes back to an earlier status of ours (workers may handle
        # GetCourse's callbacks out of order: the payment's before our write's)
        return "stale" if current in PAID_STATUSES else "echo"
    if incoming in PAID_STATUSES or current in PAID_STATUSES:
        return "change"  # money (or a refund) is never a conflict to undo
    if origin == CRM and changed_at is not None and now - changed_at <= rules.conflict_window:
        return "conflict"
    return "change"
