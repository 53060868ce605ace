"""Channels and feedback end to end: `schoolsync run` (real Redis, real processes) with the
Telegram, amoCRM and Sheets sandboxes it serves. What a school sees in its groups and CRM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e

ADMIN = "e2e-admin-token"
FEEDBACK, CONTENT = -1001000000004, -1001000000005


def school_yaml(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""
name: Школа E2E
accounts:
  amocrm:
    account: sandbox
    base_url: {base}/amocrm
    long_lived_token_env: sandbox_amocrm_token
    webhook_secret_env: sandbox_amocrm_webhook
  telegram:
    bot: sandbox
    base_url: {base}/telegram
    token_env: sandbox_telegram_token
    webhook_secret_env: sandbox_telegram_webhook
    timeout_s: 2
    per_chat_per_s: 30           # the sandbox group takes more than a real one (20 a second)
    per_group_per_min: 6000
channels:
  sales: -1001000000001
  feedback: {FEEDBACK}
  content: {CONTENT}
rules:
  feedback:
    negative_max: 6
"""


class Sandboxes:
    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def post(self, path: str, body: Any = None) -> Any:
        response = self.http.post(path, json=body if body is not None else {})
        response.raise_for_status()
        return response.json()

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        found = self.http.get(f"/telegram/_sandbox/messages?chat_id={chat_id}&present=1")
        return list(found.json()["messages"])


@pytest.fixture
def w10(
    service_factory: Callable[..., Service], tmp_path: Path
) -> Callable[[], tuple[Service, Sandboxes]]:
    def start() -> tuple[Service, Sandboxes]:
        port = free_port()
        (tmp_path / "schoolsync.yaml").write_text(school_yaml(port), encoding="utf-8")
        service = service_factory(
            SCHOOLSYNC_SANDBOX="true",
            SCHOOLSYNC_SANDBOX_PORT=str(port),
            SCHOOLSYNC_ADMIN_TOKEN=ADMIN,
        )
        sandboxes = Sandboxes(port)

        def up() -> bool:
            try:
                return sandboxes.http.get("/").status_code == 200
            except httpx.HTTPError:
                return False

        service.wait_for(up, timeout=30, what="the sandboxes")
        return service, sandboxes

    return start


def feedback(service: Service, item: dict[str, Any], token: str = ADMIN) -> httpx.Response:
    return service.http.post(
        "/admin/api/feedback", json=item, headers={"Authorization": f"Bearer {token}"}
    )


def test_500_messages_to_one_group_arrive_once_in_order_through_429s_and_lost_answers(
    w10: Callable[[], tuple[Service, Sandboxes]],
) -> None:
    service, sandboxes = w10()
    # Telegram takes a little less than we are configured to send: it will say 429
    sandboxes.post(
        "/telegram/_sandbox/limits",
        {"per_chat_per_s": 20, "per_chat_burst": 2, "per_group_per_min": 100_000},
    )
    assert feedback(service, {"id": "warm-up", "text": "первое сообщение"}).status_code == 202
    service.wait_for(lambda: len(sandboxes.messages(FEEDBACK)) == 1, timeout=60, what="warm-up")
    # from now on one answer in ten is lost after the message was posted
    sandboxes.post(
        "/telegram/_sandbox/faults", {"method": "sendMessage", "drop_rate": 0.1, "seed": 3}
    )

    for n in range(500):
        answer = feedback(service, {"id": f"fb-{n}", "text": f"отзыв номер {n}", "score": 9})
        assert answer.status_code == 202, answer.text
    assert (
        feedback(service, {"id": "fb-7", "text": "отзыв номер 7"}).json()["status"] == "duplicate"
    )

    def delivered() -> bool:
        rows = service.query("SELECT count(*) AS n FROM outbox WHERE state = 'sent'")
        return int(rows[0]["n"]) >= 501

    service.wait_for(delivered, timeout=240, what="501 messages delivered")

    in_chat = [m["text"].splitlines()[-1] for m in sandboxes.messages(FEEDBACK)]
    stored = service.query("SELECT text FROM outbox ORDER BY id")
    assert in_chat == [r["text"].splitlines()[-1] for r in stored]  # once each, in order
    assert sorted(in_chat) == sorted(
        ["первое сообщение"] + [f"отзыв номер {n}" for n in range(500)]
    )
    state = sandboxes.http.get("/telegram/_sandbox/state").json()
    assert state["rate_limited"] > 0 and state["faults_injected"] > 10  # both happened
    assert service.query("SELECT actor, error_message FROM failures") == []


