"""W13 rules, pure: when each reminder goes, and sessions as people type them in a sheet."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schoolsync.mappings.notifications import QuietHours
from schoolsync.mappings.sessions import (
    DAY,
    HOUR,
    ClientContact,
    SessionRules,
    parse_contact,
    parse_start,
    reminder_due,
    sheet_sessions,
    still_useful,
)

MOSCOW = ZoneInfo("Europe/Moscow")


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("start", "kind", "due"),
    [
        (msk(25, 15), DAY, msk(24, 15)),
        (msk(25, 15), HOUR, msk(25, 14)),
        (msk(25, 7, 30), DAY, msk(24, 8)),  # 07:30 the day before is in the night
        (msk(25, 7, 30), HOUR, msk(25, 6, 30)),  # the 1 h one is never moved
        (msk(25, 23, 30), DAY, msk(25, 8)),
    ],
)
def test_reminder_times(start: datetime, kind: str, due: datetime) -> None:
    assert reminder_due(start, kind, QuietHours(), MOSCOW) == due.astimezone(UTC)


def test_a_day_reminder_is_pointless_once_the_hour_one_is_due() -> None:
    assert still_useful(msk(25, 15), DAY, msk(25, 13, 59))
    assert not still_useful(msk(25, 15), DAY, msk(25, 14))
    assert not still_useful(msk(25, 15), HOUR, msk(25, 15))


@pytest.mark.parametrize(
    "text", ["25.11.2026 15:00", "2026-11-25 15:00", "2026-11-25T15:00", "2026-11-25T12:00:00Z"]
)
def test_start_times_as_typed(text: str) -> None:
    assert parse_start(text, MOSCOW) == msk(25, 15).astimezone(UTC)


def test_contacts_as_typed() -> None:
    assert parse_contact("vera@example.org") == ClientContact(email="vera@example.org")
    assert parse_contact("+7 (999) 123-45-67") == ClientContact(phone="+79991234567")
    assert parse_contact("123456789") == ClientContact(telegram="123456789")
    assert parse_contact("@vera") == ClientContact()


def test_sheet_rows_become_sessions() -> None:
    rows = [
        ["ID", "Психолог", "Клиент", "Начало", "Ссылка", "Статус"],
        ["s-1", "Анна", "Вера", "25.11.2026 15:00", "https://x", ""],
        ["", "Анна", "Гоша", "когда-нибудь", "", ""],
        ["", "Анна", "Дима", "26.11.2026 10:00", "", "Отменена"],
    ]
    found, skipped = sheet_sessions(rows, MOSCOW)
    assert skipped == 1
    assert [(s.key, s.client, s.cancelled) for s in found] == [
        ("sheet:s-1", "Вера", False),
        ("sheet:row:4", "Дима", True),
    ]
    with pytest.raises(ValueError, match="start"):
        sheet_sessions([["Клиент"]], MOSCOW)


def test_a_source_needs_its_block_and_psychologists_are_found_by_name() -> None:
    with pytest.raises(ValidationError):
        SessionRules.model_validate({"source": "sheet"})
    rules = SessionRules.model_validate(
        {
            "source": "sheet",
            "sheet": {"spreadsheet": "s", "tab": "t"},
            "psychologists": {"Анна Петрова": 5},
        }
    )
    assert rules.psychologist_chat(" анна петрова ") == "5"
    assert rules.psychologist_chat("Борис") is None


def test_a_date_field_out_of_range_is_no_date_not_a_crash() -> None:
    from zoneinfo import ZoneInfo

    from schoolsync.mappings.sessions import amocrm_start

    assert amocrm_start("99999999999999999", ZoneInfo("Europe/Moscow")) is None


def test_the_24_hour_reminder_says_today_when_quiet_hours_moved_it_to_the_day() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from schoolsync.mappings.sessions import day_word

    moscow = ZoneInfo("Europe/Moscow")
    start = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    assert day_word(datetime(2026, 11, 22, 20, 30, tzinfo=UTC), start, moscow) == "завтра"
    assert day_word(datetime(2026, 11, 23, 5, 0, tzinfo=UTC), start, moscow) == "сегодня"
