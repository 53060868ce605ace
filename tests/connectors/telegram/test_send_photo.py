"""TelegramClient.send_photo: the wire format (multipart upload, form fields), the answer read
back, errors as for sendMessage; and against the Telegram sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest
import respx

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.core.errors import NotFoundError, RejectedError
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sandbox.telegram import create_app as telegram_app
from tests.conftest import serving

BASE = "https://api.telegram.org"
TOKEN = "7000000001:AAHsecretPartOfTheBotToken_x-9"
SEND_PHOTO = f"{BASE}/bot{TOKEN}/sendPhoto"
CHAT = -1001234567890
# a 1x1 PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
ANSWER = {
    "ok": True,
    "result": {
        "message_id": 77,
        "date": 1763800000,
        "chat": {"id": CHAT, "type": "supergroup", "title": "Отчёты"},
        "from": {"id": 7000000001, "is_bot": True, "first_name": "School"},
        "message_thread_id": 5,
        "photo": [
            {"file_id": "AgAC-1", "file_unique_id": "AQAD-1", "width": 1, "height": 1},
            {"file_id": "AgAC-2", "file_unique_id": "AQAD-2", "width": 1, "height": 1},
        ],
        "caption": "Неделя 2026-W46",
    },
}


@pytest.fixture
def client() -> Iterator[TelegramClient]:
    http = build_client(BASE, timeout=2)
    yield TelegramClient(http, Endpoint("telegram", "school_bot"), TOKEN)
    http.close()


def form_parts(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """name -> (filename, content type, bytes) of each part of a multipart body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    found: dict[str, tuple[str | None, str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        found[name] = (part.get_filename(), part.get_content_type(), payload)
    return found


@respx.mock
def test_send_photo_uploads_the_png_as_multipart_with_the_fields(client: TelegramClient) -> None:
    route = respx.post(SEND_PHOTO).mock(return_value=httpx.Response(200, json=ANSWER))

    sent = client.send_photo(CHAT, PNG, caption="<b>Неделя</b> 2026-W46", thread_id=5)

    assert (sent.message_id, sent.chat_id, sent.message_thread_id) == (77, CHAT, 5)
    request = route.calls[0].request
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = form_parts(request)
    assert parts["photo"] == ("chart.png", "image/png", PNG)
    assert parts["chat_id"][2] == str(CHAT).encode()
    assert parts["caption"][2].decode() == "<b>Неделя</b> 2026-W46"
    assert parts["parse_mode"][2] == b"HTML"
    assert parts["message_thread_id"][2] == b"5"


@respx.mock
def test_send_photo_errors_are_the_clients_and_never_hold_the_token(
    client: TelegramClient,
) -> None:
    respx.post(SEND_PHOTO).mock(
        side_effect=[
            httpx.Response(
                400,
                json={"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
            ),
            httpx.Response(
                400,
                json={
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: IMAGE_PROCESS_FAILED",
                },
            ),
        ]
    )
    with pytest.raises(NotFoundError) as missing:
        client.send_photo(CHAT, PNG)
    with pytest.raises(RejectedError) as refused:
        client.send_photo(CHAT, PNG)
    assert "IMAGE_PROCESS_FAILED" in str(refused.value)
    for caught in (missing.value, refused.value):
        assert TOKEN.split(":")[1] not in str(caught) and "sendPhoto" in str(caught)
    with pytest.raises(ValueError):
        client.send_photo(CHAT, b"")


def test_send_photo_against_the_sandbox() -> None:
    sandbox_token = "123456:sandbox-bot-token"
    group = -1001000000002
    with serving(telegram_app(TelegramSandboxConfig())) as base:
        http = build_client(base, timeout=5)
        client = TelegramClient(http, Endpoint("telegram", "sandbox"), sandbox_token)
        sent = client.send_photo(group, PNG, caption="<b>Неделя</b>")
        records = httpx.get(f"{base}/_sandbox/messages?chat_id={group}").json()["messages"]
        http.close()
    assert records == [records[0]] and records[0]["message_id"] == sent.message_id
    assert records[0]["kind"] == "photo" and records[0]["text"] == "Неделя"
    assert records[0]["photo"]["bytes"] == len(PNG)
    assert (records[0]["photo"]["width"], records[0]["photo"]["height"]) == (1, 1)
