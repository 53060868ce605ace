"""``/admin/api/*`` for the admin console (W14): failures, replays, the inbox, the
reconciliation queue and the audit log.

Every route needs a bearer token (``admin_auth``); a viewer reads (personal data masked), an
operator also acts. Every action, done or refused, is in the audit trail under the token's name.
The routes are thin: what they show comes from ``admin_views`` and what they do from
``sync_jobs.replay`` and ``sync_jobs.services.bulk_replay`` (the web pages call the same).

FastAPI reads the routes' annotations at definition time, and the dependencies here are local to
``console_router`` (they close over the settings): so no ``from __future__ import annotations``.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import exc as sa_exc

from schoolsync.app.web import admin_views as views
from schoolsync.app.web.admin_auth import Principal, authenticator, require_operator
from schoolsync.core.clock import as_utc
from schoolsync.core.db.tables import SYSTEM_SCHOOL
from schoolsync.core.errors import (
    ConfigError,
    NotFoundError,
    SchoolsyncError,
    StoreUnavailableError,
)
from schoolsync.core.settings import Settings
from schoolsync.core.stores import audit, failures, inbox
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.failures import FailureFilter
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.replay import close_failure, replay_failure, replay_inbox_event
from schoolsync.sync_jobs.services import bulk_replay
from schoolsync.sync_jobs.services.reconcile import resolve as resolve_finding

MAX_ID = 2**62
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
FailureStatus = Literal["open", "replaying", "resolved", "ignored"]
Text = Annotated[str | None, Query(max_length=200)]
bearer = HTTPBearer(auto_error=False, description="an admin token (viewer or operator)")


class FilterIn(BaseModel):
    """Which failures: every field narrows; none given means every failure."""

    model_config = ConfigDict(extra="forbid")

    school: str | None = Field(default=None, max_length=40)
    platform: str | None = Field(default=None, max_length=40)
    actor: str | None = Field(default=None, max_length=80, description="the job (workflow)")
    error_class: str | None = Field(default=None, max_length=120)
    entity: str | None = Field(
        default=None, max_length=200, description="an order number or email in its input or error"
    )
    since: datetime | None = None
    until: datetime | None = None
    group: str | None = Field(default=None, max_length=40, description="a root cause's key")

    def to_filter(self, status: str | None = None) -> FailureFilter:
        return FailureFilter(
            school=self.school,
            platform=self.platform,
            actor=self.actor,
            error_class=self.error_class,
            entity=self.entity,
            since=as_utc(self.since) if self.since else None,
            until=as_utc(self.until) if self.until else None,
            status=status,
            group=self.group,
        )


class BulkReplayIn(FilterIn):
    dry_run: bool = Field(
        default=True, description="only say what would happen (the default); false replays"
    )


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class ResolveFindingIn(BaseModel):
    """The payment(s) pay ``order``, or are ``not_ours``: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    order: str | None = Field(default=None, min_length=1, max_length=60)
    not_ours: bool = False
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_choice(self) -> "ResolveFindingIn":
        if (self.order is None) == (not self.not_ours):
            raise ValueError("give either order or not_ours: true")
        return self


class ReplayOut(BaseModel):
    job_id: int
    audit_id: int = Field(description="the audit entry the job's outcome settles")
    enqueued: bool = Field(description="false: Redis was unreachable; the relay sends it")


class ClosedOut(BaseModel):
    id: int
    status: str
    audit_id: int


class ResolvedFindingOut(BaseModel):
    id: int
    message: str


