"""W14: replay every open failure matching a filter, after a dry run that says what would happen.

The dry run (``dry_run``) groups the failures by root cause and asks each one's pre-check, where
its job has one, whether it would get through now: a CRM push failure maps its order with the
configuration of this process (``mappings.amocrm.lead_for``) and reports the mapping's error;
other jobs "would run again". The configuration is read when a process starts: after a fix to
``schoolsync.yaml`` restart the web and worker roles (the CLI reads the file each time).

The replay itself is a job (``bulk_replay``): a ``bulk_replays`` row holds the filter, the
failures it may touch (those matching when it was asked for, up to the highest id then) and the
progress (done / total). The job queues the failures again in chunks of ``CHUNK``, each chunk
one transaction, and looks at ``cancel_requested`` before each chunk. Each failure replayed is
one ordinary replay (same job row, same idempotency keys, its own audit entry settled by its
outcome); a failure replayed successfully becomes ``resolved`` when its job is done. A second
bulk replay of the same filter finds nothing open and does nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from schoolsync.connectors.getcourse.callbacks import parse_callback
from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.tables import SYSTEM_SCHOOL, bulk_replays
from schoolsync.core.domain import Order
from schoolsync.core.errors import NotFoundError, SchoolsyncError, UnmappableError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import audit, failures, inbox, jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores.failures import FailureFilter
from schoolsync.mappings.amocrm import lead_for
from schoolsync.mappings.getcourse import order_from_wire
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.names import PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.replay import replay_many
from schoolsync.sync_jobs.services.crm_push import LEAD, ORDER, RESEND_ACTOR
from schoolsync.sync_jobs.services.order_intake import check_mappable

log = get_logger(__name__)

BULK_REPLAY_ACTOR = "bulk_replay"
CHUNK = 50
QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
FINISHED = (DONE, CANCELLED, FAILED)
WOULD_RUN = "would run again"


# --- dry run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool  # would get through the job's pre-check
    what: str  # "would create a lead", "would fail the config check: ..."


Precheck = Callable[[JobContext, Connection, RowMapping], Verdict]


def _crm_order(ctx: JobContext, conn: Connection, failure: RowMapping) -> Verdict:
    """A CRM push failure (``resend_order_to_crm``): the order mapped with today's config."""
    args = failure["args"]
    school = str(args.get("school") or failure["school"])
    setup = ctx.platforms.of(school).amocrm if ctx.platforms else None
    if setup is None or setup.mapping is None:
        return Verdict(False, "would do nothing: the school has no amoCRM account or mapping")
    row = order_store.get(
        conn, school, str(args["platform"]), str(args["account"]), str(args["number"])
    )
    if row is None:
        return Verdict(False, "would fail: the order is not in the order mirror")
    order = Order.model_validate(row["data"])
    try:
        lead_for(order, setup.mapping, school=school)
    except UnmappableError as exc:
        cause = failures.normalise(exc.message).removeprefix("order N: ")
        return Verdict(False, f"would fail the config check: {cause}")
    known = links.targets(conn, school, ORDER, [order.number], LEAD)
    return Verdict(True, "would update its lead" if known else "would create a lead")


def _inbox_event(ctx: JobContext, conn: Connection, failure: RowMapping) -> Verdict:
    """A stored webhook's processing (``process_inbox_event``): a GetCourse callback is read
    and its order mapped for the CRM with today's config, as the intake does; other sources
    are processed again."""
    row = inbox.get(conn, int(failure["args"].get("inbox_id") or 0))
    if row is None:
        return Verdict(False, "would fail: the stored webhook is gone")
    if row["status"] == inbox.REJECTED:
        return Verdict(False, "would fail: the webhook was rejected (never processed)")
    source = str(row["source"])
    school = str(row["school"])
    setup = ctx.platforms.of(school).getcourse if ctx.platforms else None
    if source != "getcourse" or setup is None:
        return Verdict(True, f"would process the {source} event again")
    try:
        callback = parse_callback(str(row["query"]), setup.tz)
        order = order_from_wire(
            callback, account=setup.account, school=school, mapping=setup.mapping
        )
        check_mappable(ctx, school, order)
    except SchoolsyncError as exc:
        cause = failures.normalise(exc.message).removeprefix("order N: ")
        return Verdict(False, f"would fail the config check: {cause}")
    except Exception as exc:  # the intake would fail the same way: say how, not why in detail
        return Verdict(False, f"would fail: {type(exc).__name__}")
    known = links.targets(conn, school, ORDER, [order.number], LEAD)
    return Verdict(True, "would update its lead" if known else "would create a lead")


