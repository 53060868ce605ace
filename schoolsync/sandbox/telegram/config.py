"""What the sandbox bot looks like: its token, the groups it sits in, and Telegram's limits."""

from __future__ import annotations

from dataclasses import dataclass, field


def _default_chats() -> dict[int, str]:
    return {
        -1001000000001: "Продажи",
        -1001000000002: "ФИНАНСЫ ПРИХОДЫ",
        -1001000000003: "Возвраты",
        -1001000000004: "ОБРАТНАЯ СВЯЗЬ",
        -1001000000005: "КОНТЕНТ",
        -1001000000006: "Педагогический отдел",
    }


@dataclass
class TelegramSandboxConfig:
    """Settings of one fake bot.

    Every chat is a forum supergroup the bot is a member of; any positive `message_thread_id`
    names a topic. Limits (Bot FAQ): about `per_chat_per_s` messages per second in one chat with
    bursts of `per_chat_burst` tolerated, `per_group_per_min` per group (negative chat id) in any
    60 s, `global_per_s` per bot in any second. `long_poll_max_s` caps `getUpdates` `timeout`
    so that tests stay fast. Webhook deliveries are tried `webhook_retries + 1` times in all.
    """

    token: str = "123456:sandbox-bot-token"  # noqa: S105 - the sandbox's own, public token
    chats: dict[int, str] = field(default_factory=_default_chats)
    bot_username: str = "schoolsync_sandbox_bot"
    bot_first_name: str = "SchoolSync Sandbox"
    per_chat_per_s: float = 1.0
    per_chat_burst: int = 3
    per_group_per_min: int = 20
    global_per_s: int = 30
    long_poll_max_s: float = 5.0
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 3
    webhook_retry_delay_s: float = 0.05
    # a webhook set from the start (as if setWebhook had been called), for the demo
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @property
    def bot_id(self) -> int:
        """Telegram tokens start with the bot's user id."""
        head = self.token.partition(":")[0]
        return int(head) if head.isdigit() else 123456
