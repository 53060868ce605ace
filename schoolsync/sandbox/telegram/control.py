"""`/_sandbox/*`: what tests and the demo use to read, feed and disturb the bot.

No auth, no limits, not counted; the token is never shown.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.telegram.bot import TelegramSandbox
from schoolsync.sandbox.telegram.faults import FaultRule
from schoolsync.sandbox.telegram.limits import LimitChange


def _refuse(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def _known_chat(sb: TelegramSandbox, value: Any) -> int | None:
    try:
        chat_id = int(value)
    except (TypeError, ValueError):
        return None
    return chat_id if chat_id in sb.config.chats else None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


async def get_messages(sb: TelegramSandbox, request: Request) -> Response:
    """Everything the bot sent, oldest first, each with its current `text` and `edited` and
    `deleted` flags (`edit_date` once edited); `?chat_id=` narrows to one chat, `?present=1`
    leaves deleted messages out."""
    wanted = request.query_params.get("chat_id")
    present = _truthy(request.query_params.get("present"))
    with sb.lock:
        sent = [dict(item) for item in sb.sent]
    if wanted:
        sent = [item for item in sent if str(item["chat_id"]) == wanted]
    if present:
        sent = [item for item in sent if not item["deleted"]]
    return JSONResponse({"messages": sent})


async def get_edits(sb: TelegramSandbox, request: Request) -> Response:
    """Every edit that went through, oldest first: `chat_id`, `message_id`, `text`,
    `raw_text`, `parse_mode`, `previous_text`, `edit_date`; `?chat_id=` narrows to one chat."""
    wanted = request.query_params.get("chat_id")
    with sb.lock:
        edits = [dict(item) for item in sb.edits]
    if wanted:
        edits = [item for item in edits if str(item["chat_id"]) == wanted]
    return JSONResponse({"edits": edits})


async def post_update(sb: TelegramSandbox, request: Request) -> Response:
    """A person writes in a group: `{"chat_id", "text", "from": {"id", "first_name",
    "username"}, "message_thread_id"?, "reply_to_message_id"?}`."""
    try:
        body = await _body(request)
    except ValueError:
        return _refuse("the body must be JSON")
    if not isinstance(body, dict):
        return _refuse("the body must be a JSON object")
    chat_id = _known_chat(sb, body.get("chat_id"))
    if chat_id is None:
        return _refuse("unknown chat_id")
    text = body.get("text")
    person = body.get("from") or {}
    if not isinstance(text, str) or not text or not isinstance(person, dict):
        return _refuse("text (a non-empty string) and from (an object) are required")
    try:
        sender: dict[str, Any] = {
            "id": int(person.get("id", 100_000_001)),
            "is_bot": False,
            "first_name": str(person.get("first_name") or "Гость"),
        }
        for key in ("last_name", "username"):
            if person.get(key):
                sender[key] = str(person[key])
        thread = body.get("message_thread_id")
        thread_id = None if thread is None else int(thread)
        reply = body.get("reply_to_message_id")
        reply_to = None if reply is None else int(reply)
    except (TypeError, ValueError):
        return _refuse("from.id, message_thread_id and reply_to_message_id must be integers")
    with sb.lock:
        message = sb.new_message(chat_id, sender, text, thread_id, reply_to)
        update = sb.post_update(message)
    return JSONResponse(update)


async def post_kick(sb: TelegramSandbox, request: Request) -> Response:
    """`{"chat_id", "kicked": true|false}`: remove the bot from a group (403 on send) or return it."""
    body = await _body(request)
    chat_id = _known_chat(sb, body.get("chat_id") if isinstance(body, dict) else None)
    if chat_id is None:
        return _refuse("unknown chat_id")
    with sb.lock:
        if body.get("kicked", True):
            sb.kicked.add(chat_id)
        else:
            sb.kicked.discard(chat_id)
    return JSONResponse({"kicked_from": sorted(sb.kicked)})


async def get_state(sb: TelegramSandbox, request: Request) -> Response:
    return JSONResponse(sb.state())


async def post_faults(sb: TelegramSandbox, request: Request) -> Response:
    try:
        rule = FaultRule.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad fault settings: {exc}")
    sb.faults.set(rule)
    return JSONResponse({"faults": sb.faults.rules()})


async def get_limits(sb: TelegramSandbox, request: Request) -> Response:
    return JSONResponse({"limits": sb.limits.settings()})


async def post_limits(sb: TelegramSandbox, request: Request) -> Response:
    """`{"per_chat_per_s"?, "per_chat_burst"?, "per_group_per_min"?, "global_per_s"?}`: change
    the flood limits until the next change or reset; answers the limits now in force."""
    try:
        change = LimitChange.model_validate(await _body(request))
    except (ValueError, ValidationError) as exc:
        return _refuse(f"bad limits: {exc}")
    sb.limits.configure(**change.model_dump(exclude_none=True))
    return JSONResponse({"limits": sb.limits.settings()})


async def delete_faults(sb: TelegramSandbox, request: Request) -> Response:
    sb.faults.clear()
    return JSONResponse({"faults": []})


async def post_reset(sb: TelegramSandbox, request: Request) -> Response:
    sb.reset()
    return JSONResponse({"reset": True})