PRECHECKS: dict[str, Precheck] = {RESEND_ACTOR: _crm_order, PROCESS_INBOX_EVENT: _inbox_event}


@dataclass(frozen=True)
class GroupForecast:
    key: str
    actor: str
    error_class: str
    pattern: str  # the root cause (normalised message; may name a person: mask for viewers)
    count: int
    outcomes: dict[str, int]  # what would happen -> how many


@dataclass(frozen=True)
class DryRun:
    total: int
    would_run: int  # pass their pre-check (or have none)
    would_fail: int
    outcomes: dict[str, int]
    groups: list[GroupForecast]
    summary: str  # "412 failures: 398 would create a lead, 14 would fail the config check: ..."


def dry_run(ctx: JobContext, filt: FailureFilter) -> DryRun:
    """What a bulk replay of ``filt`` would do now: only open failures are replayed."""
    with ctx.db.read() as conn:
        rows = failures.matching(conn, filt.with_status(failures.OPEN))
        by_group: dict[str, dict[str, Any]] = {}
        outcomes: Counter[str] = Counter()
        would_run = 0
        for row in rows:
            check = PRECHECKS.get(row["actor"])
            verdict = check(ctx, conn, row) if check else Verdict(True, WOULD_RUN)
            would_run += verdict.ok
            outcomes[verdict.what] += 1
            key = failures.group_key(row["actor"], row["error_class"], row["error_message"])
            group = by_group.setdefault(
                key,
                {
                    "key": key,
                    "actor": row["actor"],
                    "error_class": row["error_class"],
                    "pattern": failures.normalise(row["error_message"]),
                    "count": 0,
                    "outcomes": Counter[str](),
                },
            )
            group["count"] += 1
            group["outcomes"][verdict.what] += 1
    forecasts = sorted(
        (
            GroupForecast(**{**g, "outcomes": dict(g["outcomes"].most_common())})
            for g in by_group.values()
        ),
        key=lambda g: (-g.count, g.key),
    )
    return DryRun(
        total=len(rows),
        would_run=would_run,
        would_fail=len(rows) - would_run,
        outcomes=dict(outcomes.most_common()),
        groups=forecasts,
        summary=summarise(len(rows), outcomes),
    )


def summarise(total: int, outcomes: Counter[str]) -> str:
    if total == 0:
        return "no open failure matches: nothing would run"
    noun = "failure" if total == 1 else "failures"
    return f"{total} {noun}: " + ", ".join(f"{n} {what}" for what, n in outcomes.most_common())


# --- the job and its row -------------------------------------------------------------------


