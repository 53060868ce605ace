"""Reading Bot API parameters: query string, JSON body, form body or multipart form (files as
`multipart.Upload`), and the checks shared by the methods, each refusal in Telegram's words."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from schoolsync.sandbox.telegram.bot import BotApiError, TelegramSandbox
from schoolsync.sandbox.telegram.html import EntityParseError, ParsedText, parse_html
from schoolsync.sandbox.telegram.multipart import MultipartError, parse_form

MAX_TEXT = 4096

Params = dict[str, Any]


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
    elif kind == "multipart/form-data":
        try:
            params.update(parse_form(raw, request.headers.get("content-type", "")))
        except MultipartError as exc:
            raise BotApiError(400, "Bad Request: can't parse multipart/form-data") from exc
    else:
        raise BotApiError(400, "Bad Request: unsupported content type")
    return params


def int_param(params: Params, name: str, *, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BotApiError(400, f'Bad Request: field "{name}" must be of type Integer')
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BotApiError(400, f'Bad Request: field "{name}" must be of type Integer') from exc


def flag(params: Params, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def str_list(params: Params, name: str) -> list[str]:
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


def chat_id(sb: TelegramSandbox, params: Params) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise BotApiError(400, "Bad Request: chat_id is empty")
    try:
        found = int(value)
    except (TypeError, ValueError):
        found = 0  # an @username: the sandbox chats have none
    if found not in sb.config.chats:
        raise BotApiError(400, "Bad Request: chat not found")
    return found


def message_id(params: Params) -> int:
    found = int_param(params, "message_id")
    if found is None:
        raise BotApiError(400, "Bad Request: message identifier is not specified")
    return found


def message_text(params: Params) -> ParsedText:
    """`text` after `parse_mode` (HTML parsed; Markdown taken as it is) and trimming."""
    raw = params.get("text")
    if raw is None:
        raise BotApiError(400, "Bad Request: message text is empty")
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
    if not parsed.text:
        raise BotApiError(400, "Bad Request: message text is empty")
    if len(parsed.text) > MAX_TEXT:
        raise BotApiError(400, "Bad Request: message is too long")
    return parsed


def reply_markup(params: Params) -> dict[str, Any] | None:
    """The `reply_markup` object, from JSON or a form's JSON string; None when absent."""
    value = params.get("reply_markup")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    return value
