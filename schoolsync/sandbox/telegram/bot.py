"""One running sandbox bot: its chats, what it sent (and edited, and deleted), updates waiting
for it, its webhook."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from schoolsync.sandbox.telegram.config import TelegramSandboxConfig
from schoolsync.sandbox.telegram.faults import Faults
from schoolsync.sandbox.telegram.html import ParsedText
from schoolsync.sandbox.telegram.limits import FloodLimits
from schoolsync.sandbox.telegram.webhook import WebhookSender

FIRST_UPDATE_ID = 700_000_001


class BotApiError(Exception):
    """A Bot API refusal: `{"ok": false, "error_code", "description", "parameters"?}`."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.code)


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    allowed_updates: list[str] = field(default_factory=list)
    max_connections: int = 40


class TelegramSandbox:
    def __init__(self, config: TelegramSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.faults = Faults()
        self.limits = FloodLimits(**self._configured_limits())
        self.sender = WebhookSender(
            timeout_s=config.webhook_timeout_s,
            retries=config.webhook_retries,
            retry_delay_s=config.webhook_retry_delay_s,
        )
        self._clear()
        if config.webhook_url:
            self.set_webhook(
                Webhook(url=config.webhook_url, secret_token=config.webhook_secret),
                drop_pending=False,
            )

    def _configured_limits(self) -> dict[str, Any]:
        return {
            "per_chat_per_s": self.config.per_chat_per_s,
            "per_chat_burst": self.config.per_chat_burst,
            "per_group_per_min": self.config.per_group_per_min,
            "global_per_s": self.config.global_per_s,
        }

    def _clear(self) -> None:
        # what the bot sent, oldest first, deleted ones included (`/_sandbox/messages`)
        self.sent: list[dict[str, Any]] = []
        # the same records by (chat id, message id)
        self.records: dict[tuple[int, int], dict[str, Any]] = {}
        # what the bot's messages hold now, as "message is not modified" compares it
        self.contents: dict[tuple[int, int], tuple[ParsedText, dict[str, Any] | None]] = {}
        self.edits: list[dict[str, Any]] = []
        # every message not deleted, the bot's and people's, by (chat id, message id)
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.updates: deque[dict[str, Any]] = deque()
        self.next_update_id = FIRST_UPDATE_ID
        self.message_ids: dict[int, int] = {}
        self.webhook: Webhook | None = None
        self.kicked: set[int] = set()
        self.counts = {
            "requests": 0,
            "sent": 0,
            "edits": 0,
            "deletes": 0,
            "rate_limited": 0,
            "errors": 0,
            "faults": 0,
        }

    # -- what Telegram knows ---------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return {
            "id": self.config.bot_id,
            "is_bot": True,
            "first_name": self.config.bot_first_name,
            "username": self.config.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def chat(self, chat_id: int) -> dict[str, Any]:
        return {
            "id": chat_id,
            "title": self.config.chats[chat_id],
            "type": "supergroup",
            "is_forum": True,
        }

    def new_message(
        self,
        chat_id: int,
        sender: dict[str, Any],
        text: str,
        thread_id: int | None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A message in `chat_id` with the chat's next message id; call with `lock` held.

        Ids are sequential per chat across the bot's messages and people's alike.
        """
        message_id = self.message_ids.get(chat_id, 0) + 1
        self.message_ids[chat_id] = message_id
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "chat": self.chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None and (chat_id, reply_to) in self.messages:
            message["reply_to_message"] = self.messages[(chat_id, reply_to)]
        self.messages[(chat_id, message_id)] = message
        return message

    # -- updates ---------------------------------------------------------------------------
    def post_update(self, message: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for `getUpdates`, or hand it to the webhook sender if one is set."""
        with self.lock:
            update = {"update_id": self.next_update_id, "message": message}
            self.next_update_id += 1
            if self.webhook is None:
                self.updates.append(update)
            else:
                self.sender.submit(self.webhook.url, self.webhook.secret_token, update)
        return update

    def take_updates(self, offset: int | None, limit: int) -> list[dict[str, Any]]:
        """Forget updates confirmed by `offset` and return up to `limit` of the rest."""
        with self.lock:
            if offset is not None and offset < 0:
                keep = list(self.updates)[offset:]
                self.updates = deque(keep)
            elif offset is not None:
                while self.updates and self.updates[0]["update_id"] < offset:
                    self.updates.popleft()
            return list(self.updates)[:limit]

    def set_webhook(self, webhook: Webhook | None, *, drop_pending: bool) -> None:
        with self.lock:
            self.webhook = webhook
            if drop_pending:
                self.updates.clear()
            if webhook is not None:
                while self.updates:
                    update = self.updates.popleft()
                    self.sender.submit(webhook.url, webhook.secret_token, update)

    def webhook_info(self) -> dict[str, Any]:
        with self.lock:
            hook = self.webhook
            sender = self.sender.snapshot()
            info: dict[str, Any] = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": sender["pending"] if hook else len(self.updates),
            }
            if hook is not None:
                info["max_connections"] = hook.max_connections
                if hook.allowed_updates:
                    info["allowed_updates"] = hook.allowed_updates
                if self.sender.last_error_date is not None:
                    info["last_error_date"] = self.sender.last_error_date
                    info["last_error_message"] = self.sender.last_error_message
            return info

    # -- bookkeeping -----------------------------------------------------------------------
    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def state(self) -> dict[str, Any]:
        with self.lock:
            by_chat: dict[str, int] = {}
            for item in self.sent:
                key = str(item["chat_id"])
                by_chat[key] = by_chat.get(key, 0) + 1
            return {
                **self.counts,
                "sent_by_chat": by_chat,
                "pending_updates": len(self.updates),
                "webhook_set": self.webhook is not None,
                "webhook": self.sender.snapshot(),
                "kicked_from": sorted(self.kicked),
                # `faults` is the rules in force; the count of faults injected is this one
                "faults_injected": self.counts["faults"],
                "faults": self.faults.rules(),
                "limits": self.limits.settings(),
            }

    def reset(self) -> None:
        """Empty everything: messages, edits, updates, webhook, kicks, counts, faults, flood
        budgets; flood limits changed at run time go back to the configured ones."""
        with self.lock:
            self._clear()
            self.faults.clear()
            self.limits.configure(**self._configured_limits())
            self.limits.reset()
            self.sender.reset()
