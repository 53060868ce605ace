"""The Telegram sandbox's sendPhoto, as the Bot API answers it: a multipart upload (or the
file_id of a photo sent before) becomes a Message with `photo` and `caption`; the refusals are
Telegram's words."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.sandbox.telegram import TelegramSandboxConfig, create_app
from schoolsync.sandbox.telegram.multipart import MultipartError, parse_form

TOKEN = "123456:sandbox-bot-token"
SALES = -1001000000001
BOT = f"/telegram/bot{TOKEN}"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000030806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_client() -> TestClient:
    app = Starlette(routes=[Mount("/telegram", app=create_app(TelegramSandboxConfig()))])
    return TestClient(app)


def send_photo(client: TestClient, photo: bytes | None, **fields: Any) -> Any:
    files = {"photo": ("chart.png", photo, "image/png")} if photo is not None else None
    data = {"chat_id": str(SALES), **{k: str(v) for k, v in fields.items()}}
    if files is None:
        return client.post(f"{BOT}/sendPhoto", data=data, files={"x": ("x.txt", b"x")})
    return client.post(f"{BOT}/sendPhoto", data=data, files=files)


def test_an_uploaded_png_becomes_a_photo_message_with_its_caption() -> None:
    with make_client() as client:
        answer = send_photo(
            client, PNG, caption="<b>Неделя</b> 46", parse_mode="HTML", message_thread_id=7
        ).json()
        records = client.get(f"/telegram/_sandbox/messages?chat_id={SALES}").json()["messages"]

    assert answer["ok"] is True
    message = answer["result"]
    assert message["caption"] == "Неделя 46" and "text" not in message
    assert message["message_thread_id"] == 7
    (size,) = message["photo"]
    assert (size["width"], size["height"], size["file_size"]) == (2, 3, len(PNG))
    assert records[0]["kind"] == "photo" and records[0]["photo"]["file_id"] == size["file_id"]


def test_a_photo_sent_before_can_be_sent_again_by_its_file_id() -> None:
    with make_client() as client:
        first = send_photo(client, PNG).json()["result"]["photo"][0]["file_id"]
        again = client.post(f"{BOT}/sendPhoto", json={"chat_id": SALES, "photo": first})
        unknown = client.post(f"{BOT}/sendPhoto", json={"chat_id": SALES, "photo": "nope"})

    assert again.json()["result"]["photo"][0]["file_id"] == first
    assert unknown.status_code == 400
    assert unknown.json()["description"] == (
        "Bad Request: wrong file identifier/HTTP URL specified"
    )


def test_refusals_in_telegrams_words() -> None:
    with make_client() as client:
        no_photo = send_photo(client, None)
        not_image = send_photo(client, b"GIF89a not a png")
        long_caption = send_photo(client, PNG, caption="x" * 1025)
        no_chat = client.post(
            f"{BOT}/sendPhoto",
            data={"chat_id": "42"},
            files={"photo": ("chart.png", PNG, "image/png")},
        )
        sent = send_photo(client, PNG).json()["result"]
        edit = client.post(
            f"{BOT}/editMessageText",
            json={"chat_id": SALES, "message_id": sent["message_id"], "text": "x"},
        )

    assert no_photo.json()["description"] == "Bad Request: there is no photo in the request"
    assert not_image.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
    assert long_caption.json()["description"] == "Bad Request: message caption is too long"
    assert no_chat.json()["description"] == "Bad Request: chat not found"
    assert edit.json()["description"] == "Bad Request: there is no text in the message to edit"


def test_the_multipart_reader_keeps_binary_parts_whole() -> None:
    body = (
        b'--b0\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n-100\r\n'
        b'--b0\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--b0--\r\n"
    )
    fields = parse_form(body, "multipart/form-data; boundary=b0")
    assert fields["chat_id"] == "-100"
    photo = fields["photo"]
    assert not isinstance(photo, str) and photo.data == PNG and photo.filename == "a.png"
    try:
        parse_form(body[:-8], "multipart/form-data; boundary=b0")
    except MultipartError:
        pass
    else:
        raise AssertionError("a body without its closing delimiter must be refused")
