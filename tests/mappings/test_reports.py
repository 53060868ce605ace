"""W12 report periods and what is due when, in school time; the config block."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schoolsync.mappings.reports import ReportRules, day_period, due_periods, week_period

MSK = ZoneInfo("Europe/Moscow")


def test_a_day_and_an_iso_week_in_school_time() -> None:
    day = day_period(date(2026, 11, 22), MSK)
    assert day.key == "2026-11-22"
    assert day.start == datetime(2026, 11, 21, 21, 0, tzinfo=UTC)
    assert day.end == datetime(2026, 11, 22, 21, 0, tzinfo=UTC)
    week = week_period("2026-W47", MSK)
    assert (week.first, week.last) == (date(2026, 11, 16), date(2026, 11, 22))
    assert len(week.days) == 7 and week.key == "2026-W47"
    with pytest.raises(ValueError, match="ISO week"):
        week_period("2026-47", MSK)


def test_yesterday_is_due_after_daily_at_and_the_week_on_monday() -> None:
    rules = ReportRules()
    # 07:59 Moscow on Monday 23 November: nothing yet
    assert due_periods(rules, datetime(2026, 11, 23, 4, 59, tzinfo=UTC), MSK) == []
    due = due_periods(rules, datetime(2026, 11, 23, 5, 0, tzinfo=UTC), MSK)
    assert [p.key for p in due] == ["2026-11-22", "2026-W47"]
    tuesday = due_periods(rules, datetime(2026, 11, 24, 12, 0, tzinfo=UTC), MSK)
    assert [p.key for p in tuesday] == ["2026-11-23"]
    late = ReportRules(daily_at=time(10, 0), weekly=False)
    assert [p.key for p in due_periods(late, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), MSK)] == [
        "2026-11-22"
    ]


def test_the_config_block_is_strict() -> None:
    rules = ReportRules.model_validate(
        {"spreadsheet": "1AbCdEfGhIjK", "daily_at": "09:30", "csi": {"q": {"weight": 2}}}
    )
    assert rules.daily_at == time(9, 30) and rules.tab("weekly") == "Еженедельный"
    with pytest.raises(ValidationError):
        ReportRules.model_validate({"dayly_at": "09:00"})
    with pytest.raises(ValidationError):
        ReportRules.model_validate({"csi": {"q": {"low": 5, "high": 1}}})