def test_a_teachers_message_reaches_the_crm_and_the_feedback_group_by_webhook(
    w10: Callable[[], tuple[Service, Sandboxes]],
) -> None:
    service, sandboxes = w10()
    sandboxes.post(
        "/amocrm/_sandbox/leads",
        {
            "leads": [
                {
                    "name": "Заказ",
                    "_embedded": {
                        "contacts": [
                            {
                                "name": "Демин Саша",
                                "custom_fields_values": [
                                    {"field_code": "PHONE", "values": [{"value": "+79231234567"}]}
                                ],
                            }
                        ]
                    },
                }
            ]
        },
    )
    sandboxes.post(
        "/telegram/_sandbox/updates",
        {
            "chat_id": CONTENT,
            "text": "Демин Саша: <b>сам</b> собрал скворечник & покрасил",
            "from": {"id": 77, "first_name": "Кирилл", "last_name": "Бесчастный"},
        },
    )

    service.wait_for(
        lambda: len(sandboxes.messages(FEEDBACK)) == 1, timeout=60, what="the feedback post"
    )
    post = sandboxes.messages(FEEDBACK)[0]["text"]
    assert "Демин Саша" in post and "<b>сам</b> собрал скворечник & покрасил" in post
    contacts = sandboxes.http.get("/amocrm/_sandbox/contacts").json()
    contact = next(c for c in contacts if c["name"] == "Демин Саша")
    notes = sandboxes.http.get(
        f"/amocrm/api/v4/contacts/{contact['id']}/notes",
        headers={"Authorization": "Bearer sandbox-long-lived-token"},
    ).json()["_embedded"]["notes"]
    assert len(notes) == 1 and "скворечник" in notes[0]["params"]["text"]

    # a forged update is refused and kept for inspection
    forged = service.http.post(
        "/webhooks/telegram",
        content=b'{"update_id": 1}',
        headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
    )
    assert forged.status_code == 401
    rejected = service.query("SELECT source, reject_reason FROM inbox WHERE status = 'rejected'")
    assert [r["source"] for r in rejected] == ["telegram"]


def test_a_removed_bot_is_one_failure_naming_the_channel_and_nothing_is_lost(
    w10: Callable[[], tuple[Service, Sandboxes]],
) -> None:
    service, sandboxes = w10()
    sandboxes.post("/telegram/_sandbox/kick", {"chat_id": FEEDBACK})
    for n in range(5):
        assert feedback(service, {"id": f"k-{n}", "text": f"отзыв {n}"}).status_code == 202

    service.wait_for(
        lambda: bool(service.query("SELECT id FROM failures")), timeout=60, what="the failure"
    )
    service.wait_for(
        lambda: len(service.query("SELECT id FROM outbox WHERE state = 'pending'")) == 5,
        timeout=60,
        what="five waiting messages",
    )
    assert len(service.query("SELECT id FROM failures")) == 1
    failure_id = service.query("SELECT id FROM failures")[0]["id"]
    shown = " ".join(service.cli("failures", "show", str(failure_id)).stdout.split())
    assert "channel 'feedback'" in shown and "bot was kicked" in shown

    sandboxes.post("/telegram/_sandbox/kick", {"chat_id": FEEDBACK, "kicked": False})
    assert service.cli("failures", "replay", str(failure_id)).returncode == 0
    service.wait_for(
        lambda: len(sandboxes.messages(FEEDBACK)) == 5, timeout=60, what="the five messages"
    )
    in_chat = [m["text"].splitlines()[-1] for m in sandboxes.messages(FEEDBACK)]
    stored = service.query("SELECT text FROM outbox ORDER BY id")
    assert in_chat == [r["text"].splitlines()[-1] for r in stored]  # in the outbox's order
    assert sorted(in_chat) == [f"отзыв {n}" for n in range(5)]


def test_the_admin_api_refuses_without_a_token_and_explains_bad_input(
    w10: Callable[[], tuple[Service, Sandboxes]],
) -> None:
    service, _ = w10()
    assert service.http.post("/admin/api/feedback", json={"text": "x"}).status_code == 401
    assert feedback(service, {"text": "x"}, token="wrong").status_code == 401
    bad = feedback(service, {"text": "x", "score": 11})
    assert bad.status_code == 422 and "score" in bad.text
    assert feedback(service, {"text": "x", "school": "nope"}).status_code == 422
