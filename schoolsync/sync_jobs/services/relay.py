"""The relay: send again every job the broker may have lost (nothing lost, nothing looping)."""

from __future__ import annotations

from datetime import timedelta

from schoolsync.core.clock import utcnow
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import jobs
from schoolsync.sync_jobs.context import JobContext

log = get_logger(__name__)
RELAY_ACTOR = "relay_jobs"


def relay_jobs(ctx: JobContext) -> int:
    """Enqueue jobs never enqueued (broker was down), or queued / retrying / running far past
    their deadline. A duplicate message is harmless: the ledger lets one attempt run at a time
    and skips finished jobs. Returns how many were sent."""
    settings = ctx.jobs
    with ctx.db.read() as conn:
        rows = jobs.stuck(
            conn,
            now=utcnow(),
            enqueue_grace=timedelta(seconds=settings.enqueue_grace_s),
            requeue_after=timedelta(seconds=settings.requeue_after_s),
            running_stale_after=timedelta(milliseconds=settings.time_limit_ms)
            + timedelta(seconds=settings.requeue_after_s),
        )
    refs = [jobs.ref(r) for r in rows if r["actor"] != RELAY_ACTOR]
    if refs and ctx.queue.send(refs):
        log.info("relay re-sent jobs", count=len(refs))
    return len(refs)
