"""W13 with a controllable clock: reminders 24 h (quiet hours respected) and 1 h (not) before a
session, to the psychologist and the client; a rescheduled session gets reminders only for its
new start, a cancelled one none; a client without a known chat gets one e-mail (received by the
SMTP sandbox)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from schoolsync.app.bootstrap import Runtime
from schoolsync.app.platforms import CONFIG_BLOCKS, build_mailers
from schoolsync.connectors.amocrm.models import Contact, Lead
from schoolsync.connectors.smtp.client import DeliveryUnknownError, SmtpClient
from schoolsync.connectors.smtp.config import SmtpAccount
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import jobs as jobs_table
from schoolsync.core.db.tables import outbox
from schoolsync.core.db.tables import sessions as sessions_table
from schoolsync.core.errors import UnavailableError
from schoolsync.core.settings import BrokerSettings, JobSettings, Settings
from schoolsync.core.stores import links
from schoolsync.mappings.sessions import SessionRules
from schoolsync.sandbox.smtp import SmtpSandbox
from schoolsync.sync_jobs.actors import register_actors
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup, Platforms, SchoolPlatforms, SheetsSetup
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services.session_emails import send_session_email
from schoolsync.sync_jobs.services.sessions import EMAIL_ACTOR, SESSIONS_ACTOR, sessions_sweep
from tests.conftest import RedisServer

MOSCOW = ZoneInfo("Europe/Moscow")
PSYCHOLOGIST_CHAT = "700001"
CLIENT_CHAT = "800001"
HEADER = ["Клиент", "Контакт", "Психолог", "Начало", "Ссылка", "Статус"]
LINK = "https://meet.example.org/s1"


def school(source: dict[str, Any]) -> School:
    return School.model_validate(
        {
            "id": "default",
            "rules": {
                "sessions": {
                    **source,
                    "psychologists": {"Анна Петрова": int(PSYCHOLOGIST_CHAT), "55": 700002},
                    "email_subject": "Напоминание о сессии",
                }
            },
        }
    )


SHEET_SCHOOL = school({"source": "sheet", "sheet": {"spreadsheet": "s1", "tab": "Сессии"}})


class FakeSheet:
    """The sessions sheet as people edit it."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [HEADER]

    def get_values(self, spreadsheet_id: str, range_a1: str) -> list[list[str]]:
        assert (spreadsheet_id, range_a1) == ("s1", "'Сессии'")
        return [list(r) for r in self.rows]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW).astimezone(UTC)


def build_ctx(
    db: Database, redis_url: str, data_dir: Path, config: School, found: SchoolPlatforms
) -> JobContext:
    broker = build_broker(redis_url, broker=BrokerSettings(), jobs=JobSettings())
    return JobContext(
        config=AppConfig(schools=[config]),
        db=db,
        queue=JobQueue(db, broker),
        jobs=JobSettings(),
        data_dir=data_dir,
        platforms=Platforms(redis=None, schools={config.id: found}),
    )


@pytest.fixture
def sheet() -> FakeSheet:
    return FakeSheet()


@pytest.fixture
def ctx(
    sqlite_db: Database, redis_server: RedisServer, tmp_path: Path, sheet: FakeSheet
) -> Iterator[JobContext]:
    found = SchoolPlatforms(sheets=SheetsSetup(account="test", client=cast(Any, sheet)))
    yield build_ctx(sqlite_db, redis_server.url, tmp_path, SHEET_SCHOOL, found)


def messages(ctx: JobContext) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).mappings().all()
    return [dict(r) for r in rows]


def live(ctx: JobContext) -> list[tuple[str, datetime]]:
    """(key, not_before in Moscow time) of reminders still to go or gone."""
    return [
        (str(m["key"]), m["not_before"].replace(tzinfo=UTC).astimezone(MOSCOW))
        for m in messages(ctx)
        if m["state"] != "cancelled"
    ]


