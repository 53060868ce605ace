"""The ``accounts.telegram`` block of a school in ``schoolsync.yaml``.

Secrets are named, never written: ``token_env`` and ``webhook_secret_env`` hold the NAMES of the
secrets the app layer reads the bot token and the webhook secret from
(``SCHOOLSYNC_SECRETS__<NAME>`` in the environment).

    accounts:
      telegram:
        bot: school_bot                        # our name for the bot
        token_env: telegram_token              # SCHOOLSYNC_SECRETS__TELEGRAM_TOKEN=<from @BotFather>
        webhook_secret_env: telegram_webhook   # SCHOOLSYNC_SECRETS__TELEGRAM_WEBHOOK=<A-Z a-z 0-9 _ ->
        updates: webhook                       # or poll (getUpdates), without a public URL

The pacing numbers are the Bot FAQ's advice (no hard numbers are published): about one message a
second per chat, 20 a minute per group, 30 a second per bot. Raise them only for a local Bot API
server, a bot with paid broadcasts, or the sandbox; a 429 is honoured whatever they say.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "telegram"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class TelegramAccount(BaseModel):
    """One bot: where its Bot API is, where its secrets are, how fast it may post."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bot: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    # https://api.telegram.org, or a local Bot API server / the sandbox on loopback
    base_url: str = "https://api.telegram.org"
    token_env: str = Field(pattern=_ENV_NAME)
    webhook_secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    per_chat_per_s: float = Field(default=1.0, gt=0, le=1000)
    per_group_per_min: int = Field(default=20, ge=1, le=60_000)
    global_per_s: int = Field(default=30, ge=1, le=1000)
    # how updates (teachers' messages in the content group) come in: Telegram calls
    # /webhooks/telegram (set with `schoolsync telegram set-webhook`), or, for a machine without
    # a public URL, the scheduler asks with getUpdates
    updates: Literal["webhook", "poll"] = "webhook"

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return account_url(value, example="https://api.telegram.org")

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.bot)
