"""``/metrics`` for Prometheus: webhooks by source and outcome (this process), and job state
read from the store and Redis at scrape time (true across every worker process and host)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from schoolsync.core.db import Database
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import failures, inbox, jobs
from schoolsync.sync_jobs.broker import LedgerBroker

log = get_logger(__name__)


class StoreCollector:
    def __init__(self, db: Database, broker: LedgerBroker) -> None:
        self.db = db
        self.broker = broker

    def collect(self) -> Iterator[Any]:
        try:
            with self.db.read() as conn:
                job_counts = jobs.count_by_status(conn)
                stats = jobs.attempt_stats(conn)
                open_failures = failures.count_open_by_class(conn)
                inbox_counts = inbox.count_by_status(conn)
        except Exception as exc:
            log.warning("metrics: store unavailable", error=str(exc))
            return
        gauge = GaugeMetricFamily(
            "schoolsync_jobs", "Jobs in the ledger by actor and status", labels=["actor", "status"]
        )
        for (actor, status), count in sorted(job_counts.items()):
            gauge.add_metric([actor, status], count)
        yield gauge
        attempts = CounterMetricFamily(
            "schoolsync_job_attempts",
            "Finished job attempts by outcome",
            labels=["actor", "outcome"],
        )
        duration = SummaryMetricFamily(
            "schoolsync_job_duration_seconds", "Duration of finished job attempts", labels=["actor"]
        )
        per_actor: dict[str, tuple[int, int]] = {}
        for actor, outcome, count, total_ms in stats:
            attempts.add_metric([actor, outcome], count)
            n, ms = per_actor.get(actor, (0, 0))
            per_actor[actor] = (n + count, ms + total_ms)
        for actor, (n, ms) in sorted(per_actor.items()):
            duration.add_metric([actor], count_value=n, sum_value=ms / 1000)
        yield attempts
        yield duration
        failed = GaugeMetricFamily(
            "schoolsync_failures_open", "Open failures by error class", labels=["error_class"]
        )
        for error_class, count in sorted(open_failures.items()):
            failed.add_metric([error_class], count)
        yield failed
        stored = GaugeMetricFamily(
            "schoolsync_inbox_events",
            "Inbox rows by source and status",
            labels=["source", "status"],
        )
        for (source, status), count in sorted(inbox_counts.items()):
            stored.add_metric([source, status], count)
        yield stored
        try:
            depth = self.broker.client.llen(f"{self.broker.namespace}:default")
        except Exception:
            return
        yield GaugeMetricFamily(
            "schoolsync_queue_depth", "Messages waiting in the default queue", value=depth
        )


def build_registry(db: Database, broker: LedgerBroker) -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    webhooks = Counter(
        "schoolsync_webhooks",
        "Webhooks received by source and outcome",
        labelnames=["source", "outcome"],
        registry=registry,
    )
    registry.register(StoreCollector(db, broker))
    return registry, webhooks
