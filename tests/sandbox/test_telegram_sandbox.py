"""The Telegram sandbox answers as the Bot API does for what our connector relies on: sending
into forum groups, HTML checks, flood limits, updates by polling or webhook, injected faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.sandbox.telegram import TelegramSandboxConfig, create_app
from schoolsync.sandbox.telegram.html import parse_html
from tests.conftest import serving

TOKEN = "123456:sandbox-bot-token"
SALES = -1001000000001
CONTENT = -1001000000005
BOT = f"/telegram/bot{TOKEN}"


def make_client(**settings: Any) -> TestClient:
    app = Starlette(routes=[Mount("/telegram", app=create_app(TelegramSandboxConfig(**settings)))])
    return TestClient(app)


def sent(client: TestClient, chat_id: int | None = None) -> list[dict[str, Any]]:
    query = f"?chat_id={chat_id}" if chat_id is not None else ""
    return client.get(f"/telegram/_sandbox/messages{query}").json()["messages"]


def state(client: TestClient) -> dict[str, Any]:
    return client.get("/telegram/_sandbox/state").json()


def person_writes(client: TestClient, text: str, **extra: Any) -> dict[str, Any]:
    body = {
        "chat_id": CONTENT,
        "text": text,
        "from": {"id": 5551, "first_name": "Мария", "username": "maria_teacher"},
        **extra,
    }
    response = client.post("/telegram/_sandbox/updates", json=body)
    assert response.status_code == 200
    return response.json()


# -- sendMessage ----------------------------------------------------------------------------


def test_send_with_html_into_a_topic_returns_the_message_and_records_it() -> None:
    with make_client() as client:
        response = client.post(
            f"{BOT}/sendMessage",
            json={
                "chat_id": SALES,
                "message_thread_id": 7,
                "parse_mode": "HTML",
                "text": '<b>Новый заказ</b> №900001 &amp; <a href="https://x.example">ссылка</a>'
                '\n<span class="tg-spoiler">тайна</span> &lt;Иван&gt;',
            },
        )
        assert response.status_code == 200
        answer = response.json()
        assert answer["ok"] is True
        message = answer["result"]
        assert message["message_id"] == 1
        assert message["chat"] == {
            "id": SALES,
            "title": "Продажи",
            "type": "supergroup",
            "is_forum": True,
        }
        assert message["message_thread_id"] == 7 and message["is_topic_message"] is True
        assert message["text"] == "Новый заказ №900001 & ссылка\nтайна <Иван>"
        assert message["from"]["is_bot"] is True and isinstance(message["date"], int)

        records = sent(client, SALES)
        assert [(r["message_id"], r["message_thread_id"], r["text"]) for r in records] == [
            (1, 7, "Новый заказ №900001 & ссылка\nтайна <Иван>")
        ]
        assert sent(client, CONTENT) == []


def test_form_body_and_string_chat_id_are_accepted() -> None:
    with make_client() as client:
        response = client.post(
            f"{BOT}/sendmessage", data={"chat_id": str(SALES), "text": "простой текст"}
        )
        assert response.json()["result"]["text"] == "простой текст"
        assert client.get(f"{BOT}/getMe").json()["result"]["id"] == 123456


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<p>абзац</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("Итого <b>жирно", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("Имя <Иван", 'Unsupported start tag "" at byte offset 7'),
        ("<b x", "Unclosed start tag at byte offset 0"),
        ('<span class="red">x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_bad_html_is_refused_and_not_recorded(html: str, detail: str) -> None:
    with make_client() as client:
        response = client.post(
            f"{BOT}/sendMessage", json={"chat_id": SALES, "text": html, "parse_mode": "HTML"}
        )
        assert response.status_code == 400
        assert response.json() == {
            "ok": False,
            "error_code": 400,
            "description": f"Bad Request: can't parse entities: {detail}",
        }
        assert sent(client) == []
        assert state(client)["errors"] == 1


def test_entities_count_utf16_units_and_normalise() -> None:
    parsed = parse_html(
        '😀 <b>Итог</b> <strong><a href="https://x.example">ссылка</a></strong>'
        '<pre><code class="language-python">x = 1</code></pre>'
        "<blockquote expandable>цитата</blockquote><b></b>"
    )
    assert parsed.text == "😀 Итог ссылкаx = 1цитата"
    assert [entity.to_json() for entity in parsed.entities] == [
        {"type": "bold", "offset": 3, "length": 4},  # the emoji is two UTF-16 units
        {"type": "bold", "offset": 8, "length": 6},
        {"type": "text_link", "offset": 8, "length": 6, "url": "https://x.example"},
        {"type": "pre", "offset": 14, "length": 5, "language": "python"},
        {"type": "expandable_blockquote", "offset": 19, "length": 6},
    ]
    assert parse_html("<b>x</b>") == parse_html("<strong>x</strong>") != parse_html("x")
    assert parse_html(" <i> x </i> ").strip() == parse_html("<i>x</i>")


def test_length_is_counted_after_entity_parsing() -> None:
    with make_client() as client:
        fits = "<b>" + "я" * 4096 + "</b>"
        assert client.post(
            f"{BOT}/sendMessage", json={"chat_id": SALES, "text": fits, "parse_mode": "HTML"}
        ).json()["ok"]
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "я" * 4097})
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: message is too long"
        empty = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "  "})
        assert empty.json()["description"] == "Bad Request: message text is empty"
        assert len(sent(client)) == 1


def test_unknown_chat_wrong_token_and_unknown_method() -> None:
    with make_client() as client:
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": -100999, "text": "x"})
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: chat not found"

        wrong = client.post("/telegram/bot123456:wrong/sendMessage", json={"chat_id": SALES})
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}

        unknown = client.post(f"{BOT}/sendPigeon", json={})
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        assert sent(client) == []


def test_a_kicked_bot_gets_403() -> None:
    with make_client() as client:
        client.post("/telegram/_sandbox/kick", json={"chat_id": SALES})
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"})
        assert response.status_code == 403
        assert (
            response.json()["description"] == "Forbidden: bot was kicked from the supergroup chat"
        )


# -- flood limits ---------------------------------------------------------------------------


def test_per_chat_burst_then_429_with_retry_after_and_nothing_recorded() -> None:
    with make_client(per_chat_burst=3) as client:
        answers = [
            client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": f"№{n}"})
            for n in range(5)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3].json()
        assert refused["error_code"] == 429
        assert refused["parameters"]["retry_after"] >= 1
        assert refused["description"] == (
            f"Too Many Requests: retry after {refused['parameters']['retry_after']}"
        )
        assert [m["text"] for m in sent(client)] == ["№0", "№1", "№2"]
        # another chat has its own budget
        other = client.post(f"{BOT}/sendMessage", json={"chat_id": CONTENT, "text": "ok"})
        assert other.status_code == 200
        counts = state(client)
        assert counts["sent"] == 4 and counts["rate_limited"] == 2


def test_per_group_per_minute_limit() -> None:
    with make_client(per_chat_per_s=1000.0, per_chat_burst=1000, per_group_per_min=5) as client:
        codes = [
            client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"}).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        retry_after = client.post(
            f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"}
        ).json()["parameters"]["retry_after"]
        assert 50 <= retry_after <= 60


# -- updates --------------------------------------------------------------------------------


def test_get_updates_returns_a_persons_message_and_offset_confirms() -> None:
    with make_client() as client:
        first = person_writes(client, "Иванов Петя был сегодня молодцом", message_thread_id=3)
        second = person_writes(client, "Ещё отзыв")
        updates = client.get(f"{BOT}/getUpdates").json()["result"]
        assert [u["update_id"] for u in updates] == [first["update_id"], second["update_id"]]
        message = updates[0]["message"]
        assert message["text"] == "Иванов Петя был сегодня молодцом"
        assert message["from"] == {
            "id": 5551,
            "is_bot": False,
            "first_name": "Мария",
            "username": "maria_teacher",
        }
        assert message["chat"]["id"] == CONTENT and message["message_thread_id"] == 3

        again = client.post(f"{BOT}/getUpdates", json={"offset": first["update_id"] + 1})
        assert [u["update_id"] for u in again.json()["result"]] == [second["update_id"]]
        confirmed = client.post(f"{BOT}/getUpdates", json={"offset": second["update_id"] + 1})
        assert confirmed.json()["result"] == []


def test_long_polling_wakes_when_a_message_arrives() -> None:
    with make_client() as client:
        timer = threading.Timer(0.3, lambda: person_writes(client, "пишу"))
        timer.start()
        started = time.monotonic()
        updates = client.post(f"{BOT}/getUpdates", json={"timeout": 5}).json()["result"]
        timer.join()
        assert [u["message"]["text"] for u in updates] == ["пишу"]
        assert time.monotonic() - started < 3


def test_a_reply_to_a_bot_message_carries_it() -> None:
    with make_client() as client:
        bot_message = client.post(
            f"{BOT}/sendMessage", json={"chat_id": CONTENT, "text": "Кто это?"}
        ).json()["result"]
        update = person_writes(client, "Петров", reply_to_message_id=bot_message["message_id"])
        assert update["message"]["reply_to_message"]["text"] == "Кто это?"
        assert update["message"]["message_id"] == bot_message["message_id"] + 1


@dataclass
class Receiver:
    """A local HTTP server standing in for our webhook endpoint."""

    status: int = 200
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[dict[str, str], Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.requests)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with box.lock:
                box.requests.append((dict(self.headers.items()), json.loads(body)))
                status = box.status
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/telegram"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def test_webhook_delivery_carries_the_secret_header(receiver: Receiver) -> None:
    with make_client() as client:
        queued = person_writes(client, "до вебхука")
        answer = client.post(
            f"{BOT}/setWebhook",
            json={"url": receiver.url, "secret_token": "s3cr3t_-X", "allowed_updates": ["message"]},
        ).json()
        assert answer == {"ok": True, "result": True, "description": "Webhook was set"}
        pushed = person_writes(client, "после вебхука")

        deliveries = receiver.wait_for(2)
        assert [body["update_id"] for _, body in deliveries] == [
            queued["update_id"],
            pushed["update_id"],
        ]
        headers = {k.lower(): v for k, v in deliveries[0][0].items()}
        assert headers["x-telegram-bot-api-secret-token"] == "s3cr3t_-X"
        assert headers["content-type"] == "application/json"

        conflict = client.get(f"{BOT}/getUpdates")
        assert conflict.status_code == 409
        info = client.get(f"{BOT}/getWebhookInfo").json()["result"]
        assert info["url"] == receiver.url and info["allowed_updates"] == ["message"]
        assert client.post(f"{BOT}/deleteWebhook").json()["description"] == "Webhook was deleted"
        assert client.get(f"{BOT}/getWebhookInfo").json()["result"]["url"] == ""


def test_webhook_is_retried_then_given_up(receiver: Receiver) -> None:
    receiver.status = 500
    with make_client(webhook_retries=2, webhook_retry_delay_s=0.01) as client:
        client.post(f"{BOT}/setWebhook", json={"url": receiver.url})
        person_writes(client, "не дойдёт")
        assert len(receiver.wait_for(3)) == 3
        deadline = time.monotonic() + 5
        while state(client)["webhook"]["failed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state(client)["webhook"] == {
            "pending": 0,
            "delivered": 0,
            "failed": 1,
            "attempts": 3,
        }
        info = client.get(f"{BOT}/getWebhookInfo").json()["result"]
        assert (
            info["last_error_message"]
            == "Wrong response from the webhook: 500 Internal Server Error"
        )
        assert receiver.url not in json.dumps(state(client))


# -- faults and reset -----------------------------------------------------------------------


def test_error_faults_refuse_before_anything_is_sent() -> None:
    with make_client() as client:
        client.post(
            "/telegram/_sandbox/faults",
            json={"method": "sendMessage", "error_rate": 1.0, "status": 502},
        )
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"})
        assert response.status_code == 502
        assert response.json() == {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        assert client.get(f"{BOT}/getMe").status_code == 200  # other methods unaffected
        assert sent(client) == [] and state(client)["faults"][0]["status"] == 502

        client.delete("/telegram/_sandbox/faults")
        assert client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"}).json()["ok"]


def test_a_timeout_applied_sends_the_message_but_loses_the_reply() -> None:
    with make_client() as client:
        client.post(
            "/telegram/_sandbox/faults",
            json={"method": "*", "timeout_rate": 1.0, "timeout_s": 0.05, "apply_on_timeout": True},
        )
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "дубль?"})
        assert response.status_code == 504
        assert [m["text"] for m in sent(client)] == ["дубль?"]

        client.post(
            "/telegram/_sandbox/faults",
            json={"method": "*", "timeout_rate": 1.0, "timeout_s": 0.05},
        )
        client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "потеряно"})
        assert [m["text"] for m in sent(client)] == ["дубль?"]


def test_seeded_error_rate_repeats_and_reset_clears_everything() -> None:
    def run(client: TestClient) -> list[int]:
        client.post("/telegram/_sandbox/reset")
        client.post(
            "/telegram/_sandbox/faults", json={"method": "getMe", "error_rate": 0.5, "seed": 7}
        )
        return [client.get(f"{BOT}/getMe").status_code for _ in range(20)]

    with make_client() as client:
        first, second = run(client), run(client)
        assert first == second and 200 in first and 500 in first
        client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"})
        person_writes(client, "y")
        client.post("/telegram/_sandbox/reset")
        counts = state(client)
        assert counts["sent"] == 0 and counts["pending_updates"] == 0 and counts["faults"] == []
        assert sent(client) == []


# -- editMessageText and deleteMessage ------------------------------------------------------

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def send(client: TestClient, text: str, chat_id: int = SALES, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{BOT}/sendMessage", json={"chat_id": chat_id, "text": text, **extra})
    assert response.status_code == 200, response.json()
    return response.json()["result"]


def edit(client: TestClient, message_id: int, text: str, **extra: Any) -> Any:
    body = {"chat_id": SALES, "message_id": message_id, "text": text, **extra}
    return client.post(f"{BOT}/editMessageText", json=body)


def delete(client: TestClient, message_id: int, chat_id: int = SALES) -> Any:
    body = {"chat_id": chat_id, "message_id": message_id}
    return client.post(f"{BOT}/deleteMessage", json=body)


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["ok"] is False and body["error_code"] == response.status_code
    return response.status_code, body["description"]


def test_an_edit_changes_the_text_sets_edit_date_and_is_recorded() -> None:
    with make_client() as client:
        first = send(client, "<b>Заказ</b> №900001: новый", parse_mode="HTML", message_thread_id=7)
        response = client.post(
            f"{BOT}/editMessageText",
            data={
                "chat_id": str(SALES),
                "message_id": str(first["message_id"]),
                "message_thread_id": "99",  # ignored
                "text": "<b>Заказ</b> №900001: <i>оплачен</i>",
                "parse_mode": "HTML",
            },
        )
        assert response.status_code == 200
        edited = response.json()["result"]
        assert edited["message_id"] == first["message_id"]
        assert edited["text"] == "Заказ №900001: оплачен"
        assert edited["message_thread_id"] == 7 and edited["chat"]["id"] == SALES
        assert isinstance(edited["edit_date"], int) and edited["edit_date"] >= first["date"]

        [record] = sent(client)
        assert record["message_id"] == first["message_id"]
        assert record["text"] == "Заказ №900001: оплачен"
        assert record["edited"] is True and record["deleted"] is False
        assert record["edit_date"] == edited["edit_date"]
        edits = client.get("/telegram/_sandbox/edits").json()["edits"]
        assert [(e["message_id"], e["previous_text"], e["text"]) for e in edits] == [
            (first["message_id"], "Заказ №900001: новый", "Заказ №900001: оплачен")
        ]
        assert client.get(f"/telegram/_sandbox/edits?chat_id={CONTENT}").json()["edits"] == []
        counts = state(client)
        assert counts["edits"] == 1 and counts["sent"] == 1


def test_not_modified_compares_the_parsed_text_and_its_entities() -> None:
    with make_client() as client:
        message_id = send(client, "<b>Итого</b>: 2 500 ₽", parse_mode="HTML")["message_id"]
        same = [
            ("<b>Итого</b>: 2 500 ₽", "HTML"),
            ("<strong>Итого</strong>: 2 500 ₽  ", "HTML"),  # same entity, trailing space trimmed
        ]
        for text, mode in same:
            assert error_of(edit(client, message_id, text, parse_mode=mode)) == (400, NOT_MODIFIED)
        # the same plain text without the bold entity is a change
        assert edit(client, message_id, "Итого: 2 500 ₽").status_code == 200
        assert error_of(edit(client, message_id, "Итого: 2 500 ₽")) == (400, NOT_MODIFIED)
        # a keyboard is a change too, and the same keyboard again is not
        keyboard = {"inline_keyboard": [[{"text": "Открыть", "url": "https://x.example"}]]}
        with_keyboard = edit(client, message_id, "Итого: 2 500 ₽", reply_markup=keyboard)
        assert with_keyboard.json()["result"]["reply_markup"] == keyboard
        again = edit(client, message_id, "Итого: 2 500 ₽", reply_markup=keyboard)
        assert error_of(again) == (400, NOT_MODIFIED)
        assert state(client)["edits"] == 2
        assert len(client.get("/telegram/_sandbox/edits").json()["edits"]) == 2


def test_edit_errors_in_telegrams_words() -> None:
    with make_client() as client:
        own = send(client, "от бота")["message_id"]
        person = person_writes(client, "от человека")["message"]["message_id"]
        gone = send(client, "удалю")["message_id"]
        assert delete(client, gone).json() == {"ok": True, "result": True}

        not_found = (400, "Bad Request: message to edit not found")
        assert error_of(edit(client, 999, "x")) == not_found
        assert error_of(edit(client, gone, "x")) == not_found
        person_edit = edit(client, person, "x", chat_id=CONTENT)
        assert error_of(person_edit) == (400, "Bad Request: message can't be edited")
        bad_html = edit(client, own, "<b>x", parse_mode="HTML")
        assert error_of(bad_html)[1].startswith("Bad Request: can't parse entities: ")
        assert error_of(edit(client, own, "x" * 4097)) == (400, "Bad Request: message is too long")
        no_id = client.post(f"{BOT}/editMessageText", json={"chat_id": SALES, "text": "x"})
        assert error_of(no_id) == (400, "Bad Request: message identifier is not specified")

        client.post("/telegram/_sandbox/kick", json={"chat_id": SALES})
        kicked = (403, "Forbidden: bot was kicked from the supergroup chat")
        assert error_of(edit(client, own, "новое")) == kicked
        assert error_of(delete(client, own)) == kicked
        assert [m["text"] for m in sent(client, SALES)] == ["от бота", "удалю"]
        assert state(client)["edits"] == 0


def test_delete_marks_the_message_deleted_and_present_hides_it() -> None:
    with make_client() as client:
        keep = send(client, "оставить")["message_id"]
        drop = send(client, "удалить")["message_id"]
        person = person_writes(client, "чужое")["message"]["message_id"]

        assert delete(client, drop).json() == {"ok": True, "result": True}
        not_found = (400, "Bad Request: message to delete not found")
        assert error_of(delete(client, drop)) == not_found
        assert error_of(delete(client, 12345)) == not_found
        cannot = (400, "Bad Request: message can't be deleted")
        assert error_of(delete(client, person, chat_id=CONTENT)) == cannot

        everything = sent(client)
        assert [(m["message_id"], m["deleted"]) for m in everything] == [
            (keep, False),
            (drop, True),
        ]
        present = client.get("/telegram/_sandbox/messages?present=1").json()["messages"]
        assert [m["text"] for m in present] == ["оставить"]
        assert state(client)["deletes"] == 1


def test_message_ids_run_per_chat_across_bot_and_people() -> None:
    with make_client() as client:
        first = send(client, "бот 1", chat_id=CONTENT)["message_id"]
        human = person_writes(client, "человек")["message"]["message_id"]
        second = send(client, "бот 2", chat_id=CONTENT)["message_id"]
        assert (first, human, second) == (1, 2, 3)
        assert send(client, "другая группа", chat_id=SALES)["message_id"] == 1
        assert delete(client, second, chat_id=CONTENT).json()["ok"]
        assert send(client, "бот 3", chat_id=CONTENT)["message_id"] == 4  # ids are not reused


def test_edits_take_from_the_per_bot_limit_only() -> None:
    with make_client(per_chat_per_s=0.01, per_chat_burst=1, global_per_s=4) as client:
        message_id = send(client, "0%")["message_id"]
        assert (
            client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"}).status_code
            == 429
        )
        codes = [edit(client, message_id, f"{n * 25}%").status_code for n in range(1, 5)]
        assert codes == [200, 200, 200, 429]  # the send and three edits fill 4 per second
        refused = edit(client, message_id, "100%").json()
        assert refused["error_code"] == 429 and refused["parameters"]["retry_after"] >= 1
        assert sent(client)[0]["text"] == "75%"


# -- flood limits at run time ---------------------------------------------------------------


def test_limits_changed_at_run_time_and_restored_by_reset() -> None:
    with make_client() as client:
        assert state(client)["limits"] == {
            "per_chat_per_s": 1.0,
            "per_chat_burst": 3,
            "per_group_per_min": 20,
            "global_per_s": 30,
        }
        codes = [
            client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "x"}).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]

        changed = client.post(
            "/telegram/_sandbox/limits", json={"per_chat_per_s": 100.0, "per_chat_burst": 50}
        )
        assert changed.status_code == 200
        assert changed.json()["limits"]["per_chat_burst"] == 50
        assert state(client)["limits"]["per_chat_per_s"] == 100.0
        assert state(client)["limits"]["per_group_per_min"] == 20
        codes = [
            client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "y"}).status_code
            for _ in range(5)
        ]
        assert codes == [200] * 5

        client.post("/telegram/_sandbox/limits", json={"per_group_per_min": 8})
        over = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "z"})
        assert over.status_code == 429  # 8 sent in the last minute
        for bad in ({"per_chat_burst": 0}, {"global_per_s": "many"}, {"per_second": 5}):
            assert client.post("/telegram/_sandbox/limits", json=bad).status_code == 400
        client.post("/telegram/_sandbox/reset")
        assert client.get("/telegram/_sandbox/limits").json()["limits"]["per_chat_burst"] == 3


# -- lost answers ---------------------------------------------------------------------------


def test_a_drop_stores_the_message_but_the_client_gets_no_valid_answer() -> None:
    with make_client() as client:
        client.post("/telegram/_sandbox/faults", json={"method": "sendMessage", "drop_rate": 1.0})
        response = client.post(f"{BOT}/sendMessage", json={"chat_id": SALES, "text": "дубль?"})
        assert response.status_code == 502 and response.content == b""
        assert [m["text"] for m in sent(client)] == ["дубль?"]
        counts = state(client)
        assert counts["sent"] == 1 and counts["faults_injected"] == 1
        assert state(client)["faults"][0]["drop_rate"] == 1.0
        # the id was spent: a retry makes a second message
        client.delete("/telegram/_sandbox/faults")
        assert send(client, "дубль?")["message_id"] == 2


def test_a_drop_over_real_http_gives_no_telegram_answer() -> None:
    config = TelegramSandboxConfig()
    with serving(create_app(config)) as base_url:
        httpx.post(f"{base_url}/_sandbox/faults", json={"drop_rate": 1.0})
        response = httpx.post(
            f"{base_url}/bot{config.token}/sendMessage", json={"chat_id": SALES, "text": "x"}
        )
        assert response.status_code == 502 and response.content == b""
        with pytest.raises(ValueError):
            response.json()
        recorded = httpx.get(f"{base_url}/_sandbox/messages").json()["messages"]
        assert [m["text"] for m in recorded] == ["x"]


def test_a_seeded_drop_rate_repeats() -> None:
    def run(client: TestClient) -> list[int]:
        client.post("/telegram/_sandbox/reset")
        client.post(
            "/telegram/_sandbox/limits", json={"per_chat_per_s": 1000.0, "per_chat_burst": 1000}
        )
        client.post("/telegram/_sandbox/faults", json={"drop_rate": 0.5, "seed": 3})
        return [
            client.post(f"{BOT}/sendMessage", json={"chat_id": CONTENT, "text": "x"}).status_code
            for _ in range(16)
        ]

    with make_client() as client:
        first, second = run(client), run(client)
        assert first == second and 200 in first and 502 in first
        assert len(sent(client)) == 16  # dropped or not, every message was stored
