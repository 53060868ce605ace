from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schoolsync.core.pii import luhn_valid, mask_text


def test_masks_emails_phones_cards_and_credentials() -> None:
    text = (
        "client ivan.petrov@mail.ru +7 (923) 456-78-90 paid with 4111 1111 1111 1111; "
        "Authorization: Bearer abcdefghijklmnop token=s3cr3t"
    )
    masked = mask_text(text)
    assert "ivan.petrov" not in masked and "i***@mail.ru" in masked
    assert "456-78-90" not in masked and "+***90" in masked
    assert "4111 1111 1111 1111" not in masked and "**** 1111" in masked
    assert "abcdefghijklmnop" not in masked and "s3cr3t" not in masked


def test_order_numbers_amounts_and_ids_stay_readable() -> None:
    assert mask_text("order 12345 for 2500 RUB") == "order 12345 for 2500 RUB"
    ids = "message 18bdd5c3-4107-4075-9a71-592110396031 job a1234567-1234-4123-8123-123456789012"
    assert mask_text(ids) == ids


@given(st.from_regex(r"4[0-9]{15}", fullmatch=True))
def test_no_luhn_valid_card_survives(number: str) -> None:
    if luhn_valid(number):
        assert number not in mask_text(f"card {number} ok")


def test_a_traceback_is_masked_on_a_terminal_too(capsys: pytest.CaptureFixture[str]) -> None:
    from schoolsync.core.logging import configure_logging, get_logger

    configure_logging(fmt="console", level="INFO")
    try:
        raise ValueError("no such user: anna.petrova@example.org, +7 923 123-45-67")
    except ValueError:
        get_logger("test").exception("lookup failed")
    printed = capsys.readouterr().err
    assert "lookup failed" in printed
    assert "ValueError" in printed
    assert "anna.petrova@example.org" not in printed
    assert "123-45-67" not in printed


def test_percent_encoded_emails_and_phones_are_masked_too() -> None:
    # a stored webhook's query string, as an admin page or a log line would show it
    shown = mask_text("email=ivan.petrov%40mail.ru&phone=%2B79161234567&number=1001")
    assert "ivan.petrov" not in shown and "9161234567" not in shown
    assert "number=1001" in shown
