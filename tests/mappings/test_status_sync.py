"""W4 decisions: which way a lead's stage change goes, and when it is a conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schoolsync.core.domain import Customer, Order, OrderStatus
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.mappings.status_sync import (
    CRM,
    PLATFORM,
    StatusSyncRules,
    on_lead_stage,
    on_platform_status,
    status_of_stage,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MAPPING = AmoCrmMapping.model_validate(
    {
        "pipeline_id": 1000,
        "stages": {"new": 1002, "in_work": 1003, "payed": 142, "cancelled": 143, "false": 143},
        "fields": {"order_number": 5001},
    }
)


def order(status: str) -> Order:
    return Order(
        platform="getcourse",
        account="a",
        number="1",
        status=OrderStatus(status),
        customer=Customer(email="a@example.org"),
    )


def decide(
    status: str,
    stage: int,
    *,
    old: int | None = 1002,
    ago_s: float = 3600,
    origin: str | None = PLATFORM,
    rules: StatusSyncRules | None = None,
) -> tuple[str, str | None, bool]:
    made = on_lead_stage(
        order(status),
        changed_at=NOW - timedelta(seconds=ago_s),
        origin=origin,
        stage_id=stage,
        old_stage_id=old,
        now=NOW,
        mapping=MAPPING,
        rules=rules or StatusSyncRules(),
    )
    return made.action, made.status.value if made.status else None, made.conflict


def test_a_shared_stage_stands_for_the_first_status_listed_unless_config_names_one() -> None:
    assert status_of_stage(143, MAPPING, StatusSyncRules()) == OrderStatus.CANCELLED
    named = StatusSyncRules.model_validate({"from_crm": {143: "false"}})
    assert status_of_stage(143, MAPPING, named) == OrderStatus.FALSE
    assert status_of_stage(7777, MAPPING, StatusSyncRules()) is None


def test_a_lead_moved_changes_its_order() -> None:
    assert decide("new", 1003) == ("to_order", "in_work", False)


def test_a_stage_that_already_stands_for_the_status_changes_nothing() -> None:
    # «Ложный» and «Отменён» share the lost stage: the echo of «Ложный» is not «Отменён»
    assert decide("false", 143)[0] == "none"


def test_stages_of_the_crm_own_and_money_statuses_are_not_written() -> None:
    assert decide("new", 7777)[0] == "none"  # «8–20 занятий»: no order status
    assert decide("in_work", 142, old=1003)[0] == "none"  # won: only a payment pays


def test_a_move_from_a_stage_that_did_not_show_a_fresh_platform_change_is_a_conflict() -> None:
    # GetCourse took the order into work 10 s ago; the manager, still seeing «new», closes it
    assert decide("in_work", 143, old=1002, ago_s=10) == ("to_lead", None, True)
    amocrm = StatusSyncRules.model_validate({"source_of_truth": {"status": "amocrm"}})
    assert decide("in_work", 143, old=1002, ago_s=10, rules=amocrm) == (
        "to_order",
        "cancelled",
        True,
    )


@pytest.mark.parametrize(
    ("old", "ago_s", "origin"),
    [
        (1003, 10, PLATFORM),  # the manager saw the change and moved on from it
        (1002, 120, PLATFORM),  # the platform's change is older than the window
        (1002, 10, CRM),  # the last change was the CRM's own
        (1002, 10, None),  # the order arrived like that: nothing changed on the platform
    ],
)
def test_not_a_conflict(old: int, ago_s: float, origin: str | None) -> None:
    assert decide("in_work", 143, old=old, ago_s=ago_s, origin=origin) == (
        "to_order",
        "cancelled",
        False,
    )


def test_a_platform_change_undoing_a_managers_stage_in_the_window_is_a_conflict() -> None:
    rules = StatusSyncRules()

    def kind(incoming: str, *, ours: bool = False, origin: str = CRM, ago_s: float = 10) -> str:
        return on_platform_status(
            OrderStatus.CANCELLED,
            OrderStatus(incoming),
            changed_at=NOW - timedelta(seconds=ago_s),
            origin=origin,
            ours=ours,
            now=NOW,
            rules=rules,
        )

    assert kind("cancelled") == "same"
    assert kind("in_work") == "conflict"
    assert kind("in_work", ours=True) == "echo"
    assert kind("in_work", origin=PLATFORM) == "change"
    assert kind("in_work", ago_s=120) == "change"


def test_bad_rules_are_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="source_of_truth"):
        StatusSyncRules.model_validate({"source_of_truth": {"status": "sheets"}})
    with pytest.raises(ValidationError, match="from_crm"):
        StatusSyncRules.model_validate({"from_crm": {143: "lost"}})


def test_money_is_never_undone_by_a_stage() -> None:
    # the client paid while the manager moved the lead: the payment stands
    assert decide("payed", 1003, old=1002, ago_s=10)[0] == "none"
    amocrm = StatusSyncRules.model_validate({"source_of_truth": {"status": "amocrm"}})
    assert decide("payed", 143, old=142, ago_s=10, rules=amocrm)[0] == "none"

    def kind(current: str, incoming: str, *, ours: bool = False) -> str:
        return on_platform_status(
            OrderStatus(current),
            OrderStatus(incoming),
            changed_at=NOW - timedelta(seconds=10),
            origin=CRM,
            ours=ours,
            now=NOW,
            rules=amocrm,
        )

    assert kind("in_work", "payed") == "change"  # not a conflict amoCRM could win
    assert kind("payed", "in_work", ours=True) == "stale"  # our earlier write, handled late


def test_a_conflict_over_a_status_without_a_stage_changes_nothing() -> None:
    # «Ожидаем возврата» has no stage here: GetCourse wins, and there is no stage to put back
    assert decide("waiting_for_return", 143, old=1002, ago_s=10) == ("none", None, False)
