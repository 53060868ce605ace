"""Telegram Bot API: sending HTML messages to department groups, and updates by webhook or
long polling. Facts and their sources are in the module docstrings and in
``tests/fixtures/telegram/README.md``.
"""

from schoolsync.connectors.telegram.client import (
    ChatMigratedError,
    Pacer,
    ProbeResult,
    TelegramClient,
)
from schoolsync.connectors.telegram.config import TelegramAccount
from schoolsync.connectors.telegram.models import (
    BotInfo,
    Chat,
    Message,
    SentMessage,
    Update,
    User,
)
from schoolsync.connectors.telegram.text import MESSAGE_LIMIT, escape_html, split_message
from schoolsync.connectors.telegram.webhooks import TelegramRoute, TelegramWebhook, parse_update

__all__ = [
    "MESSAGE_LIMIT",
    "BotInfo",
    "Chat",
    "ChatMigratedError",
    "Message",
    "Pacer",
    "ProbeResult",
    "SentMessage",
    "TelegramAccount",
    "TelegramClient",
    "TelegramRoute",
    "TelegramWebhook",
    "Update",
    "User",
    "escape_html",
    "parse_update",
    "split_message",
]