def test_a_session_moved_from_15_to_17_gets_reminders_only_for_17(
    ctx: JobContext, sheet: FakeSheet
) -> None:
    sheet.rows.append(["Мария", CLIENT_CHAT, "Анна Петрова", "25.11.2026 15:00", LINK, ""])
    assert sessions_sweep(ctx, "default", now=at(24, 14, 0)) == 0  # not yet (due 15:00)
    # 24 h reminders stored a few minutes ahead, to go at 15:00 sharp
    assert sessions_sweep(ctx, "default", now=at(24, 14, 55)) == 2
    assert sessions_sweep(ctx, "default", now=at(24, 14, 56)) == 0  # asked twice, stored once
    assert {key.rsplit(":", 1)[1] for key, _ in live(ctx)} == {"client", "psychologist"}

    sheet.rows[1][3] = "25.11.2026 17:00"  # moved before the reminders went
    made = [sessions_sweep(ctx, "default", now=at(24, 14, 58))]
    made += [sessions_sweep(ctx, "default", now=now) for now in sweeps(at(24, 15), at(25, 17))]
    assert sum(made) == 4  # 24 h and 1 h, each to the client and the psychologist

    gone = [m for m in messages(ctx) if m["state"] == "cancelled"]
    assert len(gone) == 2 and all("20261125T1200Z" in str(m["key"]) for m in gone)
    assert all(m["error"] == "session rescheduled" for m in gone)
    assert sorted(live(ctx)) == sorted(
        [
            ("session:sheet:row:2:20261125T1400Z:24h:client", at(24, 17).astimezone(MOSCOW)),
            ("session:sheet:row:2:20261125T1400Z:24h:psychologist", at(24, 17).astimezone(MOSCOW)),
            ("session:sheet:row:2:20261125T1400Z:1h:client", at(25, 16).astimezone(MOSCOW)),
            ("session:sheet:row:2:20261125T1400Z:1h:psychologist", at(25, 16).astimezone(MOSCOW)),
        ]
    )
    client = next(m for m in messages(ctx) if m["key"].endswith("1h:client"))
    assert client["chat_id"] == CLIENT_CHAT and client["audience"] == "client"
    assert "17:00" in client["text"] and LINK in client["text"] and "Мария" in client["text"]


def sweeps(
    start: datetime, end: datetime, every: timedelta = timedelta(minutes=5)
) -> list[datetime]:
    found = []
    while start < end:
        found.append(start)
        start += every
    return found


def test_a_session_at_0730_reminds_at_0800_the_day_before_and_at_0630(
    ctx: JobContext, sheet: FakeSheet
) -> None:
    sheet.rows.append(["Олег", CLIENT_CHAT, "Анна Петрова", "2026-11-25 07:30", LINK, ""])
    # every five minutes from the evening before the day before to the session
    made = {now: sessions_sweep(ctx, "default", now=now) for now in sweeps(at(23, 20), at(25, 8))}

    assert sum(made.values()) == 4
    first = min(now for now, count in made.items() if count)
    assert first == at(24, 7, 50)  # not 07:30 (quiet hours): stored just ahead of 08:00
    assert sorted(when for _, when in live(ctx)) == [
        at(24, 8).astimezone(MOSCOW),
        at(24, 8).astimezone(MOSCOW),
        at(25, 6, 30).astimezone(MOSCOW),  # the 1 h one ignores quiet hours
        at(25, 6, 30).astimezone(MOSCOW),
    ]


