"""Send one e-mail over SMTP (stdlib ``smtplib``), with errors turned into ours.

What a failure means for a retry depends on when it happened, so the client says which:

- before the message was handed over (connect, EHLO, STARTTLS, login; a refused sender or
  recipient; a 4xx/5xx answer to DATA): the message was **not** sent. 4xx and connection
  problems are ``UnavailableError`` (retry), 5xx is ``RejectedError`` (535 and 530:
  ``AuthError``).
- while it was being handed over, with no answer (timeout, dropped connection after DATA):
  it **may** have been sent: :class:`DeliveryUnknownError`. The caller decides; nothing here
  retries.

Errors name the server, never an address, a subject or a body.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from schoolsync.connectors.smtp.config import PLATFORM, SmtpAccount
from schoolsync.core.errors import AuthError, PermanentError, RejectedError, UnavailableError


class DeliveryUnknownError(PermanentError):
    """The message was handed over and no answer came: it may be in the recipient's mailbox."""


SmtpFactory = Callable[[str, int, float], smtplib.SMTP]


class SmtpClient:
    """One account. ``password`` is the secret's value (resolved by the composition root)."""

    def __init__(
        self,
        account: SmtpAccount,
        password: str | None = None,
        *,
        connect: SmtpFactory | None = None,
    ) -> None:
        self.account = account
        self._password = password or None
        self._connect = connect or _connect

    def __repr__(self) -> str:
        return f"SmtpClient({self.account.account!r})"

    @property
    def sender(self) -> str:
        return self.account.sender

    def message(
        self, *, to: str, subject: str, text: str, html: str | None = None, message_id: str
    ) -> EmailMessage:
        """A message from the account's sender; ``message_id`` is ours (deterministic per
        effect, so that the same reminder is one message id wherever it shows up)."""
        message = EmailMessage()
        message["From"] = self.account.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return message

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server.

        Raises:
            UnavailableError: not sent; the server could not be reached or said "later" (4xx).
            AuthError: not sent; the login was refused.
            RejectedError: not sent; the server refused the message or a recipient (5xx).
            DeliveryUnknownError: handed over, no answer: it may have been sent.
        """
        where = self.account.account
        try:
            smtp = self._connect(self.account.host, self.account.port, self.account.timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unavailable(f"cannot connect ({type(exc).__name__})") from None
        try:
            self._open(smtp)
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused:
                raise RejectedError(
                    f"smtp server {where} refused the recipient", platform=PLATFORM, account=where
                ) from None
            except smtplib.SMTPResponseException as exc:
                raise self._answered(exc, "the message") from None
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                if isinstance(exc, smtplib.SMTPException) and not isinstance(
                    exc, smtplib.SMTPServerDisconnected
                ):  # smtplib refused it before anything went out (SMTPUTF8 not offered, ...)
                    raise RejectedError(
                        f"smtp server {where}: the message cannot be sent ({type(exc).__name__})",
                        platform=PLATFORM,
                        account=where,
                    ) from None
                raise DeliveryUnknownError(
                    f"smtp server {where}: no answer after the message was handed over "
                    f"({type(exc).__name__}); it may have been delivered",
                    platform=PLATFORM,
                    account=where,
                ) from None
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _open(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.ehlo()
            if self.account.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.account.username:
                smtp.login(self.account.username, self._password or "")
        except smtplib.SMTPResponseException as exc:
            raise self._answered(exc, "the session") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unavailable(f"session setup failed ({type(exc).__name__})") from None

    def _answered(self, exc: smtplib.SMTPResponseException, what: str) -> Exception:
        where = self.account.account
        code = int(exc.smtp_code)
        text = f"smtp server {where} answered {code} to {what}"
        if code in (530, 534, 535):
            return AuthError(text, platform=PLATFORM, account=where, status=code)
        if 400 <= code < 500:
            return UnavailableError(text, platform=PLATFORM, account=where, status=code)
        return RejectedError(text, platform=PLATFORM, account=where, status=code)

    def _unavailable(self, problem: str) -> UnavailableError:
        where = self.account.account
        return UnavailableError(f"smtp server {where}: {problem}", platform=PLATFORM, account=where)


def message_id(key: str, sender: str) -> str:
    """A Message-ID derived from our effect key (the domain of the sender address)."""
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "schoolsync.local"
    local = re.sub(r"[^A-Za-z0-9._-]", ".", key)[:120]
    return f"<{local}@{domain}>"


def _connect(host: str, port: int, timeout: float) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, timeout=timeout)
