"""Turn a stored inbox row into what it asks for, once."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

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


def process_inbox_batch(ctx: JobContext, inbox_ids: list[int]) -> None:
    """Process a batch of stored events of one source together; processed rows are skipped."""
    with ctx.db.read() as conn:
        rows = [r for r in inbox.get_many(conn, inbox_ids) if r["status"] == inbox.RECEIVED]
    by_source: dict[str, list[RowMapping]] = {}
    for row in rows:
        by_source.setdefault(str(row["source"]), []).append(row)
    for source, source_rows in by_source.items():
        processor = ctx.batch_processors.get(source)
        if processor is None:
            raise ConfigError(f"no batch processor for inbox source {source!r}")
        processor(ctx, source_rows)