def test_a_cancelled_session_gets_no_reminders(ctx: JobContext, sheet: FakeSheet) -> None:
    sheet.rows.append(["Ира", CLIENT_CHAT, "Анна Петрова", "25.11.2026 12:00", LINK, "отменена"])
    sheet.rows.append(["Петр", CLIENT_CHAT, "Анна Петрова", "25.11.2026 13:00", LINK, ""])
    sheet.rows.append(["Лев", CLIENT_CHAT, "Анна Петрова", "25.11.2026 14:00", LINK, ""])
    # the 24 h reminders of 13:00 and 14:00 stored (just ahead of their time), none for 12:00
    assert sessions_sweep(ctx, "default", now=at(24, 13, 55)) == 4
    sheet.rows[2][5] = "Отменена"  # cancelled in the sheet
    del sheet.rows[3]  # and the 14:00 one removed before it started
    for now in sweeps(at(24, 14), at(25, 15)):
        sessions_sweep(ctx, "default", now=now)

    assert live(ctx) == []
    assert len(messages(ctx)) == 4  # those stored before the cancellations, withdrawn
    with ctx.db.read() as conn:
        statuses = conn.execute(sa.select(sessions_table.c.status)).scalars().all()
    assert statuses == ["cancelled", "cancelled", "cancelled"]


def test_a_client_without_any_contact_gets_nothing_and_the_psychologist_is_reminded(
    ctx: JobContext, sheet: FakeSheet
) -> None:
    sheet.rows.append(["Ян", "-", "55", "25.11.2026 12:00", "", ""])
    sessions_sweep(ctx, "default", now=at(24, 11, 55))
    keys = {key: when for key, when in live(ctx)}
    # no contact at all: the psychologist (by amoCRM user id) is reminded, the client cannot be
    assert list(keys) == ["session:sheet:row:2:20261125T0900Z:24h:psychologist"]


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as box:
        yield box


def mailer(box: SmtpSandbox) -> SmtpClient:
    account = SmtpAccount.model_validate(
        {
            "host": "127.0.0.1",
            "port": box.port,
            "from": "Школа <noreply@school.test>",
            "starttls": False,
        }
    )
    return SmtpClient(account)


def email_jobs(ctx: JobContext) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        rows = conn.execute(sa.select(jobs_table).where(jobs_table.c.actor == EMAIL_ACTOR))
        return [dict(r) for r in rows.mappings()]


def test_a_client_without_a_known_chat_gets_one_email(
    ctx: JobContext, sheet: FakeSheet, smtp: SmtpSandbox
) -> None:
    sheet.rows.append(["Вера", "vera@example.org", "Анна Петрова", "25.11.2026 12:00", LINK, ""])
    sessions_sweep(ctx, "default", now=at(24, 11, 55))  # the e-mail is not due yet
    assert email_jobs(ctx) == []
    sessions_sweep(ctx, "default", now=at(24, 12, 0))
    sessions_sweep(ctx, "default", now=at(24, 12, 5))
    asked = email_jobs(ctx)
    assert len(asked) == 1  # asked once
    mailers = {"default": mailer(smtp)}
    args = asked[0]["args"]
    now = at(24, 12, 1)
    assert send_session_email(
        ctx, mailers, args["school"], args["session"], args["start"], args["kind"], now=now
    )
    # the job run again (a retry, a replay): nothing more
    assert not send_session_email(
        ctx, mailers, args["school"], args["session"], args["start"], args["kind"], now=now
    )

    received = smtp.messages(to="vera@example.org")
    assert len(received) == 1 and len(smtp.messages()) == 1
    assert received[0].subject == "Напоминание о сессии"
    assert "12:00" in received[0].text() and LINK in received[0].text()
    # the psychologist still gets Telegram
    assert [k for k, _ in live(ctx)] == ["session:sheet:row:2:20261125T0900Z:24h:psychologist"]


