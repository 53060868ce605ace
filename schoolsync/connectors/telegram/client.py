"""Telegram Bot API client: ``sendMessage``, ``sendPhoto``, ``getUpdates``, ``setWebhook``, ``getMe``.

Every call is ``POST {base_url}/bot<token>/<method>`` with a JSON body; ``sendPhoto`` uploads
the picture as ``multipart/form-data`` (the other parameters as form fields). The token is in the URL
path, so this client never lets the real request reach an error: a transport failure is reported
here naming only the method, and a failed answer becomes an error through
``connectors.http.error_for`` on a *copy* of the response whose request is ``POST /<method>``.
No exception is chained to an httpx one (which holds the real request). httpx's own INFO line
("HTTP Request: POST https://.../bot<token>/...") is silenced by ``core.logging`` and, should
someone turn it on, redacted by a filter the client puts on the ``httpx`` logger.

Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}``; the HTTP status equals ``error_code``::

    timeout, connection error                    -> UnavailableError
    429 (parameters.retry_after)                 -> RateLimitedError(retry_after), pacer.penalize
    5xx                                          -> UnavailableError
    401 Unauthorized (wrong token)               -> AuthError
    403 bot blocked / kicked / not a member      -> AuthError
    400 with parameters.migrate_to_chat_id       -> ChatMigratedError (a RejectedError) carrying
                                                    ``new_chat_id``: store it as the channel's
                                                    chat id, then send again
    400 "chat not found", "message thread not    -> NotFoundError
      found", other 404
    any other 400                                -> RejectedError with Telegram's description
    2xx that is not {"ok": true, "result": ...}  -> RejectedError

Descriptions are Telegram's (``Bad Request: chat not found``), masked and bounded. The Bot API
has no idempotency: a retry after a timeout may post twice (the caller's outbox decides).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint, body_failure, error_for
from schoolsync.connectors.telegram.models import (
    ApiResponse,
    BotInfo,
    Message,
    SentMessage,
    Update,
)
from schoolsync.connectors.telegram.text import MESSAGE_LIMIT, split_message
from schoolsync.core.errors import (
    NotFoundError,
    RateLimitedError,
    RejectedError,
    SchoolsyncError,
    UnavailableError,
)
from schoolsync.core.pii import mask_text

MAX_DETAIL = 300
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # sendPhoto's limit for an upload
DEFAULT_RETRY_AFTER_S = 1.0
NOT_FOUND_MARKERS = (
    "chat not found",
    "message thread not found",
    "user not found",
    "message to edit not found",
    "message to delete not found",
)
_KEPT_HEADERS = ("content-type", "retry-after", "x-request-id")

M = TypeVar("M", Message, Update, BotInfo)
_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+/")


class _RedactBotToken(logging.Filter):
    """Replaces ``/bot<token>/`` in httpx's log lines with ``/bot***/``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/bot***/", str(arg)) if "/bot" in str(arg) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "/bot" in record.msg:
            record.msg = _TOKEN_IN_PATH.sub("/bot***/", record.msg)
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactBotToken) for f in logger.filters):
        logger.addFilter(_RedactBotToken())


class Pacer(Protocol):
    """Rate budget shared by all workers (``connectors.pacing.Pacer``).

    ``acquire`` waits at most ``max_wait`` seconds for a slot or raises ``RateLimitedError``;
    ``penalize`` shrinks the budget after the platform said 429.
    """

    def acquire(self, *, max_wait: float) -> object: ...

    def penalize(self, retry_after: float) -> object: ...


class ProbeResult(enum.Enum):
    SAME = "same"  # our message, with this very text
    MISSING = "missing"  # no message with that id (never, or deleted)
    OTHER = "other"  # somebody else's message
    EDITED = "edited"  # ours with another text: it has this text now


