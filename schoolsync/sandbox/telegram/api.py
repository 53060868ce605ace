"""The Bot API: `/bot<token>/<method>`, GET or POST, parameters in the query string, a JSON
body, a form body or a multipart form (uploads: `sendPhoto`). Method names are case-insensitive.

Order of checks: token (401), method (404), injected faults, then the method's own (parameters
400, membership 403, the message 400, flood limits 429; see `messages`). Only a request that
passes all of them changes anything and takes budget. An injected drop answers 502 with an
empty body after the method ran, whatever the method answered (see `faults`).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

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
from schoolsync.sandbox.telegram.messages import delete_message, edit_message_text, send_message
from schoolsync.sandbox.telegram.params import Params, flag, int_param, read_params, str_list
from schoolsync.sandbox.telegram.photos import send_photo

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

Method = Callable[[TelegramSandbox, Params], Awaitable[Response]]


# -- methods --------------------------------------------------------------------------------


async def get_me(sb: TelegramSandbox, params: Params) -> Response:
    return ok(sb.me())


async def get_updates(sb: TelegramSandbox, params: Params) -> Response:
    if sb.webhook is not None:
        raise BotApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = int_param(params, "offset")
    limit = min(100, max(1, int_param(params, "limit", default=100) or 100))
    timeout = max(0, int_param(params, "timeout", default=0) or 0)
    deadline = anyio.current_time() + min(float(timeout), sb.config.long_poll_max_s)
    while True:
        updates = sb.take_updates(offset, limit)
        if updates or anyio.current_time() >= deadline or sb.webhook is not None:
            return ok(updates)
        await anyio.sleep(0.02)


async def set_webhook(sb: TelegramSandbox, params: Params) -> Response:
    url = str(params.get("url") or "")
    drop = flag(params, "drop_pending_updates")
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
    max_connections = int_param(params, "max_connections", default=40) or 40
    hook = Webhook(
        url=url,
        secret_token=str(secret) if secret else None,
        allowed_updates=str_list(params, "allowed_updates"),
        max_connections=min(100, max(1, max_connections)),
    )
    sb.set_webhook(hook, drop_pending=drop)
    return ok(True, "Webhook was set")


async def delete_webhook(sb: TelegramSandbox, params: Params) -> Response:
    had = sb.webhook is not None
    sb.set_webhook(None, drop_pending=flag(params, "drop_pending_updates"))
    return ok(True, "Webhook was deleted" if had else "Webhook is already deleted")


async def get_webhook_info(sb: TelegramSandbox, params: Params) -> Response:
    return ok(sb.webhook_info())


METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "editmessagetext": edit_message_text,
    "deletemessage": delete_message,
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
    if plan.kind == "drop":
        sb.count("faults")
        return Response(status_code=502)
    return response


def _injected(status: int) -> BotApiError:
    if status == 429:
        return too_many_requests(1)
    return BotApiError(status, _STATUS_TEXT.get(status, "Internal Server Error"))
