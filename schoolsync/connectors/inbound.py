"""What every inbound webhook source provides: verify raw bytes, then name the event.

A source raises ``VerificationError`` for forged input and ``MalformedInputError`` for input it
cannot parse; the web role stores both as rejected and never processes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RawRequest:
    """An inbound HTTP request exactly as received."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: str = ""
    remote_addr: str | None = None


@dataclass(frozen=True)
class AcceptedEvent:
    """A verified, parseable event: its identity for deduplication and the school it is for."""

    dedup_key: str
    school: str | None = None


class WebhookSource(Protocol):
    """A platform's inbound webhook endpoint.

    Optional, looked up with ``getattr``: ``allow_get = True`` (the platform may call with GET
    and its data in the query string); ``success_body(request) -> str`` for a platform that
    expects a particular plain-text answer once the event is stored (Robokassa's ``OK{InvId}``;
    the default answer is JSON); ``forged_status`` (default 401) for a bad signature;
    ``prepare(request)``, the network part of verification (fetching a signing certificate),
    run in a thread before ``accept``.
    """

    name: str

    def accept(self, request: RawRequest) -> AcceptedEvent:
        """Verify and identify; raises VerificationError (ForbiddenSourceError for a sender
        address that is not the platform's) or MalformedInputError."""
        ...
