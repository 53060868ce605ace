"""The SMTP sandbox: aiosmtpd's ``Controller`` on loopback with a handler that keeps messages."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

_REPLIES = {
    421: "421 Service not available, closing transmission channel",
    451: "451 Requested action aborted: local error in processing",
    550: "550 Requested action not taken: mailbox unavailable",
    554: "554 Transaction failed",
}


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    def text(self) -> str:
        """The plain-text body (the first ``text/plain`` part)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())


class _Keeper:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refusals: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refusals:
                code = self.refusals.pop(0)
                return _REPLIES.get(code, f"{code} Refused by the sandbox")
            parsed = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self.received.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                    message=parsed,
                )
            )
        return "250 Message accepted for delivery"


class SmtpSandbox:
    """``start()`` listens on ``host:port`` (port 0: any free port, see :attr:`port`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._want_port = port
        self._keeper = _Keeper()
        self._controller: Controller | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP sandbox is not started")
        return int(self._controller.port)

    def start(self) -> SmtpSandbox:
        # aiosmtpd connects to its own port to check it is up: it needs the real number
        port = self._want_port or _free_port(self.host)
        controller = Controller(self._keeper, hostname=self.host, port=port, ready_timeout=5.0)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control -----------------------------------------------------------------------------

    def messages(self, *, to: str | None = None) -> list[Received]:
        """What was accepted, oldest first (only those to ``to``, when given)."""
        with self._keeper.lock:
            found = list(self._keeper.received)
        if to is None:
            return found
        return [m for m in found if to.casefold() in (r.casefold() for r in m.rcpt_tos)]

    def refuse_next(self, code: int = 451) -> None:
        """Answer the next DATA with ``code`` (nothing is kept)."""
        with self._keeper.lock:
            self._keeper.refusals.append(code)

    def reset(self) -> None:
        with self._keeper.lock:
            self._keeper.received.clear()
            self._keeper.refusals.clear()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
