"""Telegram webhook: the secret header, the Update body, dedup by update_id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.connectors.telegram.webhooks import (
    SECRET_HEADER,
    TelegramRoute,
    TelegramWebhook,
    parse_update,
)
from schoolsync.core.errors import MalformedInputError, VerificationError

SAMPLE = Path(__file__).parents[2] / "fixtures" / "telegram" / "update_group_message.json"
SECRET = "tg-webhook_secret-for-tests"


@pytest.fixture
def source() -> TelegramWebhook:
    return TelegramWebhook(
        {
            SECRET: TelegramRoute(school="fitness", bot="fitness_bot"),
            "another_school_secret": TelegramRoute(school="other", bot="other_bot"),
        }
    )


def request(body: bytes, secret: str | None = SECRET) -> RawRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return RawRequest(body=body, headers=headers)


def test_is_a_webhook_source(source: TelegramWebhook) -> None:
    checked: WebhookSource = source
    assert checked.name == "telegram"


def test_accepts_the_sample(source: TelegramWebhook) -> None:
    event = source.accept(request(SAMPLE.read_bytes()))
    assert event.school == "fitness"
    assert event.dedup_key == "telegram:fitness_bot:872401230"


def test_the_other_secret_is_the_other_bot(source: TelegramWebhook) -> None:
    event = source.accept(request(SAMPLE.read_bytes(), "another_school_secret"))
    assert (event.school, event.dedup_key) == ("other", "telegram:other_bot:872401230")


def test_redelivery_has_the_same_key(source: TelegramWebhook) -> None:
    body = json.loads(SAMPLE.read_bytes())
    again = json.dumps(body, ensure_ascii=True, indent=2).encode()
    assert source.accept(request(again)) == source.accept(request(SAMPLE.read_bytes()))


def test_parse_update_reads_the_message() -> None:
    update = parse_update(SAMPLE.read_bytes())
    message = update.message
    assert message is not None
    assert message.chat.id == -1001234567891
    assert message.chat.type == "supergroup"
    assert message.from_user is not None and message.from_user.first_name == "Анна"
    assert message.text == "Иванов Петя: отлично занимался, 9/10"
    assert message.message_thread_id == 5
    assert message.date == datetime(2024, 11, 23, 10, 0, tzinfo=UTC)


def test_unknown_update_kinds_are_kept_as_updates(source: TelegramWebhook) -> None:
    body = b'{"update_id": 5, "my_chat_member": {"chat": {"id": 1}}}'
    assert source.accept(request(body)).dedup_key == "telegram:fitness_bot:5"
    assert parse_update(body).message is None


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
def test_wrong_or_missing_secret_is_refused(source: TelegramWebhook, secret: str | None) -> None:
    with pytest.raises(VerificationError):
        source.accept(request(SAMPLE.read_bytes(), secret))


def test_secret_is_checked_before_the_body(source: TelegramWebhook) -> None:
    with pytest.raises(VerificationError):
        source.accept(request(b"not json", "wrong"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty"),
        (b"not json", "json_invalid"),
        (b"[]", "model_type"),
        (b'{"message": {}}', "update_id: missing"),
        (b'{"update_id": "abc"}', "update_id: int_parsing"),
        (b'{"update_id": 1, "message": {"message_id": 2, "date": 3}}', "message.chat: missing"),
    ],
)
def test_malformed_bodies_name_the_problem(
    source: TelegramWebhook, body: bytes, problem: str
) -> None:
    with pytest.raises(MalformedInputError, match=problem):
        source.accept(request(body))


def test_values_are_not_quoted_in_errors() -> None:
    with pytest.raises(MalformedInputError) as caught:
        parse_update('{"update_id": "тел. +7 916 123-45-67"}'.encode())
    assert "916" not in str(caught.value)


def test_empty_secret_is_a_config_mistake() -> None:
    with pytest.raises(ValueError, match="empty"):
        TelegramWebhook({"": TelegramRoute(school="s", bot="b")})