class ChatMigratedError(RejectedError):
    """The group became a supergroup: it now lives at ``new_chat_id``; nothing was sent."""

    def __init__(self, message: str, *, new_chat_id: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.new_chat_id = new_chat_id


class TelegramClient:
    """One bot's Bot API. Raises the errors in the module docstring.

    Pacing per chat or group is the caller's; ``pacer`` (the bot-wide budget, if given) is asked
    once before every request.
    """

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        token: str,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 5.0,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("a Telegram bot token is required (and has no '/')")
        self.http = http
        self.endpoint = endpoint
        self._token = token
        self._pacer = pacer
        self._pace_max_wait_s = pace_max_wait_s
        _redact_httpx_logs()

    def __repr__(self) -> str:
        return f"TelegramClient(bot={self.endpoint.account!r})"

    # --- methods -------------------------------------------------------------------------------

    def send_message(
        self,
        chat_id: int | str,
        html: str,
        *,
        thread_id: int | None = None,
        disable_notification: bool = False,
    ) -> list[SentMessage]:
        """Post ``html`` (Telegram HTML, already escaped) to a chat, split into parts that fit.

        Parts are sent in order, one request each; whitespace-only parts are skipped. If part
        ``n`` fails, parts before it are already posted and the error is raised: a caller that
        must never repost a part sends the parts of :func:`split_message` one by one.

        Raises:
            ValueError: ``html`` has no visible text.
        """
        if not html.strip():
            raise ValueError("a Telegram message needs some text")
        return [
            self.send_part(
                chat_id, part, thread_id=thread_id, disable_notification=disable_notification
            )
            for part in split_message(html, MESSAGE_LIMIT)
            if part.strip()
        ]

    def send_part(
        self,
        chat_id: int | str,
        html: str,
        *,
        thread_id: int | None = None,
        disable_notification: bool = False,
    ) -> SentMessage:
        """One ``sendMessage`` of at most 4,096 characters (see :func:`split_message`)."""
        payload: dict[str, Any] = {"chat_id": chat_id, "text": html, "parse_mode": "HTML"}
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
        if disable_notification:
            payload["disable_notification"] = True
        result, response = self.call("sendMessage", payload)
        message = self._parse(Message, result, response, "sendMessage")
        return SentMessage(
            message_id=message.message_id,
            chat_id=message.chat.id,
            message_thread_id=message.message_thread_id,
            date=message.date,
        )

    def send_photo(
        self,
        chat_id: int | str,
        png: bytes,
        *,
        caption: str | None = None,
        thread_id: int | None = None,
        filename: str = "chart.png",
    ) -> SentMessage:
        """One ``sendPhoto`` uploading ``png`` (multipart, at most 10 MB) with an optional
        Telegram-HTML ``caption`` (at most 1,024 characters after parsing).

        Raises:
            ValueError: no picture, or it is larger than 10 MB.
        """
        if not png or len(png) > MAX_PHOTO_BYTES:
            raise ValueError("a photo of 1 byte to 10 MB is required")
        fields: dict[str, Any] = {"chat_id": chat_id}
        if caption:
            fields.update(caption=caption, parse_mode="HTML")
        if thread_id is not None:
            fields["message_thread_id"] = thread_id
        result, response = self.call(
            "sendPhoto", fields, files={"photo": (filename, png, "image/png")}
        )
        message = self._parse(Message, result, response, "sendPhoto")
        return SentMessage(
            message_id=message.message_id,
            chat_id=message.chat.id,
            message_thread_id=message.message_thread_id,
            date=message.date,
        )

    def probe_text(self, chat_id: int | str, message_id: int, html: str) -> ProbeResult:
        """Is our message with exactly this text at ``message_id``? Asked by editing it to the
        same text (the Bot API cannot read a chat's history).

        Telegram answers "message is not modified" when the message is ours and already has
        this text (``SAME``), "message to edit not found" when there is no such message
        (``MISSING``), "message can't be edited" when it is somebody else's (``OTHER``). A
        successful edit means it was one of our messages with another text, now replaced
        (``EDITED``): call this only where every message of ours is known to the caller.
        """
        payload = {"chat_id": chat_id, "message_id": message_id, "text": html, "parse_mode": "HTML"}
        try:
            self.call("editMessageText", payload)
        except RejectedError as exc:
            folded = exc.message.casefold()
            if "message is not modified" in folded:
                return ProbeResult.SAME
            # somebody else's message, or one with no text (a photo, e.g. a report's chart)
            if "can't be edited" in folded or "there is no text in the message" in folded:
                return ProbeResult.OTHER
            raise
        except NotFoundError as exc:
            if "message to edit not found" in exc.message.casefold():
                return ProbeResult.MISSING
            raise
        return ProbeResult.EDITED

    def delete_message(self, chat_id: int | str, message_id: int) -> bool:
        """Delete one of our messages; ``False`` if it is not there any more."""
        try:
            self.call("deleteMessage", {"chat_id": chat_id, "message_id": message_id})
        except (NotFoundError, RejectedError) as exc:
            if "message to delete not found" in exc.message.casefold():
                return False
            raise
        return True

    def get_updates(self, offset: int | None, timeout: int = 0, limit: int = 100) -> list[Update]:
        """Updates after ``offset`` (the last ``update_id`` + 1 confirms everything before it).

        ``timeout`` is Telegram's long-poll wait in seconds; the HTTP timeout is stretched to
        cover it. Fails with 409 (RejectedError) while a webhook is set.
        """
        payload: dict[str, Any] = {"timeout": timeout, "limit": limit}
        if offset is not None:
            payload["offset"] = offset
        result, response = self.call("getUpdates", payload, wait_s=timeout)
        if not isinstance(result, list):
            raise body_failure(
                self.endpoint, _clean(response, "getUpdates"), "result is not a list"
            )
        return [self._parse(Update, item, response, "getUpdates") for item in result]

    def set_webhook(
        self, url: str, secret_token: str, allowed_updates: Sequence[str] = ("message",)
    ) -> None:
        """Have Telegram POST updates to ``url`` with ``X-Telegram-Bot-Api-Secret-Token``.

        ``secret_token`` is 1-256 characters of ``A-Z a-z 0-9 _ -`` (Bot API setWebhook).
        """
        self.call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": list(allowed_updates)},
        )

    def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        self.call("deleteWebhook", {"drop_pending_updates": drop_pending_updates})

    def get_me(self) -> BotInfo:
        result, response = self.call("getMe", {})
        return self._parse(BotInfo, result, response, "getMe")

    # --- one request ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        wait_s: float = 0,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> tuple[Any, httpx.Response]:
        """Pace, send, and return ``result`` of an ``ok`` answer (and the clean response).

        With ``files`` the request is ``multipart/form-data``: the files, and ``payload`` as
        form fields (each value as text)."""
        if self._pacer is not None:
            self._pacer.acquire(max_wait=self._pace_max_wait_s)
        path = f"/bot{self._token}/{method}"
        if files is None:
            request = self.http.build_request(
                "POST", path, json=payload, timeout=self._timeout(wait_s)
            )
        else:
            request = self.http.build_request(
                "POST",
                path,
                data={k: str(v) for k, v in payload.items()},
                files=files,
                timeout=self._timeout(wait_s),
            )
        try:
            raw = self.http.send(request)
        except httpx.TimeoutException as exc:
            raise self._unavailable(method, f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise self._unavailable(method, f"unreachable ({type(exc).__name__})") from None
        response = _clean(raw, method)
        try:
            answer = ApiResponse.model_validate_json(response.content)
        except ValidationError:
            answer = None
        if answer is not None and answer.ok and response.is_success:
            return answer.result, response
        error = self._error(method, response, answer)
        if isinstance(error, RateLimitedError) and self._pacer is not None:
            self._pacer.penalize(error.retry_after or DEFAULT_RETRY_AFTER_S)
        raise error

    def _timeout(self, wait_s: float) -> httpx.Timeout | Any:
        if wait_s <= 0:
            return httpx.USE_CLIENT_DEFAULT
        current = self.http.timeout
        return httpx.Timeout(
            (current.read or 0) + wait_s,
            connect=current.connect,
            write=current.write,
            pool=current.pool,
        )

    def _error(
        self, method: str, response: httpx.Response, answer: ApiResponse | None
    ) -> SchoolsyncError:
        description = self._safe(answer.description or "") if answer is not None else ""
        if response.is_success:
            return body_failure(self.endpoint, response, description or "answer is not ok")
        parameters = answer.parameters if answer is not None else None
        if parameters is not None and parameters.retry_after is not None:
            response.headers["Retry-After"] = str(parameters.retry_after)
        error = error_for(self.endpoint, response, description)
        context: dict[str, Any] = {
            "platform": error.platform,
            "account": error.account,
            "status": error.status,
        }
        where = f"{self.endpoint.platform} POST /{method}"
        if parameters is not None and parameters.migrate_to_chat_id is not None:
            return ChatMigratedError(
                f"{where}: the group became a supergroup with another chat id{_tail(description)}",
                new_chat_id=parameters.migrate_to_chat_id,
                **context,
            )
        folded = description.casefold()
        if response.status_code == 400 and any(m in folded for m in NOT_FOUND_MARKERS):
            return NotFoundError(f"{where} not found{_tail(description)}", **context)
        return error

    def _unavailable(self, method: str, what: str) -> UnavailableError:
        return UnavailableError(
            f"{self.endpoint.platform} POST /{method} {what}",
            platform=self.endpoint.platform,
            account=self.endpoint.account,
        )

    def _parse(self, model: type[M], data: Any, response: httpx.Response, method: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:5]
            )
            raise body_failure(
                self.endpoint, response, f"{method} result not understood: {problems}"
            ) from None

    def _safe(self, text: str) -> str:
        return mask_text(text.replace(self._token, "***"))[:MAX_DETAIL]


def _clean(response: httpx.Response, method: str) -> httpx.Response:
    """``response`` re-attached to a request for ``POST /<method>``: no token anywhere in it."""
    return httpx.Response(
        response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS},
        content=response.content,
        request=httpx.Request("POST", f"/{method}"),
    )


def _tail(description: str) -> str:
    return f": {description}" if description else ""
