"""``LogContext``: every log line of a message names its job, message, actor and attempt.

Registered first on the broker (:func:`sync_jobs.broker.build_broker`), so that the lines of the
middleware after it (the job ledger's "job started" / "job done", Retries' "Retrying message")
and Dramatiq's own ("Failed to process message ...") carry the ids too.

A Dramatiq worker thread runs one message at a time, and what ``structlog.contextvars`` binds
lives in that thread until cleared: the context is cleared when a message starts and again when
it ends (processed or skipped), so nothing bound while one message ran (here, in the ledger or
in the actor) is seen in the next one on the same thread.
"""

from __future__ import annotations

from typing import Any

import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware


def message_context(message: MessageProxy) -> dict[str, Any]:
    """What a message's log lines carry: ``job_id`` (the ledger's, when the message has one),
    ``message_id``, ``actor`` and ``attempt`` (1 on the first delivery, +1 per Dramatiq retry)."""
    context: dict[str, Any] = {
        "message_id": message.message_id,
        "actor": message.actor_name,
        "attempt": int(message.options.get("retries", 0)) + 1,
    }
    job_id = message.options.get("job_id")
    if job_id is not None:
        context["job_id"] = job_id
    return context


class LogContext(Middleware):
    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**message_context(message))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