def test_an_email_refused_for_now_is_sent_on_the_retry_and_a_lost_answer_is_not_resent(
    ctx: JobContext, sheet: FakeSheet, smtp: SmtpSandbox
) -> None:
    sheet.rows.append(["Вера", "vera@example.org", "Анна Петрова", "25.11.2026 12:00", LINK, ""])
    sheet.rows.append(["Гоша", "gosha@example.org", "Анна Петрова", "25.11.2026 12:00", LINK, ""])
    sessions_sweep(ctx, "default", now=at(24, 12, 0))
    first, second = (job["args"] for job in email_jobs(ctx))
    mailers = {"default": mailer(smtp)}
    now = at(24, 12, 1)

    smtp.refuse_next(451)
    with pytest.raises(UnavailableError):
        send_session_email(ctx, mailers, **_call(first), now=now)
    assert send_session_email(ctx, mailers, **_call(first), now=now)  # the retry sends it

    lost = SmtpClient(mailers["default"].account, connect=_hangs_up_after_data)
    with pytest.raises(DeliveryUnknownError):
        send_session_email(ctx, {"default": lost}, **_call(second), now=now)
    with pytest.raises(DeliveryUnknownError):  # not sent again blindly
        send_session_email(ctx, mailers, **_call(second), now=now)
    assert [m.rcpt_tos for m in smtp.messages()] == [("vera@example.org",)]


def test_an_email_for_a_session_moved_since_it_was_asked_for_is_not_sent(
    ctx: JobContext, sheet: FakeSheet, smtp: SmtpSandbox
) -> None:
    sheet.rows.append(["Вера", "vera@example.org", "Анна Петрова", "25.11.2026 12:00", LINK, ""])
    sessions_sweep(ctx, "default", now=at(24, 12, 0))
    sheet.rows[1][3] = "26.11.2026 12:00"
    sessions_sweep(ctx, "default", now=at(24, 12, 1))
    (job,) = email_jobs(ctx)
    assert not send_session_email(
        ctx, {"default": mailer(smtp)}, **_call(job["args"]), now=at(24, 12, 2)
    )
    assert smtp.messages() == []


def _call(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "school_id": args["school"],
        "session": args["session"],
        "start": args["start"],
        "kind": args["kind"],
    }


def _hangs_up_after_data(host: str, port: int, timeout: float) -> Any:
    class HangsUp(smtplib.SMTP):
        def send_message(self, *args: Any, **kwargs: Any) -> Any:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    return HangsUp(host, port, timeout=timeout)


# -- amoCRM as the source ---------------------------------------------------------------------

START_FIELD, LINK_FIELD = 9001, 9003


class FakeAmo:
    def __init__(self) -> None:
        self.stages: dict[int, list[Lead]] = {7002: [], 143: []}
        self.reads: list[str] = []

    def leads_in_stage(self, pipeline_id: int, status_id: int) -> Iterator[Lead]:
        assert pipeline_id == 7001
        return iter(self.stages[status_id])

    def get_lead(self, lead_id: int, *, with_contacts: bool = True) -> Lead:
        self.reads.append(f"lead:{lead_id}")
        return Lead.model_validate(
            {"id": lead_id, "_embedded": {"contacts": [{"id": 31, "is_main": True}]}}
        )

    def get_contact(self, contact_id: int) -> Contact:
        self.reads.append(f"contact:{contact_id}")
        return Contact.model_validate(
            {
                "id": contact_id,
                "first_name": "Ольга",
                "custom_fields_values": [
                    {"field_code": "EMAIL", "values": [{"value": "olga@example.org"}]}
                ],
            }
        )


def lead(lead_id: int, start: datetime) -> Lead:
    return Lead.model_validate(
        {
            "id": lead_id,
            "responsible_user_id": 55,
            "custom_fields_values": [
                {"field_id": START_FIELD, "values": [{"value": int(start.timestamp())}]},
                {"field_id": LINK_FIELD, "values": [{"value": LINK}]},
            ],
        }
    )


