"""The SMTP connector against the SMTP sandbox: a message arrives as sent; refusals and
unreachable servers are errors that say whether the message went; a lost answer says "maybe"."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from typing import Any

import pytest

from schoolsync.connectors.smtp.client import DeliveryUnknownError, SmtpClient, message_id
from schoolsync.connectors.smtp.config import SmtpAccount
from schoolsync.core.errors import AuthError, RejectedError, UnavailableError
from schoolsync.sandbox.smtp import SmtpSandbox
from tests.conftest import free_port


@pytest.fixture
def box() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as sandbox:
        yield sandbox


def account(port: int, **more: Any) -> SmtpAccount:
    return SmtpAccount.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "Школа <noreply@school.test>",
            "starttls": False,
        }
        | more
    )


def mail(client: SmtpClient, to: str = "client@example.org") -> Any:
    return client.message(
        to=to,
        subject="Напоминание о сессии",
        text="Сессия завтра в 15:00",
        html="<b>Сессия</b> завтра в 15:00",
        message_id=message_id("smtp:default:session:x:24h:client", client.sender),
    )


def test_a_message_arrives_with_its_subject_body_and_our_message_id(box: SmtpSandbox) -> None:
    client = SmtpClient(account(box.port))
    client.send(mail(client))
    (received,) = box.messages(to="client@example.org")
    assert received.mail_from == "noreply@school.test"
    assert received.subject == "Напоминание о сессии"
    assert received.text().strip() == "Сессия завтра в 15:00"
    assert received.message_id == "<smtp.default.session.x.24h.client@school.test>"


def test_refusals_are_not_sent_and_say_whether_to_retry(box: SmtpSandbox) -> None:
    client = SmtpClient(account(box.port))
    box.refuse_next(451)
    with pytest.raises(UnavailableError) as later:
        client.send(mail(client))
    assert later.value.status == 451
    box.refuse_next(554)
    with pytest.raises(RejectedError):
        client.send(mail(client))
    assert box.messages() == []


def test_an_unreachable_server_is_retryable_and_names_no_address() -> None:
    client = SmtpClient(account(free_port()))
    with pytest.raises(UnavailableError) as down:
        client.send(mail(client))
    assert "example.org" not in str(down.value)


def test_a_refused_login_is_an_auth_error() -> None:
    class RefusesLogin(smtplib.SMTP):
        def __init__(self) -> None:
            super().__init__()

        def ehlo(self, name: str = "") -> tuple[int, bytes]:
            return 250, b"ok"

        def login(self, user: str, password: str, *, initial_response_ok: bool = True) -> Any:
            raise smtplib.SMTPAuthenticationError(535, b"bad credentials")

        def quit(self) -> Any:
            return 221, b"bye"

    client = SmtpClient(
        account(25, username="u", password_env="p"), "secret", connect=lambda *a: RefusesLogin()
    )
    with pytest.raises(AuthError) as refused:
        client.send(mail(client))
    assert "secret" not in str(refused.value)


def test_no_answer_after_the_hand_over_is_delivery_unknown(box: SmtpSandbox) -> None:
    class HangsUp(smtplib.SMTP):
        def send_message(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("timed out")

    client = SmtpClient(
        account(box.port), connect=lambda host, port, timeout: HangsUp(host, port, timeout=timeout)
    )
    with pytest.raises(DeliveryUnknownError):
        client.send(mail(client))
