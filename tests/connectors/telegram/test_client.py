"""TelegramClient against Bot API answers (tests/fixtures/telegram), with respx."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.telegram.client import ChatMigratedError, TelegramClient
from schoolsync.connectors.telegram.text import MESSAGE_LIMIT
from schoolsync.core.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    SchoolsyncError,
    UnavailableError,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "telegram"
BASE = "https://api.telegram.org"
TOKEN = "7000000001:AAHsecretPartOfTheBotToken_x-9"
SECRET_PART = TOKEN.split(":", 1)[1]
SEND = f"{BASE}/bot{TOKEN}/sendMessage"
CHAT = -1001234567890


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def failure(name: str) -> httpx.Response:
    body = fixture(name)
    return httpx.Response(body["error_code"], json=body)


class RecordingPacer:
    def __init__(self) -> None:
        self.acquired: list[float] = []
        self.penalties: list[float] = []

    def acquire(self, *, max_wait: float) -> None:
        self.acquired.append(max_wait)

    def penalize(self, retry_after: float) -> None:
        self.penalties.append(retry_after)


@pytest.fixture
def pacer() -> RecordingPacer:
    return RecordingPacer()


@pytest.fixture
def client(pacer: RecordingPacer) -> Iterator[TelegramClient]:
    http = build_client(BASE, timeout=2)
    yield TelegramClient(http, Endpoint("telegram", "school_bot"), TOKEN, pacer)
    http.close()


def echo_message(request: httpx.Request) -> httpx.Response:
    """A sendMessage answer carrying back what was sent (like Telegram does)."""
    body = json.loads(request.content)
    echo.counter += 1
    result = fixture("send_message_ok.json")["result"] | {
        "message_id": 100 + echo.counter,
        "text": body["text"],
        "message_thread_id": body.get("message_thread_id"),
    }
    return httpx.Response(200, json={"ok": True, "result": result})


class _Echo:
    counter = 0


echo = _Echo()


def sent_bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


@respx.mock
def test_send_message(client: TelegramClient, pacer: RecordingPacer) -> None:
    route = respx.post(SEND).mock(
        return_value=httpx.Response(200, json=fixture("send_message_ok.json"))
    )
    sent = client.send_message(CHAT, "<b>Новый заказ</b> 30046", thread_id=17)
    assert sent[0].message_id == 4312
    assert sent[0].chat_id == CHAT
    assert sent[0].message_thread_id == 17
    assert sent_bodies(route) == [
        {
            "chat_id": CHAT,
            "text": "<b>Новый заказ</b> 30046",
            "parse_mode": "HTML",
            "message_thread_id": 17,
        }
    ]
    assert route.calls[0].request.headers["content-type"] == "application/json"
    assert pacer.acquired == [5.0]


@respx.mock
def test_send_message_silently_to_a_username(client: TelegramClient) -> None:
    route = respx.post(SEND).mock(
        return_value=httpx.Response(200, json=fixture("send_message_ok.json"))
    )
    client.send_message("@school_channel", "hi", disable_notification=True)
    assert sent_bodies(route) == [
        {
            "chat_id": "@school_channel",
            "text": "hi",
            "parse_mode": "HTML",
            "disable_notification": True,
        }
    ]


@respx.mock
def test_long_text_is_sent_in_parts_in_order(client: TelegramClient, pacer: RecordingPacer) -> None:
    route = respx.post(SEND).mock(side_effect=echo_message)
    lines = [f"{i:05d} " + "ж" * 94 for i in range(100)]  # 100 lines of 100 characters
    sent = client.send_message(CHAT, "\n".join(lines), thread_id=3)
    bodies = sent_bodies(route)
    assert len(bodies) == 3
    assert all(len(body["text"]) <= MESSAGE_LIMIT for body in bodies)
    assert "\n".join(body["text"] for body in bodies) == "\n".join(lines)
    assert all(body["message_thread_id"] == 3 for body in bodies)
    assert [m.message_id for m in sent] == sorted(m.message_id for m in sent)
    assert len(pacer.acquired) == 3


def test_empty_text_is_refused(client: TelegramClient) -> None:
    with pytest.raises(ValueError, match="needs some text"):
        client.send_message(CHAT, " \n ")


@respx.mock
def test_429_is_rate_limited_and_penalizes(client: TelegramClient, pacer: RecordingPacer) -> None:
    respx.post(SEND).mock(return_value=failure("error_429.json"))
    with pytest.raises(RateLimitedError) as caught:
        client.send_message(CHAT, "hi")
    assert caught.value.retry_after == 5
    assert caught.value.status == 429
    assert pacer.penalties == [5]
    assert "Too Many Requests" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error_400_chat_not_found.json", NotFoundError),
        ("error_400_thread_not_found.json", NotFoundError),
        ("error_400_too_long.json", RejectedError),
        ("error_401.json", AuthError),
        ("error_403_blocked.json", AuthError),
    ],
)
@respx.mock
def test_failures_map_to_errors(
    client: TelegramClient, pacer: RecordingPacer, name: str, error: type[SchoolsyncError]
) -> None:
    respx.post(SEND).mock(return_value=failure(name))
    with pytest.raises(error) as caught:
        client.send_message(CHAT, "hi")
    assert type(caught.value) is error
    description = fixture(name)["description"]
    assert description in str(caught.value)
    assert "telegram POST /sendMessage" in str(caught.value)
    assert caught.value.platform == "telegram"
    assert caught.value.account == "school_bot"
    assert pacer.penalties == []


@respx.mock
def test_migrated_group_carries_the_new_chat_id(client: TelegramClient) -> None:
    respx.post(SEND).mock(return_value=failure("error_400_migrated.json"))
    with pytest.raises(ChatMigratedError) as caught:
        client.send_message(-4001234, "hi")
    assert isinstance(caught.value, RejectedError)
    assert caught.value.new_chat_id == -1009876543210


@respx.mock
def test_server_errors_and_timeouts_are_unavailable(client: TelegramClient) -> None:
    respx.post(SEND).mock(
        side_effect=[
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            httpx.ReadTimeout("timed out"),
            httpx.ConnectError("connection refused"),
        ]
    )
    for expected in ("failed on the platform's side", "timed out (ReadTimeout)", "unreachable"):
        with pytest.raises(
            UnavailableError, match=expected.replace("(", r"\(").replace(")", r"\)")
        ):
            client.send_message(CHAT, "hi")


@respx.mock
def test_ok_false_with_200_and_junk_are_rejected(client: TelegramClient) -> None:
    respx.post(SEND).mock(
        side_effect=[
            httpx.Response(200, json={"ok": False, "description": "odd"}),
            httpx.Response(200, text="not json"),
            httpx.Response(200, json={"ok": True, "result": {"message_id": "x"}}),
        ]
    )
    for _ in range(3):
        with pytest.raises(RejectedError):
            client.send_message(CHAT, "hi")


@respx.mock
def test_get_updates(client: TelegramClient) -> None:
    route = respx.post(f"{BASE}/bot{TOKEN}/getUpdates").mock(
        return_value=httpx.Response(200, json=fixture("get_updates.json"))
    )
    updates = client.get_updates(872401231, timeout=25)
    assert [u.update_id for u in updates] == [872401231, 872401232, 872401233]
    assert updates[0].message is not None and updates[0].message.text is not None
    assert updates[1].edited_message is not None
    assert updates[2].message is None  # a kind we do not type
    assert sent_bodies(route) == [{"offset": 872401231, "timeout": 25, "limit": 100}]
    timeouts = route.calls[0].request.extensions["timeout"]
    assert timeouts["read"] == 2 + 25  # the long poll fits in the read timeout


@respx.mock
def test_get_updates_while_a_webhook_is_set(client: TelegramClient) -> None:
    respx.post(f"{BASE}/bot{TOKEN}/getUpdates").mock(
        return_value=failure("error_409_webhook_active.json")
    )
    with pytest.raises(RejectedError, match="webhook is active"):
        client.get_updates(None)


@respx.mock
def test_set_and_delete_webhook_and_get_me(client: TelegramClient) -> None:
    set_route = respx.post(f"{BASE}/bot{TOKEN}/setWebhook").mock(
        return_value=httpx.Response(200, json=fixture("set_webhook_ok.json"))
    )
    delete_route = respx.post(f"{BASE}/bot{TOKEN}/deleteWebhook").mock(
        return_value=httpx.Response(200, json={"ok": True, "result": True})
    )
    respx.post(f"{BASE}/bot{TOKEN}/getMe").mock(
        return_value=httpx.Response(200, json=fixture("get_me.json"))
    )
    client.set_webhook("https://sync.school.ru/webhooks/telegram", "s3cr3t_-", ["message"])
    client.delete_webhook()
    assert sent_bodies(set_route) == [
        {
            "url": "https://sync.school.ru/webhooks/telegram",
            "secret_token": "s3cr3t_-",
            "allowed_updates": ["message"],
        }
    ]
    assert sent_bodies(delete_route) == [{"drop_pending_updates": False}]
    assert client.get_me().username == "school_sync_bot"


# --- the token never leaks ---------------------------------------------------------------------


def _leaks(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for attr in ("message", "request_id"):
        texts.append(str(getattr(exc, attr, "")))
    chained = exc.__cause__ or exc.__context__
    if chained is not None and not exc.__suppress_context__:
        texts.extend([str(chained), repr(chained), repr(getattr(chained, "request", None))])
    return [t for t in texts if SECRET_PART in t or f"/bot{TOKEN}" in t]


ANSWERS: list[Callable[[], httpx.Response]] = [
    lambda: failure("error_429.json"),
    lambda: failure("error_400_chat_not_found.json"),
    lambda: failure("error_400_thread_not_found.json"),
    lambda: failure("error_400_too_long.json"),
    lambda: failure("error_400_migrated.json"),
    lambda: failure("error_401.json"),
    lambda: failure("error_403_blocked.json"),
    lambda: httpx.Response(500, json={"ok": False, "error_code": 500, "description": "Internal"}),
    lambda: httpx.Response(502, text="bad gateway"),
    lambda: httpx.Response(404, json={"ok": False, "error_code": 404, "description": "Not Found"}),
    lambda: httpx.Response(302, headers={"Location": f"{BASE}/bot{TOKEN}/x"}),
    lambda: httpx.Response(200, json={"ok": False, "description": f"echo /bot{TOKEN}/"}),
    lambda: httpx.Response(200, text="not json"),
    lambda: httpx.Response(200, json={"ok": True, "result": {"unexpected": 1}}),
]
RAISES: list[Exception] = [
    httpx.ReadTimeout("timed out"),
    httpx.ConnectTimeout("timed out"),
    httpx.ConnectError("connection refused"),
    httpx.RemoteProtocolError("peer closed"),
]


@pytest.mark.parametrize("answer", [*ANSWERS, *RAISES])
@respx.mock
def test_token_never_in_errors_or_logs(
    client: TelegramClient, answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(url__startswith=f"{BASE}/bot{TOKEN}/").mock(
        side_effect=answer if isinstance(answer, Exception) else lambda request: answer()
    )
    calls: list[Callable[[], object]] = [
        lambda: client.send_message(CHAT, "hi"),
        lambda: client.get_updates(None),
        lambda: client.get_me(),
        lambda: client.set_webhook("https://x.ru/webhooks/telegram", "s", ["message"]),
    ]
    raised = 0
    for call in calls:
        try:
            call()
        except SchoolsyncError as exc:
            raised += 1
            assert _leaks(exc) == []
            assert TOKEN.split(":")[0] not in str(exc)
    assert raised >= 3  # setWebhook takes any result, even an unexpected one
    logged = [record.getMessage() for record in caplog.records]
    if not isinstance(answer, Exception):
        assert any("HTTP Request: POST" in line for line in logged)  # httpx logged the URL...
    assert not [line for line in logged if SECRET_PART in line]  # ...without the token
    assert repr(client) == "TelegramClient(bot='school_bot')"


@pytest.mark.parametrize(
    ("status", "description", "expected"),
    [
        (400, "Bad Request: message is not modified: specified new message content", "SAME"),
        (400, "Bad Request: message can't be edited", "OTHER"),
        # a photo (a report's chart) where a lost text message might have been
        (400, "Bad Request: there is no text in the message to edit", "OTHER"),
        (400, "Bad Request: message to edit not found", "MISSING"),
    ],
)
@respx.mock
def test_probe_tells_our_text_from_other_messages(
    client: TelegramClient, status: int, description: str, expected: str
) -> None:
    respx.post(f"{BASE}/bot{TOKEN}/editMessageText").mock(
        return_value=httpx.Response(
            status, json={"ok": False, "error_code": status, "description": description}
        )
    )
    assert client.probe_text(CHAT, 42, "текст").name == expected
