"""structlog set-up: JSON lines in production, pretty on a terminal, PII masked in both.

Every value of every event is masked before it is rendered (:func:`mask_value`): strings with
:func:`core.pii.mask_text`, nested dicts, lists and tuples item by item, any other object as the
text it would be rendered as (its ``repr``), and a value under a secret-looking key
(:data:`core.pii.SENSITIVE_KEY`: token, secret, password, authorization, cookie, ``*_key``, dsn,
...) becomes ``[redacted]``, in nested dicts and in ``name=value`` / ``'name': value`` text too.
Context bound with ``structlog.contextvars`` (``request_id`` in the web role, ``job_id``,
``message_id``, ``actor``, ``attempt`` in workers) is merged into every line, stdlib ones too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from schoolsync.core.pii import SENSITIVE_KEY, mask_text

REDACTED = "[redacted]"
# keys ProcessorFormatter adds for its own use (a LogRecord, a flag): not rendered, left alone
_FORMATTER_META = frozenset({"_record", "_from_structlog"})
_MAX_DEPTH = 12  # deeper (or self-containing) data is logged as its masked repr
# ``token='abc'`` (a repr, kwargs, a query) and ``'token': 'abc'`` (a dict's repr, JSON)
_PAIR = re.compile(
    r"""(?:\b(?P<bare>[A-Za-z_][\w-]*)=|(?P<q>['"])(?P<quoted>[A-Za-z_][\w-]*)(?P=q):\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s,;&)\]}]+)"""
)


def _pair(match: re.Match[str]) -> str:
    name = match.group("bare") or match.group("quoted")
    if SENSITIVE_KEY.search(name) is None:
        return match[0]
    return match[0][: match.start("value") - match.start()] + REDACTED


def _text(text: str) -> str:
    return _PAIR.sub(_pair, mask_text(text))


def _secret_named(name: object) -> bool:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and SENSITIVE_KEY.search(name) is not None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value)


def _rendered(value: object) -> str:
    """The text a renderer would print for ``value`` (structlog's JSON fallback, or ``repr``)."""
    try:
        render = getattr(value, "__structlog__", None)
        return str(render()) if callable(render) else repr(value)
    except Exception:  # a broken __repr__ must not cost the log line
        return f"<{type(value).__name__}>"


def mask_value(value: Any, *, _depth: int = 0) -> Any:
    """``value`` with nothing personal or secret left in it, as a log line may show it.

    Strings are masked, containers are masked item by item (a ``(name, value)`` pair with a
    secret-looking name, as ASGI headers are, loses its value), numbers stay numbers unless their
    digits read as a phone or a card, and anything else (or a container nested deeper than
    ``_MAX_DEPTH``) becomes the masked text it would be rendered as.
    """
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        shown = str(value)
        masked = mask_text(shown)
        return value if masked == shown else masked
    if _depth >= _MAX_DEPTH:
        return _text(_rendered(value))
    if isinstance(value, dict):
        return {
            (_text(key) if isinstance(key, str) else key): (
                REDACTED
                if _secret_named(key) and not _blank(item)
                else mask_value(item, _depth=_depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if len(items) == 2 and isinstance(value, list | tuple) and _secret_named(items[0]):
            items = [items[0], REDACTED]
        masked_items = [mask_value(item, _depth=_depth + 1) for item in items]
        return tuple(masked_items) if isinstance(value, tuple) else masked_items
    return _text(_rendered(value))


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key in _FORMATTER_META:
            continue
        if SENSITIVE_KEY.search(key) and not _blank(value):
            event[key] = REDACTED
        else:
            event[key] = mask_value(value)
    return event


def configure_logging(*, fmt: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route stdlib logging (uvicorn, dramatiq) through it."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # tracebacks become text before masking, on a terminal too: an exception's message can
        # carry an email or a phone as well as any log line
        structlog.processors.format_exc_info,
        _mask,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
