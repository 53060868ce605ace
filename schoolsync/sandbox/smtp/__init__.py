"""A local SMTP server that keeps what it receives, for tests and ``run --sandbox``.

Written from RFC 5321 as aiosmtpd implements it, not from our connector: any client that speaks
SMTP can send to it. Every accepted message is kept (envelope sender and recipients, the parsed
message); :meth:`SmtpSandbox.messages` lists them. ``refuse_next(code)`` answers the next DATA
with ``code`` (a 4xx "try later" or a 5xx refusal) and keeps nothing.

Not modelled: STARTTLS, AUTH, size limits, pipelining quirks.
"""

from schoolsync.sandbox.smtp.server import Received, SmtpSandbox

__all__ = ["Received", "SmtpSandbox"]
