"""W8 undecided leads with a controllable clock against the amoCRM sandbox: a lead sitting in
the configured stage gets its manager's reminder tasks on the configured days, each once, and
none after it leaves the stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schoolsync.core.config import AppConfig, School
from schoolsync.core.errors import ConfigError
from schoolsync.mappings.followups import Undecided
from schoolsync.sync_jobs.services.followups import followups_sweep
from tests.sync_jobs.test_followups import tasks
from tests.sync_jobs.test_payments import MAPPING, SCHOOL, Setup, setup

__all__ = ["setup"]

IN_WORK = 1003  # «В работе» in the sandbox's pipeline 1000
MANAGER = 8002


def with_undecided(setup: Setup, **undecided: object) -> None:
    rules = {"followups": {"undecided": {"task_text": "Напомнить о себе", **undecided}}}
    setup.ctx.config = AppConfig(
        schools=[School.model_validate({**SCHOOL.model_dump(), "rules": rules})]
    )


def lead(setup: Setup, name: str, status_id: int = IN_WORK) -> int:
    body = {"name": name, "status_id": status_id, "pipeline_id": 1000}
    body["responsible_user_id"] = MANAGER
    setup.amo.post("/_sandbox/leads", json={"leads": [body]}).raise_for_status()
    return int(next(x["id"] for x in setup.amo.get("/_sandbox/leads").json() if x["name"] == name))


def move(setup: Setup, lead_id: int, status_id: int) -> None:
    setup.amo.post(f"/_sandbox/leads/{lead_id}/status", json={"status_id": status_id})


def test_two_reminders_on_days_two_and_five_and_none_after_the_lead_leaves(setup: Setup) -> None:
    with_undecided(setup, stage="В работе", after_days=[2, 5], within_days=7)
    stays = lead(setup, "Думает")
    leaves = lead(setup, "Думает и уходит")
    elsewhere = lead(setup, "Новая", status_id=1002)
    start = datetime.now(UTC)

    made_at: dict[int, list[float]] = {stays: [], leaves: []}
    for step in range(0, 8 * 24 + 1, 3):  # a sweep every 3 hours for 8 days
        now = start + timedelta(hours=step)
        if step == 4 * 24:  # day 4: the second one decides (won)
            move(setup, leaves, 142)
        followups_sweep(setup.ctx, SCHOOL.id, now=now)
        followups_sweep(setup.ctx, SCHOOL.id, now=now)  # a sweep run twice makes nothing twice
        for lead_id, seen in made_at.items():
            if len(tasks(setup, lead_id)) > len(seen):
                seen.append(step / 24)

    assert made_at[stays] == [2, 5]
    assert made_at[leaves] == [2]
    assert tasks(setup, elsewhere) == []
    made = tasks(setup, stays)
    assert len(made) == 2
    assert {t["responsible_user_id"] for t in made} == {MANAGER}
    assert [t["text"].splitlines()[0] for t in made] == [
        "Напомнить о себе (напоминание 1 из 2)",
        "Напомнить о себе (напоминание 2 из 2)",
    ]


def test_a_lead_that_comes_back_to_the_stage_starts_again(setup: Setup) -> None:
    with_undecided(setup, stage=IN_WORK)  # two reminders spread over 7 days: days 2 and 5
    back = lead(setup, "Вернулся")
    start = datetime.now(UTC)

    def sweep(days: float) -> int:
        return followups_sweep(setup.ctx, SCHOOL.id, now=start + timedelta(days=days))

    assert (sweep(0), sweep(2.1)) == (0, 1)
    move(setup, back, 1002)
    assert sweep(3) == 0  # seen gone
    move(setup, back, IN_WORK)
    # back from day 3: its reminders are on days 5 and 8, not on day 5 of the first stay
    assert [sweep(d) for d in (3.1, 4.9, 5.1, 7.9, 8.1, 9, 12)] == [0, 0, 1, 0, 1, 0, 0]
    assert len(tasks(setup, back)) == 3


def test_the_stage_by_id_by_order_status_or_by_name() -> None:
    mapping = MAPPING.model_copy(update={"stages": {**MAPPING.stages, "in_work": IN_WORK}})
    assert Undecided(stage=IN_WORK).known_stage(mapping) == (1000, IN_WORK)
    assert Undecided(stage="in_work").known_stage(mapping) == (1000, IN_WORK)
    assert Undecided(stage="1003", pipeline=2000).known_stage(None) == (2000, IN_WORK)
    assert Undecided(stage="Думают").known_stage(mapping) is None  # asks amoCRM's pipelines
    with pytest.raises(ConfigError, match=r"rules\.followups\.undecided\.stage"):
        Undecided(stage="Думают").stage_in(mapping, [], school="default")


def test_reminder_days_are_checked() -> None:
    assert Undecided(stage=1).days == (2, 5)
    assert Undecided(stage=1, reminders=3).days == (2, 4, 5)
    with pytest.raises(ValueError, match="within within_days"):
        Undecided(stage=1, after_days=[2, 7])
    with pytest.raises(ValueError, match="one day per reminder"):
        Undecided(stage=1, reminders=3, after_days=[2, 5])
    with pytest.raises(ValueError, match="each later than the last"):
        Undecided(stage=1, after_days=[5, 2])
