"""Catch-up: orders whose callback never arrived, found through GetCourse's export API.

A periodic job (and ``schoolsync backfill``) asks GetCourse for the deals created since the last
run (with a day of overlap: the filter has day precision), waits for the file, and feeds every
row through the same intake as callbacks, so an order seen twice is stored once and a synced,
unchanged order is not pushed again. Exports are scarce (about 100 per 2 hours per account, one
at a time, shared by every worker through Redis): the id of an export in progress is kept in the
database, so a retry polls it instead of starting another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schoolsync.connectors.getcourse.exports import ExportTable
from schoolsync.core.clock import utcnow
from schoolsync.core.domain import Order
from schoolsync.core.errors import (
    MalformedInputError,
    PermanentError,
    RetryableError,
    UnmappableError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import cursors
from schoolsync.mappings.getcourse import order_from_wire
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import GetCourseSetup
from schoolsync.sync_jobs.services.order_intake import getcourse_setup, ingest_orders

log = get_logger(__name__)

EXPORT_ACTOR = "getcourse_export_sync"
_POLL_FOR_S = 60.0
_OVERLAP = timedelta(days=1)
_FIRST_LOOKBACK = timedelta(days=2)


@dataclass
class ExportReport:
    rows: int = 0
    orders: int = 0
    changed: int = 0
    problems: list[str] = field(default_factory=list)


def export_sync(
    ctx: JobContext,
    school: str,
    *,
    since: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ExportReport:
    """Fetch deals created since ``since`` (default: the last run, less a day) and ingest them."""
    setup = getcourse_setup(ctx, school)
    cursor = f"getcourse:{setup.account}:deals"
    pending_name = f"{cursor}:export"
    with ctx.db.read() as conn:
        last = cursors.get(conn, school, cursor)
        pending = cursors.get_text(conn, school, pending_name)
    run_started = utcnow()
    if pending and since is None:  # a backfill asks for its own range, never a pending export
        export_id_text, _, started_text = pending.partition("@")
        export_id = int(export_id_text)
        run_started = datetime.fromisoformat(started_text) if started_text else run_started
    else:
        start_day = since or _start_day(last, run_started, setup.tz)
        export_id = setup.exports.start_export("deals", {"created_at[from]": start_day.isoformat()})
        if since is None:
            with ctx.db.write() as conn:
                cursors.put_text(
                    conn, school, pending_name, f"{export_id}@{run_started.isoformat()}"
                )
        log.info("getcourse export started", school=school, since=start_day.isoformat())
    try:
        # a backfill (a person waiting at the terminal) waits as long as GetCourse takes: its
        # export is not remembered, and GetCourse runs one export at a time
        table = _wait_for(setup, export_id, progress, _POLL_FOR_S if since is None else 3600.0)
    except PermanentError:
        if since is None:  # GetCourse gave up on this export: start a new one next time
            with ctx.db.write() as conn:
                cursors.put_text(conn, school, pending_name, "")
        raise
    if table is None:
        raise RetryableError(
            "the GetCourse export is not ready yet; polling it again later",
            retry_after=30,
            platform="getcourse",
            account=setup.account,
        )
    report = ExportReport()
    orders: list[Order] = []
    rows = setup.exports.deal_rows(table)
    report.rows = len(rows)
    for index, row in enumerate(rows):
        try:
            orders.append(
                order_from_wire(row, account=setup.account, school=school, mapping=setup.mapping)
            )
        except (UnmappableError, MalformedInputError) as exc:
            report.problems.append(f"row {index + 1}: {exc.message}")
        if progress and index % 200 == 0:
            progress("rows", index, len(rows))
    report.orders = len(orders)
    for start in range(0, len(orders), 500):
        report.changed += ingest_orders(
            ctx, school, orders[start : start + 500], snapshot_at=run_started
        )
    if since is None:
        with ctx.db.write() as conn:
            cursors.put(conn, school, cursor, run_started)
            cursors.put_text(conn, school, pending_name, "")
    for problem in report.problems[:20]:
        log.error("getcourse export row skipped", school=school, problem=problem)
    log.info(
        "getcourse export ingested",
        school=school,
        rows=report.rows,
        orders=report.orders,
        changed=report.changed,
        skipped=len(report.problems),
    )
    return report


def _start_day(last: datetime | None, now: datetime, tz: ZoneInfo) -> date:
    base = (last - _OVERLAP) if last is not None else (now - _FIRST_LOOKBACK)
    return base.astimezone(tz).date()


def _wait_for(
    setup: GetCourseSetup,
    export_id: int,
    progress: Callable[[str, int, int], None] | None,
    poll_for_s: float,
) -> ExportTable | None:
    exports = setup.exports
    started = time.monotonic()
    deadline = started + poll_for_s
    delay = 0.5
    while True:
        table = exports.fetch_export(export_id)
        if table is not None:
            return table
        if time.monotonic() + delay > deadline:
            return None
        if progress:
            progress("waiting", 0, 0)
        time.sleep(delay)
        # every poll spends one of the account's ~100 export requests per 2 hours: often at
        # first (most exports are ready in seconds), then twice a minute
        delay = min(delay * 2, 5.0 if time.monotonic() - started < 60 else 30.0)
