"""`sendMessage`, `editMessageText` and `deleteMessage`: the bot's own messages in its groups.

Order of checks in each: parameters (400), membership (403), the message itself (400), flood
limits (429). Only a request that passes all of them changes anything and takes budget.

- Editing: only a message the bot sent and nobody deleted («message to edit not found»; a
  person's message: «message can't be edited»). New text and entities equal to the current ones
  with the same reply markup (none when none is given, since an edit without `reply_markup`
  removes the keyboard) is «message is not modified: ...». An edit sets `edit_date` and answers
  the whole Message. `message_thread_id` is ignored, as Telegram does; `inline_message_id` is not
  modelled.
- Deleting: the bot's own messages only (the sandbox bot is no admin); a deleted message stays in
  `/_sandbox/messages` marked `"deleted": true` and is gone for the Bot API. The 48-hour limit on
  deleting is not modelled.
- Flood limits: see `limits`; an edit takes from the per-bot window only, a delete from none.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from schoolsync.sandbox.telegram.bot import BotApiError, TelegramSandbox, ok, too_many_requests
from schoolsync.sandbox.telegram.params import (
    Params,
    chat_id,
    int_param,
    message_id,
    message_text,
    reply_markup,
)

_KICKED = "Forbidden: bot was kicked from the supergroup chat"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def _bot_user(sb: TelegramSandbox) -> dict[str, Any]:
    me = sb.me()
    return {key: me[key] for key in ("id", "is_bot", "first_name", "username")}


def _member_of(sb: TelegramSandbox, chat: int) -> None:
    if chat in sb.kicked:
        raise BotApiError(403, _KICKED)


def _own_message(
    sb: TelegramSandbox, chat: int, message: int, *, not_found: str, not_own: str
) -> dict[str, Any]:
    """The bot's live message (chat, message); call with `sb.lock` held."""
    found = sb.messages.get((chat, message))
    if found is None:
        raise BotApiError(400, f"Bad Request: {not_found}")
    if (chat, message) not in sb.records:
        raise BotApiError(400, f"Bad Request: {not_own}")
    return found


async def send_message(sb: TelegramSandbox, params: Params) -> Response:
    chat = chat_id(sb, params)
    thread_id = int_param(params, "message_thread_id")
    if thread_id is not None and thread_id <= 0:
        raise BotApiError(400, "Bad Request: message thread not found")
    parsed = message_text(params)
    reply = params.get("reply_parameters")
    reply_to = int_param(reply, "message_id") if isinstance(reply, dict) else None
    reply_to = reply_to or int_param(params, "reply_to_message_id")
    _member_of(sb, chat)
    with sb.lock:
        retry_after = sb.limits.admit(chat)
        if retry_after:
            raise too_many_requests(retry_after)
        message = sb.new_message(chat, _bot_user(sb), parsed.text, thread_id, reply_to)
        record: dict[str, Any] = {
            "message_id": message["message_id"],
            "chat_id": chat,
            "chat_title": message["chat"]["title"],
            "message_thread_id": thread_id,
            "text": parsed.text,
            "raw_text": str(params.get("text")),
            "parse_mode": params.get("parse_mode"),
            "date": message["date"],
            "edited": False,
            "deleted": False,
        }
        key = (chat, message["message_id"])
        sb.sent.append(record)
        sb.records[key] = record
        sb.contents[key] = (parsed, None)
        sb.counts["sent"] += 1
    return ok(message)


async def edit_message_text(sb: TelegramSandbox, params: Params) -> Response:
    chat = chat_id(sb, params)
    message = message_id(params)
    parsed = message_text(params)
    markup = reply_markup(params)
    _member_of(sb, chat)
    with sb.lock:
        current = _own_message(
            sb,
            chat,
            message,
            not_found="message to edit not found",
            not_own="message can't be edited",
        )
        if "text" not in current:  # a photo (sendPhoto): its caption is editMessageCaption's
            raise BotApiError(400, "Bad Request: there is no text in the message to edit")
        key = (chat, message)
        if sb.contents[key] == (parsed, markup):
            raise BotApiError(400, _NOT_MODIFIED)
        retry_after = sb.limits.admit_global()
        if retry_after:
            raise too_many_requests(retry_after)
        edit_date = max(int(time.time()), current["date"])
        edited = {**current, "text": parsed.text, "edit_date": edit_date}
        edited.pop("reply_markup", None)
        if markup is not None:
            edited["reply_markup"] = markup
        sb.messages[key] = edited
        sb.contents[key] = (parsed, markup)
        record = sb.records[key]
        sb.edits.append(
            {
                "message_id": message,
                "chat_id": chat,
                "text": parsed.text,
                "raw_text": str(params.get("text")),
                "parse_mode": params.get("parse_mode"),
                "previous_text": record["text"],
                "edit_date": edit_date,
            }
        )
        record.update(
            text=parsed.text,
            raw_text=str(params.get("text")),
            parse_mode=params.get("parse_mode"),
            edited=True,
            edit_date=edit_date,
        )
        sb.counts["edits"] += 1
    return ok(edited)


async def delete_message(sb: TelegramSandbox, params: Params) -> Response:
    chat = chat_id(sb, params)
    message = message_id(params)
    _member_of(sb, chat)
    with sb.lock:
        _own_message(
            sb,
            chat,
            message,
            not_found="message to delete not found",
            not_own="message can't be deleted",
        )
        key = (chat, message)
        del sb.messages[key]
        sb.contents.pop(key, None)
        sb.records[key]["deleted"] = True
        sb.counts["deletes"] += 1
    return ok(True)