def test_amocrm_leads_are_sessions_and_a_linked_chat_gets_telegram(
    sqlite_db: Database, redis_server: RedisServer, tmp_path: Path
) -> None:
    amo = FakeAmo()
    config = school(
        {
            "source": "amocrm",
            "amocrm": {
                "pipeline_id": 7001,
                "status_ids": [7002],
                "cancelled_status_ids": [143],
                "start_field_id": START_FIELD,
                "link_field_id": LINK_FIELD,
            },
        }
    )
    setup = AmoCrmSetup(account="test", client=cast(Any, amo), mapping=None)
    ctx = build_ctx(sqlite_db, redis_server.url, tmp_path, config, SchoolPlatforms(amocrm=setup))
    with ctx.db.write() as conn:  # the client started the bot: their contact has a chat
        links.put_many(
            conn, "default", [(("amocrm", "contact", "31"), ("telegram", "chat", CLIENT_CHAT))]
        )
    amo.stages[7002] = [lead(1, at(25, 12)), lead(2, at(25, 13))]

    assert sessions_sweep(ctx, "default", now=at(24, 11, 55)) == 2
    sessions_sweep(ctx, "default", now=at(24, 11, 56))
    assert amo.reads == ["lead:1", "contact:31", "lead:2", "contact:31"]  # once per session
    amo.stages = {7002: [lead(1, at(25, 12))], 143: [lead(2, at(25, 13))]}  # lead 2 cancelled
    for now in sweeps(at(24, 12), at(25, 13)):
        sessions_sweep(ctx, "default", now=now)

    keys = sorted(key for key, _ in live(ctx))
    assert keys == [
        "session:amocrm:lead:1:20261125T0900Z:1h:client",
        "session:amocrm:lead:1:20261125T0900Z:1h:psychologist",
        "session:amocrm:lead:1:20261125T0900Z:24h:client",
        "session:amocrm:lead:1:20261125T0900Z:24h:psychologist",
    ]
    assert {m["chat_id"] for m in messages(ctx) if m["key"].endswith("client")} == {CLIENT_CHAT}


def test_a_session_moved_back_gets_its_withdrawn_reminders_again(
    ctx: JobContext, sheet: FakeSheet
) -> None:
    sheet.rows.append(["Мария", CLIENT_CHAT, "Анна Петрова", "25.11.2026 15:00", LINK, ""])
    sessions_sweep(ctx, "default", now=at(24, 14, 55))
    sheet.rows[1][3] = "25.11.2026 17:00"
    sessions_sweep(ctx, "default", now=at(24, 14, 56))
    assert live(ctx) == []
    sheet.rows[1][3] = "25.11.2026 15:00"  # back: same keys, pending again
    sessions_sweep(ctx, "default", now=at(24, 14, 57))
    assert sorted(k for k, _ in live(ctx)) == [
        "session:sheet:row:2:20261125T1200Z:24h:client",
        "session:sheet:row:2:20261125T1200Z:24h:psychologist",
    ]


# -- wiring -----------------------------------------------------------------------------------


def test_wired_a_config_block_a_sweep_per_school_with_its_source_and_the_email_actor(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CONFIG_BLOCKS["rules.sessions"] is SessionRules
    assert CONFIG_BLOCKS["accounts.smtp"] is SmtpAccount
    smtp = {"host": "smtp.test", "from": "noreply@school.test", "password_env": "smtp_password"}
    with_mail = SHEET_SCHOOL.model_copy(update={"accounts": {"smtp": smtp}})
    other = School.model_validate({"id": "other"})  # no sessions: no sweep
    ctx.config = AppConfig(schools=[with_mail, other])
    runtime = Runtime(Settings(), ctx.config, ctx.db, cast(Any, None), ctx.queue, ctx)
    sweeps = [p for p in runtime.schedule if p.actor == SESSIONS_ACTOR]
    assert [(p.school, p.args, p.every_s) for p in sweeps] == [
        ("default", {"school": "default"}, 300)
    ]

    monkeypatch.setenv("SCHOOLSYNC_SECRETS__SMTP_PASSWORD", "s3cret")
    mailers = build_mailers(Settings(), ctx.config, sandbox=False)
    assert list(mailers) == ["default"] and "s3cret" not in repr(mailers["default"])
    actors = register_actors(StubBroker(), ctx, time_limit_ms=1000, mailers=mailers)
    assert {SESSIONS_ACTOR, EMAIL_ACTOR} <= set(actors)
