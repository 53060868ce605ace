"""Turn a stored inbox row into what it asks for, once."""

from __future__ import annotations

from schoolsync.core.errors import ConfigError
from schoolsync.core.stores import inbox
from schoolsync.sync_jobs.context import JobContext


def process_inbox_event(ctx: JobContext, inbox_id: int, job_id: int | None = None) -> None:
    """Dispatch the row to its source's processor; a processed row is left alone."""
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    if row["status"] != inbox.RECEIVED:
        return
    processor = ctx.processors.get(row["source"])
    if processor is None:
        raise ConfigError(f"no processor for inbox source {row['source']!r}")
    processor(ctx, inbox_id, job_id)
