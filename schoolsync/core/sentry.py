"""Sentry without personal data: error events with context, never an email, phone, card or token.

Sentry's own scrubber matches key names only and skips ``contexts`` (where the Dramatiq message
lives), so every event and breadcrumb also goes through :func:`scrub_event` /
:func:`scrub_breadcrumb`: every string anywhere in it is masked with :func:`core.pii.mask_text`,
and every value under a key named like a token, secret, password, key, authorization or cookie
becomes ``***``. Sentry is on only when ``SCHOOLSYNC_SENTRY_DSN`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sentry_sdk
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from schoolsync import __version__
from schoolsync.core.pii import SENSITIVE_KEY, mask_text
from schoolsync.core.settings import Settings

MASK = "***"
FAILURE_TAG = "failure_id"

# cookie-style pairs that core.pii leaves alone (``session=...`` in a Cookie header's text)
_COOKIE_PAIR = re.compile(r"(?i)\b(session\w*|sid|csrf\w*|jwt|auth\w*)=([^;&\s'\"]+)")
# Sentry's structural fields: identifiers and times, never personal data (kept readable)
_STRUCTURAL = frozenset(
    {
        "event_id",
        "timestamp",
        "start_timestamp",
        "trace_id",
        "span_id",
        "parent_span_id",
        "release",  # schoolsync@0.1.0 reads as an email
        "environment",
        "level",
        "platform",
    }
)
_EXTRA_DENYLIST = ["email", "phone", "card", "pan", "first_name", "last_name", "address"]


def _text(value: str) -> str:
    return _COOKIE_PAIR.sub(lambda m: f"{m.group(1)}={MASK}", mask_text(value))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        scrubbed: dict[Any, Any] = {}
        for key, item in value.items():
            name = _text(key) if isinstance(key, str) else key
            if isinstance(key, str) and SENSITIVE_KEY.search(key):
                scrubbed[name] = MASK if item not in (None, "") else item
            elif key in _STRUCTURAL:
                scrubbed[name] = item
            else:
                scrubbed[name] = _scrub(item)
        return scrubbed
    if isinstance(value, list | tuple):
        # a (name, value) pair, as ASGI headers are: a secret-named value is masked whole
        if len(value) == 2 and isinstance(value[0], str | bytes):
            name = value[0].decode("latin-1") if isinstance(value[0], bytes) else value[0]
            if SENSITIVE_KEY.search(name):
                return [_text(name), MASK]
        return [_scrub(item) for item in value]
    # anything else would reach Sentry as its repr: mask that text now
    return _text(repr(value))


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """``before_send``: the event with every string masked and every secret-named value ``***``."""
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """``before_breadcrumb``: the same masking as :func:`scrub_event`."""
    scrubbed: dict[str, Any] = _scrub(crumb)
    return scrubbed


def init_sentry(
    settings: Settings, role: str, *, transport: Callable[..., Any] | None = None
) -> bool:
    """Start Sentry for this process (``role``: web, worker, ...) when a DSN is configured.

    Call it before the Dramatiq broker is built: the integration patches ``Broker.__init__``.
    Returns whether Sentry is on. ``transport`` is for tests (capture instead of sending).
    """
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=f"schoolsync@{__version__}",
        environment=settings.environment,
        send_default_pii=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(recursive=True, denylist=DEFAULT_DENYLIST + _EXTRA_DENYLIST),
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        integrations=[
            StarletteIntegration(transaction_style="url"),
            FastApiIntegration(transaction_style="url"),
            DramatiqIntegration(),
        ],
        **options,
    )
    sentry_sdk.get_global_scope().set_tag("role", role)
    return True


def tag_failure(failure_id: int | str) -> None:
    """Tag the current scope's events with the failure id (admin: Sentry -> the replay)."""
    sentry_sdk.set_tag(FAILURE_TAG, str(failure_id))
