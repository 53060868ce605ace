"""Notifications against the Telegram sandbox (in process) and a real Redis: every message once,
in order per chat, through 429s and lost answers; quiet hours; a removed bot is one failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
import sqlalchemy as sa

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.pacing import Pacer
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import outbox
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import failures
from schoolsync.core.stores import outbox as store
from schoolsync.mappings.notifications import QuietHours, render
from schoolsync.sandbox.telegram import TelegramSandboxConfig, create_app
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import Platforms, SchoolPlatforms, TelegramSetup
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.replay import replay_failure
from schoolsync.sync_jobs.services import outbox as service
from schoolsync.sync_jobs.services.outbox import Notice, deliver, queue_notices
from tests.conftest import RedisServer, serving

TOKEN = "123456:sandbox-bot-token"
SALES, FEEDBACK = -1001000000001, -1001000000004
MOSCOW = ZoneInfo("Europe/Moscow")
SCHOOL = School.model_validate(
    {"id": "default", "channels": {"sales": SALES, "feedback": {"chat_id": FEEDBACK, "topic": 3}}}
)


class Setup:
    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base_url: str) -> None:
        self.tg = httpx.Client(base_url=base_url, timeout=10)
        self.db = db
        self.redis = redis.Redis.from_url(server.url)
        http = build_client(base_url, timeout=1.0)
        self.rate = 200.0  # our pace per chat; the sandbox's limits are set per test

        def chat_pacer(chat_id: str) -> Pacer:
            return Pacer(self.redis, "telegram-chat", f"sandbox:{chat_id}", rate=self.rate)

        client = TelegramClient(http, Endpoint("telegram", "sandbox"), TOKEN)
        broker = build_broker(server.url, broker=BrokerSettings(), jobs=JobSettings())
        self.ctx = JobContext(
            config=AppConfig(schools=[SCHOOL]),
            db=db,
            queue=JobQueue(db, broker),
            jobs=JobSettings(),
            data_dir=tmp_path,
            platforms=Platforms(
                redis=self.redis,
                schools={
                    SCHOOL.id: SchoolPlatforms(
                        telegram=TelegramSetup(bot="sandbox", client=client, chat_pacer=chat_pacer)
                    )
                },
            ),
        )

    def limits(self, **limits: Any) -> None:
        assert self.tg.post("/_sandbox/limits", json=limits).status_code == 200

    def fault(self, **rule: Any) -> None:
        assert self.tg.post("/_sandbox/faults", json=rule).status_code == 200

    def queue(self, notices: list[Notice], now: datetime | None = None) -> None:
        with self.db.write() as conn:
            queue_notices(conn, SCHOOL, notices, now=now)

    def deliver_all(self, rounds: int = 20) -> None:
        """What the workers do: deliver every lane with due messages until none is left."""
        for _ in range(rounds):
            with self.db.read() as conn:
                lanes = store.due_lanes(conn, datetime.now(UTC))
            if not lanes:
                return
            for school, lane in lanes:
                deliver(self.ctx, school, lane)
        raise AssertionError("messages still pending after every round")

    def present(self, chat_id: int) -> list[str]:
        messages = self.tg.get(f"/_sandbox/messages?chat_id={chat_id}&present=1").json()
        return [m["text"] for m in messages["messages"]]

    def states(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
            ).all()
        return {str(state): int(count) for state, count in rows}


@pytest.fixture
def setup(
    sqlite_db: Database, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    monkeypatch.setattr(service, "PROBE_AFTER_S", 0.0)
    app = create_app(TelegramSandboxConfig(token=TOKEN))
    with serving(app) as base_url:
        made = Setup(sqlite_db, redis_server, tmp_path, base_url)
        made.limits(per_chat_per_s=1000, per_chat_burst=1000, per_group_per_min=100_000)
        yield made
        made.tg.close()


def line(n: int) -> Notice:
    return Notice(key=f"payment:{n}", kind="test", html=f"{n} Демин Саша", channel="sales")


def test_every_message_once_and_in_order_per_chat(setup: Setup) -> None:
    setup.queue([line(n) for n in range(60)])
    setup.queue(
        [
            Notice(key=f"fb:{n}", kind="test", html=f"отзыв {n}", channel="feedback")
            for n in range(5)
        ]
    )
    setup.queue([line(n) for n in range(60)])  # asked again: stored once

    setup.deliver_all()

    assert setup.present(SALES) == [f"{n} Демин Саша" for n in range(60)]
    assert setup.present(FEEDBACK) == [f"отзыв {n}" for n in range(5)]
    topics = setup.tg.get(f"/_sandbox/messages?chat_id={FEEDBACK}").json()["messages"]
    assert {m.get("message_thread_id") for m in topics} == {3}
    assert setup.states() == {"sent": 65}


def test_a_429_makes_the_chat_wait_and_nothing_fails(setup: Setup) -> None:
    setup.limits(per_chat_per_s=20, per_chat_burst=2, per_group_per_min=100_000)
    setup.rate = 30  # a little faster than Telegram takes (a config that is wrong, or a burst)
    setup.queue([line(n) for n in range(40)])

    setup.deliver_all()

    assert setup.present(SALES) == [f"{n} Демин Саша" for n in range(40)]
    state = setup.tg.get("/_sandbox/state").json()
    assert state["rate_limited"] > 0  # Telegram did say 429 ...
    with setup.db.read() as conn:
        assert failures.listing(conn) == []  # ... and it cost nothing but time


def test_lost_answers_are_looked_for_before_sending_again(setup: Setup) -> None:
    setup.queue([line(-1)])
    setup.deliver_all()  # the bot has posted in this group before
    setup.fault(method="sendMessage", drop_rate=0.2, seed=7)
    setup.queue([line(n) for n in range(50)])

    setup.deliver_all(rounds=60)

    assert setup.present(SALES) == [f"{n} Демин Саша" for n in range(-1, 50)]
    state = setup.tg.get("/_sandbox/state").json()
    assert state["faults_injected"] >= 5  # answers were lost ...
    assert state["sent"] == 51  # ... and yet nothing went twice
    assert setup.tg.get("/_sandbox/edits").json()["edits"] == []  # looking changed nothing
    assert setup.states() == {"sent": 51}


def test_a_crash_after_handing_a_part_over_does_not_post_it_twice(setup: Setup) -> None:
    setup.queue([line(0)])
    setup.deliver_all()
    setup.queue([line(1), line(2)])
    # a worker handed "1" over and died before writing down the answer
    with setup.db.write() as conn:
        row = store.get(conn, SCHOOL.id, "payment:1")
        assert row is not None
        store.mark_inflight(conn, int(row["id"]), at=datetime.now(UTC))
    setup.tg.post(
        f"/bot{TOKEN}/sendMessage", json={"chat_id": SALES, "text": "1 Демин Саша"}
    ).raise_for_status()

    setup.deliver_all()

    assert setup.present(SALES) == ["0 Демин Саша", "1 Демин Саша", "2 Демин Саша"]


def test_a_ten_thousand_character_message_goes_in_parts_split_between_lines(setup: Setup) -> None:
    lines = [f"{n:04d} " + " ".join(["оплата"] * 20) for n in range(70)]  # 144 characters
    text = "\n".join(lines)
    assert len(text) > 10_000
    setup.queue([Notice(key="long", kind="test", html=text, channel="sales")])

    setup.deliver_all()

    parts = setup.present(SALES)
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts).split("\n") == lines  # every line whole, none lost


def test_html_in_a_name_cannot_break_the_message(setup: Setup) -> None:
    html = render("first_lesson", teacher="Кирилл", client='<b>Маша</b> & "Ко" </i>', lesson=None)
    setup.queue([Notice(key="first:1", kind="first_lesson", html=html, channel="sales")])

    setup.deliver_all()

    assert setup.present(SALES) == [
        'Кирилл, <b>Маша</b> & "Ко" </i> будет в первый раз, не забудьте обратную связь.'
    ]


def test_a_removed_bot_is_one_failure_naming_the_channel_and_messages_wait(setup: Setup) -> None:
    setup.tg.post("/_sandbox/kick", json={"chat_id": FEEDBACK}).raise_for_status()
    fb = [
        Notice(key=f"fb:{n}", kind="test", html=f"отзыв {n}", channel="feedback") for n in range(5)
    ]
    setup.queue(fb)
    setup.queue([line(1)])

    for _ in range(3):  # the sweep comes back to the chat: no new attempt, no new failure
        deliver(setup.ctx, SCHOOL.id, f"chat:{FEEDBACK}")
    deliver(setup.ctx, SCHOOL.id, f"chat:{SALES}")

    with setup.db.read() as conn:
        found = failures.listing(conn)
    assert len(found) == 1
    assert "channel 'feedback'" in found[0]["error_message"]
    assert "bot was kicked" in found[0]["error_message"]
    assert setup.present(SALES) == ["1 Демин Саша"]  # other chats are not held up
    assert setup.states() == {"pending": 5, "sent": 1}
    requests = setup.tg.get("/_sandbox/state").json()["requests"]
    deliver(setup.ctx, SCHOOL.id, f"chat:{FEEDBACK}")
    assert setup.tg.get("/_sandbox/state").json()["requests"] == requests

    # the bot is added back and the failure replayed: everything arrives, in order
    setup.tg.post("/_sandbox/kick", json={"chat_id": FEEDBACK, "kicked": False}).raise_for_status()
    replay_failure(setup.db, setup.ctx.queue, int(found[0]["id"]), who="test")
    deliver(setup.ctx, SCHOOL.id, f"chat:{FEEDBACK}")  # what the replayed job runs
    assert setup.present(FEEDBACK) == [f"отзыв {n}" for n in range(5)]


def test_a_refused_message_fails_alone(setup: Setup) -> None:
    setup.queue(
        [
            line(1),
            Notice(key="broken", kind="test", html="<b>не закрыт", channel="sales"),
            line(2),
        ]
    )

    setup.deliver_all()

    assert setup.present(SALES) == ["1 Демин Саша", "2 Демин Саша"]
    with setup.db.read() as conn:
        found = failures.listing(conn)
    assert [f["actor"] for f in found] == [service.RESEND_ACTOR]
    assert "can't parse entities" in found[0]["error_message"]


def test_client_messages_wait_for_the_morning_internal_ones_do_not(setup: Setup) -> None:
    late = datetime(2026, 11, 23, 23, 30, tzinfo=MOSCOW).astimezone(UTC)
    setup.queue(
        [
            Notice(key="client", kind="test", html="Добрый вечер!", chat_id=777, to_client=True),
            Notice(key="internal", kind="test", html="Новый заказ", channel="sales"),
        ],
        now=late,
    )
    with setup.db.read() as conn:
        client = store.get(conn, SCHOOL.id, "client")
        internal = store.get(conn, SCHOOL.id, "internal")
        assert client is not None and internal is not None
        morning = datetime(2026, 11, 24, 8, 0, tzinfo=MOSCOW)
        assert client["not_before"].replace(tzinfo=UTC) == morning.astimezone(UTC)
        assert internal["not_before"].replace(tzinfo=UTC) == late
        assert store.next_due(conn, SCHOOL.id, "chat:777", morning - timedelta(seconds=1)) is None
        assert store.next_due(conn, SCHOOL.id, "chat:777", morning) is not None


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-23 21:59", "2026-11-23 21:59"),
        ("2026-11-23 22:00", "2026-11-24 08:00"),
        ("2026-11-24 03:10", "2026-11-24 08:00"),
        ("2026-11-24 08:00", "2026-11-24 08:00"),
    ],
)
def test_quiet_hours(local: str, expected: str) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=MOSCOW)
    got = QuietHours().not_before(now.astimezone(UTC), MOSCOW)
    assert got.astimezone(MOSCOW).replace(tzinfo=None) == datetime.fromisoformat(expected)


def _handed_over_and_lost(setup: Setup, n: int) -> None:
    """A worker handed message ``n`` over, Telegram posted it, and the answer never came."""
    with setup.db.write() as conn:
        row = store.get(conn, SCHOOL.id, f"payment:{n}")
        assert row is not None
        store.mark_inflight(conn, int(row["id"]), at=datetime.now(UTC))
    setup.tg.post(
        f"/bot{TOKEN}/sendMessage", json={"chat_id": SALES, "text": f"{n} Демин Саша"}
    ).raise_for_status()


def test_a_429_while_looking_for_a_lost_part_does_not_send_it_again(setup: Setup) -> None:
    setup.queue([line(0)])
    setup.deliver_all()
    setup.queue([line(1)])
    _handed_over_and_lost(setup, 1)
    setup.fault(method="editMessageText", error_rate=0.6, status=429, seed=1)

    setup.deliver_all()

    assert setup.present(SALES) == ["0 Демин Саша", "1 Демин Саша"]


def test_a_deleted_message_before_a_lost_part_does_not_hide_it(setup: Setup) -> None:
    setup.queue([line(0)])
    setup.deliver_all()
    other = setup.tg.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": SALES, "text": "tmp"})
    gone = other.json()["result"]["message_id"]
    setup.tg.post(f"/bot{TOKEN}/deleteMessage", json={"chat_id": SALES, "message_id": gone})
    setup.queue([line(1)])
    _handed_over_and_lost(setup, 1)

    setup.deliver_all()

    assert setup.present(SALES) == ["0 Демин Саша", "1 Демин Саша"]


def test_a_client_chat_the_bot_cannot_write_to_is_cancelled_not_failed(setup: Setup) -> None:
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=MOSCOW).astimezone(UTC)
    setup.queue(
        [Notice(key="c1", kind="test", html="Привет", chat_id=999_000, to_client=True)], now=noon
    )

    setup.deliver_all()  # no such chat (the client never started the bot): 400 chat not found

    with setup.db.read() as conn:
        assert failures.listing(conn) == []
        row = store.get(conn, SCHOOL.id, "c1")
    assert row is not None and row["state"] == "cancelled" and "chat not found" in row["error"]
