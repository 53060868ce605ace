"""W10 against the amoCRM and Telegram sandboxes (in process) and a real Redis: a teacher's
message in КОНТЕНТ becomes a note on the client's CRM card and a post in ОБРАТНАЯ СВЯЗЬ, once;
nobody found means a question in the group that a reply answers; stage triggers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.oauth import LongLivedToken
from schoolsync.connectors.amocrm.webhooks import LeadEvent
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.pacing import Pacer
from schoolsync.connectors.sheets.auth import ServiceAccountTokens
from schoolsync.connectors.sheets.client import SheetsClient
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import failures, inbox
from schoolsync.core.stores import feedback as feedback_store
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.sandbox.amocrm import AmoSandboxConfig
from schoolsync.sandbox.server import create_app
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import (
    AmoCrmSetup,
    Platforms,
    SchoolPlatforms,
    SheetsSetup,
    TelegramSetup,
)
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services import outbox as outbox_service
from schoolsync.sync_jobs.services.feedback import poll_survey, process_feedback_api
from schoolsync.sync_jobs.services.lesson_triggers import on_lead_event
from schoolsync.sync_jobs.services.outbox import deliver
from schoolsync.sync_jobs.services.telegram_inbound import process_telegram_update
from schoolsync.sync_jobs.services.telegram_updates import poll_updates
from tests.conftest import RedisServer, serving

TG_TOKEN = "123456:sandbox-bot-token"
AMO_TOKEN = "feedback-test-token"
FEEDBACK, CONTENT, PEDAGOGICAL = -1001000000004, -1001000000005, -1001000000006
SCHOOL = School.model_validate(
    {
        "id": "default",
        "channels": {"feedback": FEEDBACK, "content": CONTENT, "pedagogical": PEDAGOGICAL},
        "rules": {
            "feedback": {
                "routes": [{"to": "pedagogical", "max_score": 6}],
                "people": {"Кирилл Бесчастный": {"channel": "pedagogical"}},
                "first_lesson": {"stage_id": 1002},
                "second_feedback": {"stage_ids": [1003], "head_teacher_user_id": 8002},
                "survey": {"spreadsheet": "sandbox-feedback", "tab": "Ответы на форму (1)"},
            }
        },
    }
)


class Setup:
    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base_url: str) -> None:
        self.tg = httpx.Client(base_url=f"{base_url}/telegram", timeout=10)
        self.amo = httpx.Client(base_url=f"{base_url}/amocrm", timeout=10)
        self.db = db
        client = redis.Redis.from_url(server.url)

        def chat_pacer(chat_id: str) -> Pacer:
            return Pacer(client, "telegram-chat", f"sandbox:{chat_id}", rate=500)

        endpoint = Endpoint("amocrm", "sandbox")
        self.crm = AmoCrmClient(
            build_client(f"{base_url}/amocrm", timeout=5),
            endpoint,
            LongLivedToken(AMO_TOKEN, endpoint=endpoint),
            None,
        )
        telegram = TelegramClient(
            build_client(f"{base_url}/telegram", timeout=5),
            Endpoint("telegram", "sandbox"),
            TG_TOKEN,
        )
        self.sheets = httpx.Client(base_url=f"{base_url}/sheets", timeout=10)
        key_file = tmp_path / "sheets-key.json"  # downloaded as from the Cloud console
        key_file.write_text(self.sheets.get("/_sandbox/key-file").text)
        sheets_endpoint = Endpoint("sheets", "sandbox")
        sheets = SheetsClient(
            build_client(f"{base_url}/sheets", timeout=5),
            sheets_endpoint,
            ServiceAccountTokens(key_file, endpoint=sheets_endpoint),
        )
        broker = build_broker(server.url, broker=BrokerSettings(), jobs=JobSettings())
        self.ctx = JobContext(
            config=AppConfig(schools=[SCHOOL]),
            db=db,
            queue=JobQueue(db, broker),
            jobs=JobSettings(),
            data_dir=tmp_path,
            platforms=Platforms(
                redis=client,
                schools={
                    SCHOOL.id: SchoolPlatforms(
                        amocrm=AmoCrmSetup(account="sandbox", client=self.crm, mapping=None),
                        telegram=TelegramSetup(
                            bot="sandbox", client=telegram, chat_pacer=chat_pacer, poll=True
                        ),
                        sheets=SheetsSetup(account="sandbox", client=sheets),
                    )
                },
            ),
        )
        self.tg.post(
            "/_sandbox/limits", json={"per_chat_per_s": 1000, "per_chat_burst": 1000}
        ).raise_for_status()

    def client_in_crm(self, name: str, phone: str, status_id: int = 1002) -> tuple[int, int]:
        """A lead with its contact, as the W1 intake leaves them; (lead id, contact id)."""
        item = {
            "name": f"Заказ {name}",
            "status_id": status_id,
            "pipeline_id": 1000,
            "_embedded": {
                "contacts": [
                    {
                        "name": name,
                        "custom_fields_values": [
                            {
                                "field_code": "PHONE",
                                "values": [{"value": phone, "enum_code": "MOB"}],
                            }
                        ],
                    }
                ]
            },
        }
        self.amo.post("/_sandbox/leads", json={"leads": [item]}).raise_for_status()
        lead = next(
            lead for lead in self.amo.get("/_sandbox/leads").json() if lead["name"] == item["name"]
        )
        return int(lead["id"]), int(lead["_embedded"]["contacts"][0]["id"])

    def teacher_writes(self, text: str, reply_to: int | None = None) -> None:
        body: dict[str, Any] = {
            "chat_id": CONTENT,
            "text": text,
            "from": {"id": 5551, "first_name": "Кирилл", "last_name": "Бесчастный"},
        }
        if reply_to is not None:
            body["reply_to_message_id"] = reply_to
        self.tg.post("/_sandbox/updates", json=body).raise_for_status()

    def work(self) -> None:
        """What the scheduler and workers do: poll updates, process them, deliver messages."""
        poll_updates(self.ctx, SCHOOL.id)
        with self.db.read() as conn:
            waiting = [r for r in inbox.listing(conn) if r["status"] == inbox.RECEIVED]
        for row in waiting:
            if row["source"] == "telegram":
                process_telegram_update(self.ctx, int(row["id"]), None)
            else:
                process_feedback_api(self.ctx, int(row["id"]), None)
        with self.db.read() as conn:
            lanes = outbox_store.due_lanes(conn, datetime.now(UTC))
        for school, lane in lanes:
            deliver(self.ctx, school, lane)

    def form_answers(self, *rows: list[str]) -> None:
        """People fill in the Google Form: its answers land in the sheet."""
        self.sheets.post(
            "/_sandbox/spreadsheets/sandbox-feedback/rows",
            json={"tab": "Ответы на форму (1)", "rows": [list(r) for r in rows]},
        ).raise_for_status()

    def posts(self, chat_id: int) -> list[dict[str, Any]]:
        found = self.tg.get(f"/_sandbox/messages?chat_id={chat_id}&present=1").json()
        return list(found["messages"])

    def notes(self, contact_id: int) -> list[str]:
        return [n.text for n in self.crm.notes("contacts", contact_id)]


@pytest.fixture
def setup(
    sqlite_db: Database, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    monkeypatch.setattr(outbox_service, "PROBE_AFTER_S", 0.0)
    app = create_app(
        amocrm=AmoSandboxConfig(long_lived_token=AMO_TOKEN, rate_per_s=1000),
        telegram=TelegramSandboxConfig(token=TG_TOKEN),
    )
    with serving(app) as base_url:
        made = Setup(sqlite_db, redis_server, tmp_path, base_url)
        yield made
        made.tg.close()
        made.amo.close()
        made.sheets.close()


def test_a_teachers_message_becomes_a_crm_note_and_a_post_once(setup: Setup) -> None:
    _lead, contact = setup.client_in_crm("Демин Саша", "+79231234567")
    setup.teacher_writes("Демин Саша: сделал скворечник сам, очень старался")

    setup.work()
    setup.work()  # a second pass (a replayed job, a second poll) changes nothing

    notes = setup.notes(contact)
    assert len(notes) == 1
    assert "сделал скворечник сам" in notes[0] and "Кирилл Бесчастный" in notes[0]
    posts = setup.posts(FEEDBACK)
    assert len(posts) == 1
    assert "Демин Саша" in posts[0]["text"] and "скворечник" in posts[0]["text"]
    assert "НЕГАТИВ" not in posts[0]["text"]
    with setup.db.read() as conn:
        rows = feedback_store.listing(conn, SCHOOL.id)
    assert [(r["state"], r["contact_id"]) for r in rows] == [("routed", str(contact))]


def test_the_same_update_stored_twice_is_routed_once(setup: Setup) -> None:
    _lead, contact = setup.client_in_crm("Демин Саша", "+79231234567")
    setup.teacher_writes("Демин Саша: молодец")
    setup.work()
    with setup.db.write() as conn:  # Telegram delivers the update again (webhook and poll)
        row = inbox.listing(conn)[0]
        inbox.insert(
            conn,
            InboxRecord(
                school=SCHOOL.id, source="telegram", dedup_key="again", body=bytes(row["body"])
            ),
        )

    setup.work()

    assert len(setup.notes(contact)) == 1
    assert len(setup.posts(FEEDBACK)) == 1


def test_nobody_found_asks_in_the_group_and_a_reply_links_it(setup: Setup) -> None:
    _lead, contact = setup.client_in_crm("Иванова Маша", "+79990001122")
    setup.teacher_writes("Сегодня девочка в синем платье отлично работала с глиной")
    setup.work()

    question = [m for m in setup.posts(CONTENT) if "Не нашли клиента" in m["text"]]
    assert len(question) == 1
    assert setup.posts(FEEDBACK) == []  # waits for the answer

    setup.teacher_writes("Иванова Маша", reply_to=question[0]["message_id"])
    setup.work()

    assert len(setup.notes(contact)) == 1
    assert "синем платье" in setup.notes(contact)[0]
    posts = setup.posts(FEEDBACK)
    assert len(posts) == 1 and "Иванова Маша" in posts[0]["text"]


def test_negative_api_feedback_is_flagged_at_the_top_and_routed(setup: Setup) -> None:
    _lead, contact = setup.client_in_crm("Демин Саша", "+79231234567")
    with setup.db.write() as conn:
        body = {
            "draft": {
                "text": "Кирилл Бесчастный не перезвонил",
                "subject": "Демин Саша",
                "score": 3,
                "source": "api",
                "author_kind": "client",
                "phone": "+79231234567",
            },
            "contact_id": None,
        }
        inbox.insert(
            conn,
            InboxRecord(
                school=SCHOOL.id,
                source="feedback-api",
                dedup_key="api:1",
                body=json.dumps(body).encode(),
            ),
        )

    setup.work()

    post = setup.posts(FEEDBACK)[0]["text"]
    assert post.startswith("🔴 НЕГАТИВНАЯ ОБРАТНАЯ СВЯЗЬ (оценка 3 из 10)")
    # score <= 6 goes to pedagogical by the route, and Кирилл (whose group that is) is named:
    # one copy there, not two
    assert len(setup.posts(PEDAGOGICAL)) == 1
    assert len(setup.notes(contact)) == 1


def test_first_lesson_reminds_the_teacher_and_a_reply_is_feedback(setup: Setup) -> None:
    lead, contact = setup.client_in_crm("Петров Ваня", "+79995554433", status_id=1002)
    event = LeadEvent(action="status", id=lead, status_id=1002, pipeline_id=1000)
    on_lead_event(setup.ctx, SCHOOL, setup.ctx.platforms.of(SCHOOL.id).amocrm, event)  # type: ignore[union-attr,arg-type]
    on_lead_event(setup.ctx, SCHOOL, setup.ctx.platforms.of(SCHOOL.id).amocrm, event)  # type: ignore[union-attr,arg-type]
    setup.work()

    reminders = [m for m in setup.posts(CONTENT) if "будет в первый раз" in m["text"]]
    assert [m["text"] for m in reminders] == [
        "Петров Ваня будет в первый раз, не забудьте обратную связь."
    ]
    setup.teacher_writes("Ваня быстро освоился", reply_to=reminders[0]["message_id"])
    setup.work()

    assert "Ваня быстро освоился" in setup.notes(contact)[0]


def test_second_feedback_stage_gives_the_head_teacher_a_task_once(setup: Setup) -> None:
    lead, contact = setup.client_in_crm("Демин Саша", "+79231234567", status_id=1003)
    setup.teacher_writes("Демин Саша: первая обратная связь, всё хорошо")
    setup.work()
    event = LeadEvent(action="status", id=lead, status_id=1003, pipeline_id=1000)
    amo = setup.ctx.platforms.of(SCHOOL.id).amocrm  # type: ignore[union-attr]
    assert amo is not None

    on_lead_event(setup.ctx, SCHOOL, amo, event)
    on_lead_event(setup.ctx, SCHOOL, amo, event)

    tasks = setup.amo.get("/api/v4/tasks", headers={"Authorization": f"Bearer {AMO_TOKEN}"})
    found = tasks.json()["_embedded"]["tasks"]
    assert len(found) == 1
    assert found[0]["responsible_user_id"] == 8002 and found[0]["entity_id"] == lead
    assert "+79231234567" in found[0]["text"]
    assert "первая обратная связь, всё хорошо" in found[0]["text"]
    del contact


def answer(email: str, child: str, score: str, comment: str) -> list[str]:
    return ["23.11.2026 19:05:11", email, child, score, comment]


def test_a_survey_row_with_score_3_is_flagged_and_a_row_read_twice_is_routed_once(
    setup: Setup,
) -> None:
    setup.form_answers(
        answer("happy@example.org", "Петров Ваня", "10", "Всё понравилось"),
        answer("sad@example.org", "Демин Саша", "3", "Было скучно"),
    )

    first = poll_survey(setup.ctx, SCHOOL.id)
    setup.work()
    again = poll_survey(setup.ctx, SCHOOL.id)  # the same rows read again
    setup.work()

    assert (first.read, first.routed, again.read, again.routed) == (2, 2, 0, 0)
    posts = [m["text"] for m in setup.posts(FEEDBACK)]
    assert len(posts) == 2
    assert posts[0].startswith("🔴 НЕГАТИВНАЯ ОБРАТНАЯ СВЯЗЬ (оценка 3 из 10)")  # first, flagged
    assert "Было скучно" in posts[0] and "Демин Саша" in posts[0]
    assert "Всё понравилось" in posts[1] and "НЕГАТИВ" not in posts[1]
    assert len(setup.posts(PEDAGOGICAL)) == 1  # the route for scores up to 6


def test_a_survey_row_that_cannot_be_read_is_one_failure_naming_it(setup: Setup) -> None:
    setup.form_answers(
        answer("a@example.org", "Петров Ваня", "десять", "Отлично"),
        answer("b@example.org", "Демин Саша", "9", "Хорошо"),
    )

    result = poll_survey(setup.ctx, SCHOOL.id)
    poll_survey(setup.ctx, SCHOOL.id)
    setup.work()

    assert (result.routed, result.bad) == (1, 1)
    with setup.db.read() as conn:
        found = failures.listing(conn)
    assert len(found) == 1
    assert "row 2" in found[0]["error_message"] and "Оценка (0–10)" in found[0]["error_message"]
    assert found[0]["status"] == "open"  # polled twice: still one failure
    assert [("Хорошо" in m["text"]) for m in setup.posts(FEEDBACK)] == [True]


def test_a_second_feedback_task_made_without_an_answer_is_not_made_again(setup: Setup) -> None:
    lead, _contact = setup.client_in_crm("Демин Саша", "+79231234567", status_id=1003)
    event = LeadEvent(action="status", id=lead, status_id=1003, pipeline_id=1000)
    amo = setup.ctx.platforms.of(SCHOOL.id).amocrm  # type: ignore[union-attr]
    assert amo is not None
    # the first try reached amoCRM, and the worker died before it heard back
    real_add = amo.client.add_tasks

    def add_then_crash(tasks: Any) -> Any:
        real_add(tasks)
        raise SystemExit("worker killed")

    amo.client.add_tasks = add_then_crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        on_lead_event(setup.ctx, SCHOOL, amo, event)
    amo.client.add_tasks = real_add  # type: ignore[method-assign]

    on_lead_event(setup.ctx, SCHOOL, amo, event)  # the job again

    tasks = setup.amo.get("/api/v4/tasks", headers={"Authorization": f"Bearer {AMO_TOKEN}"})
    assert len(tasks.json()["_embedded"]["tasks"]) == 1
