"""The Dramatiq RedisBroker, tuned for crash recovery, with pipelined batch enqueue."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from dramatiq.middleware import CurrentMessage, Retries

from schoolsync.core.errors import is_retryable
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.sync_jobs.log_context import LogContext

HEARTBEATS = "__heartbeats__"


class LedgerBroker(RedisBroker):
    """RedisBroker plus ``enqueue_many``: one Redis round trip for a batch of messages."""

    def enqueue_many(self, messages: Sequence[dramatiq.Message[Any]], *, delay_ms: int = 0) -> None:
        """Enqueue every message in one pipeline (same Lua script as ``enqueue``); with
        ``delay_ms``, on the delay queue, due that much later (as ``enqueue(delay=)`` does)."""
        if not messages:
            return
        prepared = []
        for message in messages:
            options: dict[str, Any] = {"redis_message_id": str(uuid4())}
            if delay_ms > 0:
                options["eta"] = int(time.time() * 1000) + delay_ms
                message = message.copy(queue_name=dq_name(message.queue_name))
            copy = message.copy(options=options)
            self.emit_before("enqueue", copy, None)
            prepared.append(copy)
        dispatch = self.scripts["dispatch"]
        now = int(time.time() * 1000)
        with self.client.pipeline(transaction=False) as pipe:
            for copy in prepared:
                args = [
                    "enqueue",
                    now,
                    copy.queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    0,
                    self._max_unpack_size(),  # type: ignore[no-untyped-call]
                    copy.options["redis_message_id"],
                    copy.encode(),
                ]
                dispatch(args=args, keys=[self.namespace], client=pipe)
            pipe.execute()
        for copy in prepared:
            self.emit_after("enqueue", copy, None)

    def is_alive(self, broker_id: str) -> bool:
        """Whether the worker process ``broker_id`` has talked to Redis within the heartbeat
        timeout: the same test Dramatiq uses before it hands that worker's messages to another."""
        seen = self.client.zscore(f"{self.namespace}:{HEARTBEATS}", broker_id)
        return seen is not None and time.time() * 1000 - float(seen) < self.heartbeat_timeout


def retry_policy(max_retries: int) -> Callable[[int, BaseException], bool]:
    """Retry by error class: permanent and verification errors never, others ``max_retries`` times."""

    def retry_when(retries_so_far: int, exc: BaseException) -> bool:
        cause = exc.__cause__ if isinstance(exc, dramatiq.Retry) and exc.__cause__ else exc
        return is_retryable(cause) and retries_so_far < max_retries

    return retry_when


def build_broker(url: str, *, broker: BrokerSettings, jobs: JobSettings) -> LedgerBroker:
    """A broker with our recovery tuning, retry policy and log context (job and message ids in
    every line); add the ledger middleware after."""
    redis_broker = LedgerBroker(  # type: ignore[no-untyped-call]
        url=url,
        namespace=broker.namespace,
        heartbeat_timeout=broker.heartbeat_timeout_ms,
        maintenance_chance=broker.maintenance_chance,
        socket_connect_timeout=3,
        socket_timeout=10,
    )
    for middleware in redis_broker.middleware:
        if isinstance(middleware, Retries):
            middleware.max_retries = jobs.max_retries
            middleware.min_backoff = jobs.min_backoff_ms
            middleware.max_backoff = jobs.max_backoff_ms
            middleware.retry_when = retry_policy(jobs.max_retries)
    redis_broker.add_middleware(CurrentMessage())
    # first of all: every other middleware's log lines (the ledger's too) carry the message's ids
    redis_broker.add_middleware(LogContext(), before=type(redis_broker.middleware[0]))
    return redis_broker
