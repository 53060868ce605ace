from __future__ import annotations

import pytest
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint
from schoolsync.connectors.telegram.config import TelegramAccount


def test_defaults() -> None:
    account = TelegramAccount(bot="school_bot", token_env="SCHOOLSYNC_TG_TOKEN")
    assert account.base_url == "https://api.telegram.org"
    assert account.webhook_secret_env is None
    assert (account.timeout_s, account.per_chat_per_s) == (20, 1.0)
    assert (account.per_group_per_min, account.global_per_s) == (20, 30)
    assert account.endpoint == Endpoint("telegram", "school_bot")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.telegram.org/", "https://api.telegram.org"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://localhost:9000/telegram/", "http://localhost:9000/telegram"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    account = TelegramAccount(bot="b", token_env="T", base_url=url)
    assert account.base_url == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.telegram.org",
        "https://api.telegram.org/bot123",
        "https://api.telegram.org?x=1",
        "ftp://api.telegram.org",
        "api.telegram.org",
    ],
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        TelegramAccount(bot="b", token_env="T", base_url=url)


def test_secrets_are_env_names_not_values() -> None:
    with pytest.raises(ValidationError):
        TelegramAccount(bot="b", token_env="123456:ABC-DEF")
    with pytest.raises(ValidationError):
        TelegramAccount(bot="b", token_env="T", webhook_secret_env="not a name")
    with pytest.raises(ValidationError):
        TelegramAccount(bot="b", token_env="T", token="123456:ABC")  # type: ignore[call-arg]
