"""Bot API wire formats we read: the response envelope, Update, Message, Chat, User.

Lenient on input (``extra="ignore"``): Telegram adds fields often. Field names are the Bot API's
(https://core.telegram.org/bots/api#available-types), except ``from`` which is ``from_user``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class User(_Wire):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class Chat(_Wire):
    id: int
    type: str  # private | group | supergroup | channel
    title: str | None = None
    username: str | None = None
    is_forum: bool | None = None


class PhotoSize(_Wire):
    """One size of a photo Telegram keeps (``sendPhoto`` answers with several)."""

    file_id: str
    file_unique_id: str
    width: int
    height: int
    file_size: int | None = None


class Message(_Wire):
    message_id: int
    date: datetime  # unix seconds on the wire; UTC
    chat: Chat
    from_user: User | None = Field(default=None, alias="from")
    sender_chat: Chat | None = None  # an anonymous group admin writes as the group itself
    text: str | None = None
    message_thread_id: int | None = None  # forum topic
    is_topic_message: bool | None = None
    reply_to_message: Message | None = None
    photo: list[PhotoSize] | None = None
    caption: str | None = None

    @property
    def from_bot(self) -> bool:
        """Written by a bot (ours or another). An anonymous group admin arrives as Telegram's
        GroupAnonymousBot with the group itself as ``sender_chat``: that is a person."""
        if self.sender_chat is not None and self.sender_chat.id == self.chat.id:
            return False
        return self.from_user is not None and self.from_user.is_bot


class Update(_Wire):
    """One incoming update; only the kinds we use are typed, the rest are ignored."""

    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    channel_post: Message | None = None


class ResponseParameters(_Wire):
    retry_after: int | None = None  # seconds, with error_code 429
    migrate_to_chat_id: int | None = None  # the group became this supergroup


class ApiResponse(_Wire):
    """Every Bot API answer: ``{"ok": true, "result": ...}`` or a failure with a description."""

    ok: bool
    result: object = None
    error_code: int | None = None
    description: str | None = None
    parameters: ResponseParameters | None = None


class SentMessage(_Wire):
    """What ``sendMessage`` gave back that we keep: enough to refer to the message later."""

    message_id: int
    chat_id: int
    message_thread_id: int | None = None
    date: datetime


class BotInfo(_Wire):
    """``getMe``."""

    id: int
    is_bot: bool
    first_name: str
    username: str | None = None
