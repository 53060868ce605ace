"""The Telegram client against the Telegram sandbox (written separately, from the Bot API docs):
the two must agree on the wire format, splitting and rate-limit answers."""

from __future__ import annotations

import httpx
import pytest

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.connectors.telegram.text import escape_html
from schoolsync.core.errors import NotFoundError, RateLimitedError
from schoolsync.sandbox.telegram import TelegramSandboxConfig, create_app
from tests.conftest import serving

SALES = -1001000000001


def test_messages_arrive_split_in_order_and_limits_are_reported() -> None:
    config = TelegramSandboxConfig(per_chat_per_s=1000, per_group_per_min=1000)
    with serving(create_app(config)) as base_url:
        client = TelegramClient(
            build_client(base_url, timeout=5), Endpoint("telegram", "school"), config.token
        )
        lines = [f"<b>2500</b> {escape_html('Демин Саша <VIP>')} · строка {i}" for i in range(300)]
        sent = client.send_message(SALES, "\n".join(lines), thread_id=12)
        assert len(sent) > 1
        recorded = httpx.get(f"{base_url}/_sandbox/messages", params={"chat_id": SALES}).json()
        messages = recorded["messages"] if isinstance(recorded, dict) else recorded
        assert [m["message_id"] for m in messages] == [s.message_id for s in sent]
        assert all(m.get("message_thread_id") == 12 for m in messages)
        texts = "\n".join(m["text"] for m in messages)
        assert texts.count("Демин Саша <VIP>") == 300

        with pytest.raises(NotFoundError):
            client.send_message(-100999, "нет такой группы")


def test_a_chat_flooded_past_its_limit_gets_retry_after() -> None:
    config = TelegramSandboxConfig(per_chat_per_s=1.0)
    with serving(create_app(config)) as base_url:
        client = TelegramClient(
            build_client(base_url, timeout=5), Endpoint("telegram", "school"), config.token
        )
        with pytest.raises(RateLimitedError) as raised:
            for i in range(20):
                client.send_message(SALES, f"сообщение {i}")
        assert raised.value.retry_after is not None and raised.value.retry_after >= 1
        assert config.token not in str(raised.value)
