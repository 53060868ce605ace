"""Telegram webhook updates: verify ``X-Telegram-Bot-Api-Secret-Token``, parse the Update.

``setWebhook(secret_token=...)`` makes Telegram send that secret in the header of every update
(Bot API setWebhook). Each secret stands for one school's bot; the header is compared in
constant time against every configured secret. The body is one JSON-serialized ``Update``;
``update_id`` is unique per bot and is the dedup key (Telegram redelivers until it gets a 2xx).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.connectors.telegram.models import Update
from schoolsync.core.errors import MalformedInputError, VerificationError

PLATFORM = "telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret


@dataclass(frozen=True)
class TelegramRoute:
    """What one webhook secret stands for: a school's bot."""

    school: str
    bot: str  # our name for the bot (accounts.telegram.bot)


def parse_update(body: bytes) -> Update:
    """The Update in a webhook body.

    Raises:
        MalformedInputError: naming the field and the problem (never a value).
    """
    if not body.strip():
        raise MalformedInputError("telegram update body is empty", platform=PLATFORM)
    try:
        return Update.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}" for e in exc.errors()[:5]
        )
        raise MalformedInputError(
            f"telegram update not understood: {problems}", platform=PLATFORM
        ) from None


def dedup_key(bot: str, update: Update) -> str:
    return f"telegram:{bot}:{update.update_id}"


class TelegramWebhook:
    """``POST /webhooks/telegram``; one secret per bot (``webhook_secret_env``)."""

    name = "telegram"

    def __init__(self, routes: Mapping[str, TelegramRoute]) -> None:
        if any(not secret for secret in routes):
            raise ValueError("a Telegram webhook secret is empty")
        self._routes = [(secret.encode(), route) for secret, route in routes.items()]

    def route(self, headers: Mapping[str, str]) -> TelegramRoute:
        """The bot a request's secret header stands for; ``VerificationError`` if none."""
        given = headers.get(SECRET_HEADER, "")
        if not given:
            raise VerificationError("telegram update carries no secret token", platform=PLATFORM)
        candidate = given.encode()
        found: TelegramRoute | None = None
        for secret, route in self._routes:  # every one, so timing says nothing about which
            if hmac.compare_digest(candidate, secret):
                found = route
        if found is None:
            raise VerificationError("telegram secret token matches no bot", platform=PLATFORM)
        return found

    def accept(self, request: RawRequest) -> AcceptedEvent:
        route = self.route(request.headers)
        update = parse_update(request.body)
        return AcceptedEvent(dedup_key=dedup_key(route.bot, update), school=route.school)
