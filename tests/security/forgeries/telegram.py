"""Forgeries of Telegram: X-Telegram-Bot-Api-Secret-Token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from tests.security.forgeries.common import (
    JSON,
    Expect,
    Forgery,
    dumps,
    flat,
    near_misses,
    oversize,
    reencoded,
    truncated,
)
from tests.security.harness import (
    TELEGRAM_SECRET,
    Delivery,
)

TG_HEADER = "x-telegram-bot-api-secret-token"
TG_NO_SECRET = "signature: telegram update carries no secret token"
TG_WRONG_SECRET = "signature: telegram secret token matches no bot"


def telegram_update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100_000,
            "from": {"id": 123456789, "is_bot": False, "first_name": "Анна"},
            "chat": {"id": -1001234567891, "title": "КОНТЕНТ", "type": "supergroup"},
            "date": 1_732_356_000,
            "text": text,
        },
    }


def telegram_delivery(
    body: bytes,
    secret: str | None,
    content_type: str = JSON,
    query: str = "",
    header: str = TG_HEADER,
) -> Delivery:
    headers = [("content-type", content_type)]
    if secret is not None:
        headers.append((header, secret))
    return Delivery("telegram", body=body, query=query, headers=tuple(headers))


def telegram_genuine(serial: int) -> Delivery:
    return telegram_delivery(dumps(telegram_update(serial, "Оплата получена")), TELEGRAM_SECRET)


@st.composite
def telegram_forgeries(draw: DrawFn) -> Forgery:
    update = telegram_update(draw(st.integers(1, 2**31)), draw(st.text(max_size=60)))
    body = dumps(update)
    change = draw(st.sampled_from(["none", "changed text", "truncated", "content type"]))
    content_type = JSON
    if change == "changed text":
        update["message"]["text"] = draw(st.text(max_size=60)) + "!"
        body = dumps(update)
    elif change == "truncated":
        body = truncated(draw, body)
    elif change == "content type":
        body, content_type = draw(reencoded(flat(update), update, JSON))
    label = f" ({change})" if change != "none" else ""
    attack = draw(st.sampled_from(["secret", "secret elsewhere", "oversize"]))
    if attack == "secret":
        what, value = draw(near_misses(TELEGRAM_SECRET))
        expect = Expect(401, (TG_WRONG_SECRET if value else TG_NO_SECRET,))
        return Forgery(
            f"secret: {what}{label}", telegram_delivery(body, value, content_type), expect
        )
    if attack == "secret elsewhere":
        where = draw(st.sampled_from(["query", "another header"]))
        if where == "query":
            moved = telegram_delivery(
                body, None, content_type, query=urlencode([("secret_token", TELEGRAM_SECRET)])
            )
        else:
            moved = telegram_delivery(
                body, TELEGRAM_SECRET, content_type, header="x-telegram-secret-token"
            )
        return Forgery(f"secret in the {where}{label}", moved, Expect(401, (TG_NO_SECRET,)))
    return oversize(draw, telegram_delivery(dumps(update), TELEGRAM_SECRET))
