"""Verify (HMAC-SHA256 hex of the raw body in ``X-Signature``) and parse generic events."""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import ValidationError

from schoolsync.connectors.generic.models import GenericEvent
from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.core.errors import MalformedInputError, VerificationError

SIGNATURE_HEADER = "x-signature"


def sign(secret: bytes, body: bytes) -> str:
    """The signature a sender puts in ``X-Signature``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str | None) -> None:
    """Raise ``VerificationError`` unless ``signature`` is the HMAC of ``body`` (constant time)."""
    if not signature:
        raise VerificationError("missing X-Signature header", platform="generic")
    given = signature.strip().lower().removeprefix("sha256=")
    if not hmac.compare_digest(sign(secret, body), given):
        raise VerificationError("X-Signature does not match the body", platform="generic")


def parse(body: bytes) -> GenericEvent:
    """Parse the JSON body; ``MalformedInputError`` names the first problem and where it is."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise MalformedInputError(
            f"body is not valid JSON{where}: {reason}", platform="generic"
        ) from None
    if not isinstance(document, dict):
        raise MalformedInputError("body must be a JSON object", platform="generic")
    try:
        return GenericEvent.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise MalformedInputError(
            f"body does not describe an event: {problems}", platform="generic"
        ) from None


class GenericWebhook:
    """``POST /webhooks/generic``; on only when a secret is configured."""

    name = "generic"

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def accept(self, request: RawRequest) -> AcceptedEvent:
        verify(self._secret, request.body, request.headers.get(SIGNATURE_HEADER))
        event = parse(request.body)
        return AcceptedEvent(dedup_key=event.id, school=event.school)
