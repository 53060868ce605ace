"""``/metrics`` for Prometheus: webhooks by source and outcome (this process), and the state of
the store and Redis read at scrape time, so true across every worker process and host.

Scrape cost stays bounded: the store is read through indexes (status, primary key) or over small
tables. Attempt counters and the duration histogram are running totals: each scrape adds only
the attempts finished since the last one (see :class:`AttemptCounters`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy.engine import Connection

from schoolsync.connectors.pacing import read_stats
from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.logging import get_logger
from schoolsync.core.settings import JobSettings
from schoolsync.core.stores import failures, inbox, jobs, reconcile
from schoolsync.core.stores.jobs import AttemptTotals
from schoolsync.sync_jobs.broker import LedgerBroker

log = get_logger(__name__)

# upper bounds of the job duration histogram, in seconds (+Inf is added)
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# an attempt is folded into the running totals only once it started this long ago: on
# PostgreSQL a claim's transaction may still commit a lower id than one already seen
SETTLE_AFTER = timedelta(minutes=2)

REJECTED_HELP = (
    "Rejected inbox rows (never processed) by source and reason: signature (forged or missing "
    "signature or secret), ip (sent from outside the platform's networks), malformed (not "
    "parseable, or an unknown school), too_large, content_type, replay, other"
)


class AttemptCounters:
    """Finished job attempts per actor and outcome, with duration buckets, as running totals.

    Attempts up to a watermark id are settled (finished, started more than ``settle_after``
    ago: they never change again) and kept in memory; each read adds the settled attempts
    after the watermark, and counts the finished ones beyond it afresh. The first read of a
    process scans every attempt once; later ones only the recent tail, by primary key.
    """

    def __init__(
        self,
        *,
        buckets_s: tuple[float, ...] = DURATION_BUCKETS_S,
        settle_after: timedelta = SETTLE_AFTER,
    ) -> None:
        self.buckets_s = buckets_s
        self.bounds_ms = [round(b * 1000) for b in buckets_s]
        self.settle_after = settle_after
        self._lock = threading.Lock()
        self._upto = 0
        self._settled: dict[tuple[str, str], AttemptTotals] = {}

    def read(self, conn: Connection, *, now: datetime) -> list[AttemptTotals]:
        """Totals of every finished attempt, sorted by actor and outcome."""
        with self._lock:
            started_before = now - self.settle_after
            upto = jobs.attempts_settled_upto(
                conn, after_id=self._upto, started_before=started_before
            )
            if upto < self._upto:  # the store went back (restored): count from scratch
                self._upto, self._settled = 0, {}
                upto = jobs.attempts_settled_upto(conn, after_id=0, started_before=started_before)
            if upto > self._upto:
                fresh = jobs.attempt_totals(
                    conn, bounds_ms=self.bounds_ms, after_id=self._upto, upto_id=upto
                )
                _fold(self._settled, fresh)
                self._upto = upto
            totals = dict(self._settled)
        _fold(totals, jobs.attempt_totals(conn, bounds_ms=self.bounds_ms, after_id=upto))
        return [totals[key] for key in sorted(totals)]


def _fold(into: dict[tuple[str, str], AttemptTotals], rows: list[AttemptTotals]) -> None:
    for row in rows:
        key = (row.actor, row.outcome)
        into[key] = into[key].plus(row) if key in into else row


class StoreCollector:
    def __init__(
        self, db: Database, broker: LedgerBroker, *, jobs_settings: JobSettings | None = None
    ) -> None:
        self.db = db
        self.broker = broker
        settings = jobs_settings or JobSettings()
        self.requeue_after = timedelta(seconds=settings.requeue_after_s)
        # as the relay: a running job is lost past its time limit plus requeue_after
        self.running_stale_after = timedelta(
            milliseconds=settings.time_limit_ms, seconds=settings.requeue_after_s
        )
        self.attempts = AttemptCounters()

    def collect(self) -> Iterator[Any]:
        yield from self._store()
        yield from self._redis()

    def _store(self) -> Iterator[Any]:
        now = utcnow()
        try:
            with self.db.read() as conn:
                job_counts = jobs.count_by_status(conn)
                totals = self.attempts.read(conn, now=now)
                outbox_since = jobs.outbox_oldest(
                    conn,
                    now=now,
                    requeue_after=self.requeue_after,
                    running_stale_after=self.running_stale_after,
                )
                open_failures = failures.count_open_by_class(conn)
                inbox_counts = inbox.count_by_status(conn)
                rejected = inbox.rejected_by_category(conn)
                inbox_since = inbox.oldest_received_at(conn)
                reconcile_open = reconcile.open_by_school(conn)
        except Exception as exc:
            log.warning("metrics: store unavailable", error=str(exc))
            return
        gauge = GaugeMetricFamily(
            "schoolsync_jobs", "Jobs in the ledger by actor and status", labels=["actor", "status"]
        )
        for (actor, status), count in sorted(job_counts.items()):
            gauge.add_metric([actor, status], count)
        yield gauge
        yield from self._attempts(totals)
        yield GaugeMetricFamily(
            "schoolsync_outbox_lag_seconds",
            "Age of the oldest job that should be in Redis and is not: queued and never "
            "enqueued (since written), or lost as the relay sees it (queued, retrying or "
            "running far past its time); 0 when none",
            value=_age(now, outbox_since),
        )
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
        refused = GaugeMetricFamily(
            "schoolsync_inbox_rejected", REJECTED_HELP, labels=["source", "reason"]
        )
        for (source, reason), count in sorted(rejected.items()):
            refused.add_metric([source, reason], count)
        yield refused
        yield GaugeMetricFamily(
            "schoolsync_inbox_unprocessed_oldest_seconds",
            "Age of the oldest inbox row not processed yet (nor rejected); 0 when none",
            value=_age(now, inbox_since),
        )
        queue = GaugeMetricFamily(
            "schoolsync_reconcile_queue",
            "Open reconciliation items (waiting for a person) by school",
            labels=["school"],
        )
        for school, count in sorted(reconcile_open.items()):
            queue.add_metric([school], count)
        yield queue

    def _attempts(self, totals: list[AttemptTotals]) -> Iterator[Any]:
        attempts = CounterMetricFamily(
            "schoolsync_job_attempts",
            "Finished job attempts by actor and outcome (ok, retry, failed, crashed)",
            labels=["actor", "outcome"],
        )
        retries = CounterMetricFamily(
            "schoolsync_job_retries",
            "Job attempts that ended in a retry, by actor",
            labels=["actor"],
        )
        duration = HistogramMetricFamily(
            "schoolsync_job_duration_seconds",
            "Duration of finished job attempts, every outcome (a crashed attempt has none)",
            labels=["actor"],
        )
        per_actor: dict[str, AttemptTotals] = {}
        retried: dict[str, int] = {}
        for row in totals:
            attempts.add_metric([row.actor, row.outcome], row.count)
            retried[row.actor] = retried.get(row.actor, 0) + (
                row.count if row.outcome == "retry" else 0
            )
            seen = per_actor.get(row.actor)
            per_actor[row.actor] = row if seen is None else seen.plus(row)
        for actor, count in sorted(retried.items()):
            retries.add_metric([actor], count)
        for actor, row in sorted(per_actor.items()):
            buckets = [
                (str(float(bound)), count)
                for bound, count in zip(self.attempts.buckets_s, row.le_counts, strict=True)
            ]
            duration.add_metric(
                [actor], [*buckets, ("+Inf", row.timed)], sum_value=row.duration_ms / 1000
            )
        yield attempts
        yield retries
        yield duration

    def _redis(self) -> Iterator[Any]:
        try:
            depth = self.broker.client.llen(f"{self.broker.namespace}:default")
            pacing = read_stats(self.broker.client, self.broker.namespace)
        except Exception as exc:
            log.warning("metrics: redis unavailable", error=str(exc))
            return
        yield GaugeMetricFamily(
            "schoolsync_queue_depth", "Messages waiting in the default queue", value=depth
        )
        waits = CounterMetricFamily(
            "schoolsync_pacing_waits",
            "Calls that had to wait for their platform's rate budget, by platform (every process)",
            labels=["platform"],
        )
        waited = CounterMetricFamily(
            "schoolsync_pacing_wait_seconds",
            "Seconds calls slept for their platform's rate budget, by platform (every process)",
            labels=["platform"],
        )
        limited = CounterMetricFamily(
            "schoolsync_platform_429",
            "429 answers received from a platform, by platform (every process); a Telegram 429 "
            "for one chat counts under telegram and under telegram-chat",
            labels=["platform"],
        )
        for platform, stats in sorted(pacing.items()):
            waits.add_metric([platform], stats.waits)
            waited.add_metric([platform], stats.wait_seconds)
            limited.add_metric([platform], stats.rate_limited)
        yield waits
        yield waited
        yield limited


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def build_registry(
    db: Database, broker: LedgerBroker, *, jobs_settings: JobSettings | None = None
) -> tuple[CollectorRegistry, Counter]:
    """The registry ``/metrics`` serves and the webhook counter of this process.

    ``jobs_settings`` (the relay's ``requeue_after_s`` and ``time_limit_ms``) decide when a job
    counts as lost for ``schoolsync_outbox_lag_seconds``; the defaults when not given.
    """
    registry = CollectorRegistry()
    webhooks = Counter(
        "schoolsync_webhooks",
        "Webhooks received by source and outcome",
        labelnames=["source", "outcome"],
        registry=registry,
    )
    registry.register(StoreCollector(db, broker, jobs_settings=jobs_settings))
    return registry, webhooks
