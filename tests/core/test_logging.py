"""Log lines: every value masked, nested or not, secret-named values redacted, context merged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from pydantic import BaseModel

from schoolsync.core.logging import REDACTED, configure_logging, get_logger, mask_value

EMAIL = "anna.petrova@example.org"
PHONE = "+7 923 123-45-67"
CARD = "4111 1111 1111 1111"
TOKEN = "tok_9f8e7d6c5b4a"


def capture_json_logs() -> Callable[[], list[dict[str, Any]]]:
    """``configure_logging(fmt="json")`` with its handler writing to a buffer: the lines so far."""
    configure_logging(fmt="json", level="INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.fixture
def lines() -> Callable[[], list[dict[str, Any]]]:
    structlog.contextvars.clear_contextvars()
    return capture_json_logs()


class Contact(BaseModel):
    email: str
    phone: str
    api_key: str


def test_a_nested_event_keeps_no_email_phone_card_or_token(lines: Any) -> None:
    get_logger("test").info(
        "order pushed",
        order={
            "customer": {"email": EMAIL, "phones": [PHONE, (PHONE,)]},
            "payment": {"card": CARD, "amount": 2500},
            "auth": {"token": TOKEN, "Authorization": f"Bearer {TOKEN}"},
        },
        contact=Contact(email=EMAIL, phone=PHONE, api_key=TOKEN),
        headers=[(b"authorization", f"Bearer {TOKEN}".encode()), (b"accept", b"*/*")],
        note=f"client {EMAIL} paid with {CARD}, call {PHONE}; {{'secret': '{TOKEN}'}}",
        api_key=TOKEN,
    )
    [line] = lines()
    text = json.dumps(line, ensure_ascii=False)
    for secret in (EMAIL, "123-45-67", "9231234567", CARD, "41111111", TOKEN):
        assert secret not in text
    order = line["order"]
    assert order["customer"]["email"] == "a***@example.org"
    assert order["customer"]["phones"] == ["+***67", ["+***67"]]
    assert order["payment"] == {"card": "**** 1111", "amount": 2500}
    assert order["auth"] == {"token": REDACTED, "Authorization": REDACTED}
    assert line["api_key"] == REDACTED
    assert "api_key=[redacted]" in line["contact"] and "a***@example.org" in line["contact"]
    assert line["headers"][0][1] == REDACTED and line["headers"][1][1] == "b'*/*'"
    assert line["event"] == "order pushed"


def test_ids_counts_and_amounts_stay_readable(lines: Any) -> None:
    get_logger("test").info("job done", job_id=12345, count=3, amount=2500.5, order="1001")
    [line] = lines()
    assert (line["job_id"], line["count"], line["amount"], line["order"]) == (
        12345,
        3,
        2500.5,
        "1001",
    )


def test_a_phone_given_as_a_number_is_masked() -> None:
    assert mask_value(79231234567) == "+***67"
    assert mask_value({"n": 42, "ok": True, "none": None}) == {"n": 42, "ok": True, "none": None}


def test_self_containing_data_and_a_broken_repr_still_log(lines: Any) -> None:
    loop: dict[str, Any] = {"email": EMAIL}
    loop["self"] = loop

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError(EMAIL)

    get_logger("test").info("odd data", loop=loop, broken=Broken())
    [line] = lines()
    assert EMAIL not in json.dumps(line, ensure_ascii=False)
    assert line["broken"] == "<Broken>" and line["loop"]["email"] == "a***@example.org"


def test_exception_text_and_stdlib_lines_are_masked_and_carry_the_context(lines: Any) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1")
    try:
        raise ValueError(f"no such user: {EMAIL}, token={TOKEN}")
    except ValueError:
        get_logger("test").exception("lookup failed")
    logging.getLogger("dramatiq.worker").warning("from %s with %s", EMAIL, {"password": "hunter22"})
    structlog.contextvars.clear_contextvars()
    structured, foreign = lines()
    assert "ValueError" in structured["exception"] and EMAIL not in structured["exception"]
    assert TOKEN not in structured["exception"]
    assert EMAIL not in foreign["event"] and "hunter22" not in foreign["event"]
    assert structured["request_id"] == foreign["request_id"] == "req-1"
    assert foreign["logger"] == "dramatiq.worker"


def test_the_console_renderer_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="console", level="INFO")
    get_logger("test").info("sent", to={"email": EMAIL, "session_token": TOKEN})
    printed = capsys.readouterr().err
    assert EMAIL not in printed and TOKEN not in printed and REDACTED in printed
