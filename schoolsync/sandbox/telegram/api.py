"""The Bot API: `/bot<token>/<method>`, GET or POST, parameters in the query string, a JSON
body or a form body (multipart is not supported here). Method names are case-insensitive.

Order of checks: token (401), method (404), injected faults, parameters (400), membership (403),
flood limits (429). Only a message that passes all of them is recorded and takes budget.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.telegram.bot import (
    BotApiError,
    TelegramSandbox,
    Webhook,
    ok,
    too_many_requests,
)
from schoolsync.sandbox.telegram.html import EntityParseError, html_to_text

MAX_TEXT = 4096
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Params = dict[str, Any]
Method = Callable[[TelegramSandbox, Params], Awaitable[Response]]


async def read_params(request: Request) -> Params:
    params: Params = dict(request.query_params)
    raw = await request.body()
    if not raw.strip():
        return params
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BotApiError(400, "Bad Request: can't parse JSON object") from exc
        if not isinstance(body, dict):
            raise BotApiError(400, "Bad Request: JSON object expected")
        params.update(body)
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        raise BotApiError(400, "Bad Request: unsupported content type")
    return params


def _int(params: Params, name: str, *, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BotApiError(400, f'Bad Request: field "{name}" must be of type Integer')
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BotApiError(400, f'Bad Request: field "{name}" must be of type Integer') from exc


def _flag(params: Params, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _str_list(params: Params, name: str) -> list[str]:
    value = params.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else []
        except ValueError as exc:
            raise BotApiError(400, f"Bad Request: can't parse {name} JSON array") from exc
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BotApiError(400, f"Bad Request: {name} must be an Array of String")
    return list(value)


def _chat_id(sb: TelegramSandbox, params: Params) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise BotApiError(400, "Bad Request: chat_id is empty")
    try:
        chat_id = int(value)
    except (TypeError, ValueError):
        chat_id = 0  # an @username: the sandbox chats have none
    if chat_id not in sb.config.chats:
        raise BotApiError(400, "Bad Request: chat not found")
    return chat_id


def _text(params: Params) -> str:
    raw = params.get("text")
    if raw is None:
        raise BotApiError(400, "Bad Request: message text is empty")
    text = str(raw)
    mode = str(params.get("parse_mode") or "")
    if mode.upper() == "HTML":
        try:
            text = html_to_text(text)
        except EntityParseError as exc:
            raise BotApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
    elif mode and mode not in ("Markdown", "MarkdownV2"):
        raise BotApiError(400, f'Bad Request: unsupported parse_mode "{mode}"')
    text = text.strip()
    if not text:
        raise BotApiError(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT:
        raise BotApiError(400, "Bad Request: message is too long")
    return text


# -- methods --------------------------------------------------------------------------------


async def get_me(sb: TelegramSandbox, params: Params) -> Response:
    return ok(sb.me())


async def send_message(sb: TelegramSandbox, params: Params) -> Response:
    chat_id = _chat_id(sb, params)
    thread_id = _int(params, "message_thread_id")
    if thread_id is not None and thread_id <= 0:
        raise BotApiError(400, "Bad Request: message thread not found")
    text = _text(params)
    reply = params.get("reply_parameters")
    reply_to = _int(reply, "message_id") if isinstance(reply, dict) else None
    reply_to = reply_to or _int(params, "reply_to_message_id")
    if chat_id in sb.kicked:
        raise BotApiError(403, "Forbidden: bot was kicked from the supergroup chat")
    with sb.lock:
        retry_after = sb.limits.admit(chat_id)
        if retry_after:
            raise too_many_requests(retry_after)
        message = sb.new_message(chat_id, _bot_user(sb), text, thread_id, reply_to)
        sb.sent.append(
            {
                "message_id": message["message_id"],
                "chat_id": chat_id,
                "chat_title": message["chat"]["title"],
                "message_thread_id": thread_id,
                "text": text,
                "raw_text": str(params.get("text")),
                "parse_mode": params.get("parse_mode"),
                "date": message["date"],
            }
        )
        sb.counts["sent"] += 1
    return ok(message)


def _bot_user(sb: TelegramSandbox) -> dict[str, Any]:
    me = sb.me()
    return {key: me[key] for key in ("id", "is_bot", "first_name", "username")}


async def get_updates(sb: TelegramSandbox, params: Params) -> Response:
    if sb.webhook is not None:
        raise BotApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = _int(params, "offset")
    limit = min(100, max(1, _int(params, "limit", default=100) or 100))
    timeout = max(0, _int(params, "timeout", default=0) or 0)
    deadline = anyio.current_time() + min(float(timeout), sb.config.long_poll_max_s)
    while True:
        updates = sb.take_updates(offset, limit)
        if updates or anyio.current_time() >= deadline or sb.webhook is not None:
            return ok(updates)
        await anyio.sleep(0.02)


async def set_webhook(sb: TelegramSandbox, params: Params) -> Response:
    url = str(params.get("url") or "")
    drop = _flag(params, "drop_pending_updates")
    if not url:
        sb.set_webhook(None, drop_pending=drop)
        return ok(True, "Webhook was deleted")
    if not url.startswith(("https://", "http://")):
        raise BotApiError(
            400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        )
    secret = params.get("secret_token")
    if secret is not None and secret != "" and not _SECRET.fullmatch(str(secret)):
        raise BotApiError(400, "Bad Request: secret token contains unallowed characters")
    max_connections = _int(params, "max_connections", default=40) or 40
    hook = Webhook(
        url=url,
        secret_token=str(secret) if secret else None,
        allowed_updates=_str_list(params, "allowed_updates"),
        max_connections=min(100, max(1, max_connections)),
    )
    sb.set_webhook(hook, drop_pending=drop)
    return ok(True, "Webhook was set")


async def delete_webhook(sb: TelegramSandbox, params: Params) -> Response:
    had = sb.webhook is not None
    sb.set_webhook(None, drop_pending=_flag(params, "drop_pending_updates"))
    return ok(True, "Webhook was deleted" if had else "Webhook is already deleted")


async def get_webhook_info(sb: TelegramSandbox, params: Params) -> Response:
    return ok(sb.webhook_info())


METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "getupdates": get_updates,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
}


# -- the endpoint ---------------------------------------------------------------------------


async def bot_api(sb: TelegramSandbox, request: Request) -> Response:
    """Token, method, faults, then the method itself; every refusal in Telegram's shape."""
    sb.count("requests")
    token = str(request.path_params["token"])
    if not hmac.compare_digest(token.encode(), sb.config.token.encode()):
        sb.count("errors")
        return BotApiError(401, "Unauthorized").response()
    name = str(request.path_params["method"])
    method = METHODS.get(name.lower())
    if method is None:
        sb.count("errors")
        return BotApiError(404, "Not Found").response()
    plan = sb.faults.plan(name)
    if plan.kind == "error":
        sb.count("faults")
        return _injected(plan.status).response()
    if plan.kind == "timeout" and not plan.apply:
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return _injected(504).response()
    try:
        response = await method(sb, await read_params(request))
    except BotApiError as error:
        sb.count("rate_limited" if error.code == 429 else "errors")
        response = error.response()
    if plan.kind == "timeout":
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return _injected(504).response()
    return response


def _injected(status: int) -> BotApiError:
    if status == 429:
        return too_many_requests(1)
    return BotApiError(status, _STATUS_TEXT.get(status, "Internal Server Error"))