@dataclass(frozen=True)
class BulkStatus:
    id: int
    school: str
    who: str
    filter: dict[str, Any]
    status: str
    total: int
    done: int
    skipped: int
    cancel_requested: bool
    job_id: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _status(row: RowMapping) -> BulkStatus:
    return BulkStatus(
        id=int(row["id"]),
        school=str(row["school"]),
        who=str(row["who"]),
        filter=dict(row["filter"]),
        status=str(row["status"]),
        total=int(row["total"]),
        done=int(row["done"]),
        skipped=int(row["skipped"]),
        cancel_requested=bool(row["cancel_requested"]),
        job_id=int(row["job_id"]) if row["job_id"] is not None else None,
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _row(conn: Connection, bulk_id: int) -> RowMapping | None:
    query = sa.select(bulk_replays).where(bulk_replays.c.id == bulk_id)
    return conn.execute(query).mappings().first()


def bulk_status(db: Database, bulk_id: int) -> BulkStatus:
    """Raises ``NotFoundError`` for an unknown id."""
    with db.read() as conn:
        row = _row(conn, bulk_id)
    if row is None:
        raise NotFoundError(f"bulk replay {bulk_id} does not exist")
    return _status(row)


def recent(db: Database, *, limit: int = 20) -> list[BulkStatus]:
    query = sa.select(bulk_replays).order_by(bulk_replays.c.id.desc()).limit(limit)
    with db.read() as conn:
        return [_status(r) for r in conn.execute(query).mappings()]


def start_bulk_replay(ctx: JobContext, filt: FailureFilter, *, who: str) -> BulkStatus:
    """Ask for a replay of every open failure matching ``filt`` (as they are now) and queue the
    job that does it. With nothing open to replay the row is ``done`` at once and no job runs.
    """
    filt = filt.with_status(failures.OPEN)
    now = utcnow()
    school = filt.school or SYSTEM_SCHOOL
    with ctx.db.write() as conn:
        ids = failures.matching_ids(conn, filt)
        bulk_id = int(
            conn.execute(
                sa.insert(bulk_replays)
                .values(
                    school=school,
                    who=who,
                    filter=filt.to_json(),
                    status=QUEUED if ids else DONE,
                    total=len(ids),
                    max_failure_id=max(ids, default=0),
                    created_at=now,
                    finished_at=None if ids else now,
                )
                .returning(bulk_replays.c.id)
            ).scalar_one()
        )
        ref = None
        if ids:
            ref = jobs.add(
                conn,
                school=school,
                actor=BULK_REPLAY_ACTOR,
                args={"bulk_id": bulk_id},
                dedup_key=f"bulk-replay:{bulk_id}",
            )
            assert ref is not None
            conn.execute(
                sa.update(bulk_replays).where(bulk_replays.c.id == bulk_id).values(job_id=ref.id)
            )
        audit.add(
            conn,
            school=school,
            who=who,
            action="bulk_replay",
            target=f"bulk:{bulk_id}",
            detail={"filter": filt.to_json(), "total": len(ids)},
            outcome=audit.PENDING if ref else audit.SUCCEEDED,
            job_id=ref.id if ref else None,
        )
        row = _row(conn, bulk_id)
    assert row is not None
    if ref is not None:
        ctx.queue.send([ref])
    log.info("bulk replay asked for", bulk=bulk_id, total=len(ids))
    return _status(row)


def cancel_bulk_replay(db: Database, bulk_id: int, *, who: str) -> BulkStatus:
    """Ask a queued or running bulk replay to stop before its next chunk (what was queued
    again stays queued). Cancelling a finished one changes nothing.

    Raises ``NotFoundError`` for an unknown id."""
    with db.write() as conn:
        row = _row(conn, bulk_id)
        if row is None:
            raise NotFoundError(f"bulk replay {bulk_id} does not exist")
        asked = row["status"] not in FINISHED
        if asked:
            conn.execute(
                sa.update(bulk_replays)
                .where(bulk_replays.c.id == bulk_id)
                .values(cancel_requested=True)
            )
        audit.add(
            conn,
            school=row["school"],
            who=who,
            action="cancel",
            target=f"bulk:{bulk_id}",
            detail={"was": row["status"]},
            outcome=audit.SUCCEEDED if asked else audit.FAILED,
        )
        fresh = _row(conn, bulk_id)
    assert fresh is not None
    return _status(fresh)


def run_bulk_replay(ctx: JobContext, bulk_id: int) -> None:
    """The job: queue the matching failures again, ``CHUNK`` at a time, until done or
    cancelled. Safe to run twice: it goes on from the last failure it queued."""
    with ctx.db.write() as conn:
        row = _row(conn, bulk_id)
        if row is None or row["status"] in FINISHED:
            return
        conn.execute(
            sa.update(bulk_replays)
            .where(bulk_replays.c.id == bulk_id)
            .values(status=RUNNING, started_at=row["started_at"] or utcnow())
        )
    filt = FailureFilter.from_json(row["filter"]).with_status(failures.OPEN)
    who = str(row["who"])
    while True:
        with ctx.db.write() as conn:
            row = _row(conn, bulk_id)
            assert row is not None
            if row["cancel_requested"]:
                _finish(conn, row, CANCELLED)
                log.info("bulk replay cancelled", bulk=bulk_id, done=row["done"])
                return
            ids = failures.matching_ids(
                conn,
                filt,
                after_id=int(row["last_failure_id"]),
                up_to_id=int(row["max_failure_id"]),
                limit=CHUNK,
            )
            if not ids:
                _finish(conn, row, DONE)
                log.info("bulk replay done", bulk=bulk_id, done=row["done"])
                return
            many = replay_many(conn, ids, who=who, detail={"bulk": bulk_id})
            conn.execute(
                sa.update(bulk_replays)
                .where(bulk_replays.c.id == bulk_id)
                .values(
                    done=bulk_replays.c.done + len(many.replayed),
                    skipped=bulk_replays.c.skipped + len(many.skipped),
                    last_failure_id=max(ids),
                )
            )
        ctx.queue.send(many.refs)


def _finish(conn: Connection, row: RowMapping, status: str) -> None:
    """Close the row; failures that stopped matching meanwhile (replayed, resolved or ignored
    by someone else) count as skipped."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if status == DONE:
        values["skipped"] = max(int(row["total"]) - int(row["done"]), int(row["skipped"]))
    conn.execute(sa.update(bulk_replays).where(bulk_replays.c.id == row["id"]).values(**values))
