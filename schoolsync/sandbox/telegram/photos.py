"""`sendPhoto`: a picture from the bot in one of its groups.

The Bot API takes `photo` as a file uploaded with `multipart/form-data`, or as a string: the
`file_id` of a photo Telegram has (here: one the bot sent before) or an HTTP URL (not fetched
here: refused as a wrong identifier). An upload is at most 10 MB, a PNG or JPEG here (anything
else: `IMAGE_PROCESS_FAILED`). `caption` is 0-1024 characters after entity parsing
(`parse_mode` as in `sendMessage`). The answer is the Message with `photo` (an array of
PhotoSize; the sandbox keeps one size, the original) and `caption`.

Order of checks: parameters (400), membership (403), flood limits (429), as `sendMessage`.
The record in `/_sandbox/messages` has `"kind": "photo"`, the caption as `text` and the
upload's `photo` (`bytes`, `width`, `height`, `content_type`, `file_id`).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from starlette.responses import Response

from schoolsync.sandbox.telegram.bot import BotApiError, TelegramSandbox, ok, too_many_requests
from schoolsync.sandbox.telegram.html import EntityParseError, ParsedText, parse_html
from schoolsync.sandbox.telegram.messages import _bot_user, _member_of
from schoolsync.sandbox.telegram.multipart import Upload
from schoolsync.sandbox.telegram.params import Params, chat_id, int_param

MAX_CAPTION = 1024
MAX_UPLOAD = 10 * 1024 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def _size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG (its IHDR); a JPEG is taken as it is (0, 0 when unread)."""
    if data.startswith(_PNG) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(_JPEG):
        return 0, 0
    raise BotApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")


def _caption(params: Params) -> ParsedText | None:
    raw = params.get("caption")
    if raw is None or raw == "":
        return None
    parsed = ParsedText(str(raw))
    mode = str(params.get("parse_mode") or "")
    if mode.upper() == "HTML":
        try:
            parsed = parse_html(parsed.text)
        except EntityParseError as exc:
            raise BotApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
    elif mode and mode not in ("Markdown", "MarkdownV2"):
        raise BotApiError(400, f'Bad Request: unsupported parse_mode "{mode}"')
    parsed = parsed.strip()
    if len(parsed.text) > MAX_CAPTION:
        raise BotApiError(400, "Bad Request: message caption is too long")
    return parsed


def _photo(sb: TelegramSandbox, params: Params) -> dict[str, Any]:
    value = params.get("photo")
    if value is None or value == "":
        raise BotApiError(400, "Bad Request: there is no photo in the request")
    if isinstance(value, Upload):
        if not value.data:
            raise BotApiError(400, "Bad Request: file must be non-empty")
        if len(value.data) > MAX_UPLOAD:
            raise BotApiError(400, "Bad Request: file is too big")
        width, height = _size(value.data)
        digest = hashlib.sha256(value.data).hexdigest()
        return {
            "file_id": f"AgAC-{digest[:32]}",
            "file_unique_id": f"AQAD-{digest[:12]}",
            "width": width,
            "height": height,
            "file_size": len(value.data),
            "content_type": value.content_type,
        }
    with sb.lock:
        for item in sb.sent:
            photo = item.get("photo")
            if photo is not None and photo["file_id"] == str(value):
                return dict(photo)
    raise BotApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")


async def send_photo(sb: TelegramSandbox, params: Params) -> Response:
    chat = chat_id(sb, params)
    thread_id = int_param(params, "message_thread_id")
    if thread_id is not None and thread_id <= 0:
        raise BotApiError(400, "Bad Request: message thread not found")
    photo = _photo(sb, params)
    caption = _caption(params)
    _member_of(sb, chat)
    with sb.lock:
        retry_after = sb.limits.admit(chat)
        if retry_after:
            raise too_many_requests(retry_after)
        message = sb.new_message(chat, _bot_user(sb), "", thread_id)
        del message["text"]
        message["photo"] = [{k: v for k, v in photo.items() if k != "content_type"}]
        if caption is not None:
            message["caption"] = caption.text
        record: dict[str, Any] = {
            "message_id": message["message_id"],
            "chat_id": chat,
            "chat_title": message["chat"]["title"],
            "message_thread_id": thread_id,
            "kind": "photo",
            "text": caption.text if caption is not None else "",
            "raw_text": str(params.get("caption") or ""),
            "parse_mode": params.get("parse_mode"),
            "photo": {**photo, "bytes": photo["file_size"]},
            "date": message["date"],
            "edited": False,
            "deleted": False,
        }
        key = (chat, message["message_id"])
        sb.sent.append(record)
        sb.records[key] = record
        sb.contents[key] = (caption or ParsedText(""), None)
        sb.counts["sent"] += 1
    return ok(message)