def console_router(settings: Settings, ctx: JobContext, *, prefix: str = "/admin/api") -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["admin console"])
    authenticate = authenticator(settings)
    db = ctx.db

    def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
        return authenticate(header)

    Caller = Annotated[Principal, Depends(caller)]

    def acting(principal: Principal, action: str, target: str, school: str) -> None:
        """403 for a viewer, and the refusal in the audit trail."""
        if principal.can_act:
            return
        with db.write() as conn:
            audit.add(
                conn,
                school=school,
                who=principal.who,
                action=action,
                target=target,
                detail={"refused": "viewer"},
                outcome=audit.FAILED,
            )
        require_operator(principal)

    def refused(principal: Principal, action: str, target: str, school: str, why: str) -> None:
        with db.write() as conn:
            audit.add(
                conn,
                school=school,
                who=principal.who,
                action=action,
                target=target,
                detail={"refused": why[:500]},
                outcome=audit.FAILED,
            )

    def filter_of(
        school: Text = None,
        platform: Text = None,
        actor: Text = None,
        error_class: Annotated[str | None, Query(alias="class", max_length=120)] = None,
        entity: Text = None,
        since: datetime | None = None,
        until: datetime | None = None,
        group: Text = None,
        status: FailureStatus | None = None,
    ) -> FailureFilter:
        return FilterIn(
            school=school,
            platform=platform,
            actor=actor,
            error_class=error_class,
            entity=entity,
            since=since,
            until=until,
            group=group,
        ).to_filter(status)

    Filter = Annotated[FailureFilter, Depends(filter_of)]

    @router.get("/overview", response_model=views.OverviewOut)
    def get_overview(
        principal: Caller, school: Text = None, hours: Annotated[int, Query(ge=1, le=720)] = 24
    ) -> views.OverviewOut:
        """The last ``hours`` at a glance: failures by platform, workflow and error class, what
        is open, rejected webhooks, the reconciliation queue, the biggest root causes."""
        with _translated():
            return views.overview(db, principal=principal, school=school, hours=hours)

    @router.get("/failures", response_model=views.FailurePageOut)
    def list_failures(
        principal: Caller,
        filt: Filter,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> views.FailurePageOut:
        """Failures, newest first, filtered; pass ``next_cursor`` back as ``cursor``."""
        with _translated():
            return views.failure_page(db, filt, principal=principal, cursor=cursor, limit=limit)

    @router.get("/failures/groups", response_model=list[views.GroupOut])
    def list_groups(principal: Caller, filt: Filter) -> list[views.GroupOut]:
        """The filtered failures grouped by root cause (same job, error class and message
        with numbers and ids left out), the biggest first."""
        with _translated():
            return views.failure_groups(db, filt, principal=principal)

    @router.get(
        "/failures/{failure_id}",
        response_model=views.FailureDetailOut,
        responses={404: {"description": "no such failure"}},
    )
    def get_failure(principal: Caller, failure_id: Id) -> views.FailureDetailOut:
        """One failure: its input, error, every attempt and its audit trail."""
        with _translated():
            return views.failure_detail(db, failure_id, principal=principal)

    def _failure_school(failure_id: int) -> str:
        with db.read() as conn:
            row = failures.get(conn, failure_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"failure {failure_id} does not exist")
        return str(row["school"])

    @router.post(
        "/failures/{failure_id}/replay",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ReplayOut,
        responses={403: {"description": "viewer"}, 404: {}, 409: {"description": "not open"}},
    )
    def post_replay(principal: Caller, failure_id: Id) -> ReplayOut:
        """Run the failed job again from the start, with the configuration of now and its
        original idempotency keys; done, it resolves the failure (see its audit trail)."""
        with _translated():
            school = _failure_school(failure_id)
            acting(principal, "replay", f"failure:{failure_id}", school)
            try:
                ticket = replay_failure(db, ctx.queue, failure_id, who=principal.who)
            except ConfigError as exc:
                refused(principal, "replay", f"failure:{failure_id}", school, exc.message)
                raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
        return ReplayOut(job_id=ticket.job_id, audit_id=ticket.audit_id, enqueued=ticket.enqueued)

    def _close(principal: Principal, failure_id: int, body: CommentIn, closed: str) -> ClosedOut:
        action = "resolve" if closed == failures.RESOLVED else "ignore"
        with _translated():
            school = _failure_school(failure_id)
            acting(principal, action, f"failure:{failure_id}", school)
            try:
                audit_id = close_failure(
                    db, failure_id, status=closed, who=principal.who, comment=body.comment
                )
            except ConfigError as exc:
                refused(principal, action, f"failure:{failure_id}", school, exc.message)
                raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
        return ClosedOut(id=failure_id, status=closed, audit_id=audit_id)

    @router.post(
        "/failures/{failure_id}/resolve",
        response_model=ClosedOut,
        responses={403: {"description": "viewer"}, 404: {}, 409: {"description": "not open"}},
    )
    def post_resolve(principal: Caller, failure_id: Id, body: CommentIn) -> ClosedOut:
        """Close an open failure as resolved (fixed by hand), with a comment for the record."""
        return _close(principal, failure_id, body, failures.RESOLVED)

    @router.post(
        "/failures/{failure_id}/ignore",
        response_model=ClosedOut,
        responses={403: {"description": "viewer"}, 404: {}, 409: {"description": "not open"}},
    )
    def post_ignore(principal: Caller, failure_id: Id, body: CommentIn) -> ClosedOut:
        """Close an open failure as ignored (nothing to do), with a comment for the record."""
        return _close(principal, failure_id, body, failures.IGNORED)

    @router.post(
        "/failures/bulk-replay",
        response_model=views.DryRunOut | views.BulkOut,
        responses={
            202: {"model": views.BulkOut, "description": "the bulk replay job is queued"},
            403: {"description": "viewer (a dry run is allowed)"},
        },
    )
    def post_bulk_replay(
        principal: Caller, body: BulkReplayIn, response: Response
    ) -> views.DryRunOut | views.BulkOut:
        """Replay every open failure matching the filter. With ``dry_run`` (the default) only
        say how many and what would happen, per root cause (the job's pre-check where it has
        one, e.g. the CRM mapping of each order); otherwise queue the replay job: follow it
        at ``/admin/api/bulk-replays/{id}``."""
        filt = body.to_filter()
        with _translated():
            if body.dry_run:
                return views.dry_run_out(principal, bulk_replay.dry_run(ctx, filt))
            acting(principal, "bulk_replay", "bulk:new", body.school or SYSTEM_SCHOOL)
            started = bulk_replay.start_bulk_replay(ctx, filt, who=principal.who)
        response.status_code = status.HTTP_202_ACCEPTED
        return views.bulk_out(principal, started)

    @router.get("/bulk-replays", response_model=list[views.BulkOut])
    def list_bulk_replays(
        principal: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 20
    ) -> list[views.BulkOut]:
        """The latest bulk replays with their progress."""
        with _translated():
            return [views.bulk_out(principal, b) for b in bulk_replay.recent(db, limit=limit)]

    @router.get("/bulk-replays/{bulk_id}", response_model=views.BulkOut, responses={404: {}})
    def get_bulk_replay(principal: Caller, bulk_id: Id) -> views.BulkOut:
        """A bulk replay's progress: done of total, skipped, and whether it finished."""
        with _translated():
            return views.bulk_out(principal, bulk_replay.bulk_status(db, bulk_id))

    @router.post(
        "/bulk-replays/{bulk_id}/cancel",
        response_model=views.BulkOut,
        responses={403: {"description": "viewer"}, 404: {}},
    )
    def post_bulk_cancel(principal: Caller, bulk_id: Id) -> views.BulkOut:
        """Stop a bulk replay before its next chunk (what it queued stays queued)."""
        with _translated():
            found = bulk_replay.bulk_status(db, bulk_id)
            acting(principal, "cancel", f"bulk:{bulk_id}", found.school)
            return views.bulk_out(
                principal, bulk_replay.cancel_bulk_replay(db, bulk_id, who=principal.who)
            )

    @router.get("/inbox", response_model=views.InboxPageOut)
    def list_inbox(
        principal: Caller,
        school: Text = None,
        source: Text = None,
        status_: Annotated[
            Literal["received", "processed", "rejected"] | None, Query(alias="status")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> views.InboxPageOut:
        """Stored webhooks, newest first: ``rejected`` (bad signature, malformed: never
        processed, with the reason), ``received`` (not processed yet), ``processed``."""
        with _translated():
            return views.inbox_page(
                db,
                principal=principal,
                school=school,
                source=source,
                status=status_,
                cursor=cursor,
                limit=limit,
            )

    @router.get("/inbox/{inbox_id}", response_model=views.InboxDetailOut, responses={404: {}})
    def get_inbox(principal: Caller, inbox_id: Id) -> views.InboxDetailOut:
        """One stored webhook with its headers, query and body (secrets always masked)."""
        with _translated():
            return views.inbox_detail(db, inbox_id, principal=principal)

    @router.post(
        "/inbox/{inbox_id}/replay",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ReplayOut,
        responses={403: {"description": "viewer"}, 404: {}, 409: {"description": "rejected"}},
    )
    def post_inbox_replay(principal: Caller, inbox_id: Id) -> ReplayOut:
        """Process a stored webhook again from the start (after a config fix); processing is
        idempotent. A rejected event is never processed."""
        with _translated():
            with db.read() as conn:
                row = inbox.get(conn, inbox_id)
            if row is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"inbox event {inbox_id} does not exist"
                )
            acting(principal, "replay", f"inbox:{inbox_id}", str(row["school"]))
            try:
                ticket = replay_inbox_event(db, ctx.queue, inbox_id, who=principal.who)
            except ConfigError as exc:
                refused(principal, "replay", f"inbox:{inbox_id}", str(row["school"]), exc.message)
                raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
        return ReplayOut(job_id=ticket.job_id, audit_id=ticket.audit_id, enqueued=ticket.enqueued)

    @router.get("/reconcile", response_model=list[views.ReconcileItemOut])
    def list_reconcile(
        principal: Caller,
        school: Text = None,
        status_: Annotated[
            Literal["open", "acted", "resolved", "dismissed", "gone", "all"], Query(alias="status")
        ] = "open",
    ) -> list[views.ReconcileItemOut]:
        """The reconciliation queue: payments and orders waiting for a person (``open``)."""
        with _translated():
            return views.reconcile_queue(
                db,
                school or ctx.config.default_school.id,
                principal=principal,
                status=None if status_ == "all" else status_,
            )

    @router.get(
        "/reconcile/{item_id}", response_model=views.ReconcileDetailOut, responses={404: {}}
    )
    def get_reconcile(principal: Caller, item_id: Id) -> views.ReconcileDetailOut:
        """One finding with its payments and its candidate orders side by side."""
        with _translated():
            return views.reconcile_detail(db, item_id, principal=principal)

    @router.post(
        "/reconcile/{item_id}/resolve",
        response_model=ResolvedFindingOut,
        responses={403: {"description": "viewer"}, 404: {}, 409: {"description": "not open"}},
    )
    def post_reconcile_resolve(
        principal: Caller, item_id: Id, body: ResolveFindingIn
    ) -> ResolvedFindingOut:
        """Settle a waiting finding: its payment(s) pay ``order`` (matched and settled as any
        payment), or are ``not_ours`` (left out of every later run)."""
        target = f"reconcile:{item_id}"
        with _translated():
            with db.read() as conn:
                item = findings.get(conn, item_id)
            if item is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"reconciliation item {item_id} does not exist"
                )
            school = str(item["school"])
            acting(principal, "reconcile_resolve", target, school)
            if item["status"] != findings.OPEN:
                why = f"reconciliation item {item_id} is {item['status']}, not waiting"
                refused(principal, "reconcile_resolve", target, school, why)
                raise HTTPException(status.HTTP_409_CONFLICT, why)
            try:
                said = resolve_finding(
                    ctx,
                    school,
                    item_id,
                    order_number=body.order,
                    not_ours=body.not_ours,
                    who=principal.who,
                    comment=body.comment,
                )
            except NotFoundError as exc:
                refused(principal, "reconcile_resolve", target, school, exc.message)
                raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
            with db.write() as conn:
                audit.add(
                    conn,
                    school=school,
                    who=principal.who,
                    action="reconcile_resolve",
                    target=target,
                    detail={
                        "order": body.order,
                        "not_ours": body.not_ours,
                        "comment": body.comment,
                    },
                    outcome=audit.SUCCEEDED,
                )
        return ResolvedFindingOut(id=item_id, message=said)

    @router.get("/audit", response_model=views.AuditPageOut)
    def list_audit(
        principal: Caller,
        school: Text = None,
        who: Text = None,
        action: Text = None,
        target: Annotated[
            str | None, Query(max_length=120, description="exact, or a prefix ending in ':'")
        ] = None,
        outcome: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> views.AuditPageOut:
        """The audit log, newest first: who did what, when, and how it ended."""
        with _translated():
            return views.audit_page(
                db,
                principal=principal,
                school=school,
                who=who,
                action=action,
                target=target,
                outcome=outcome,
                cursor=cursor,
                limit=limit,
            )

    return router


@contextmanager
def _translated() -> Iterator[None]:
    """Our errors as HTTP answers: not found 404, a bad cursor 422, storage down 503."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None  # unprocessable: a bad cursor
    except (StoreUnavailableError, sa_exc.OperationalError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later"
        ) from exc
    except SchoolsyncError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
