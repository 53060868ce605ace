"""``/admin/``: the admin console as server-rendered pages (Jinja2, no JavaScript).

The pages show what ``admin_views`` returns (masked for the caller's role, as the API) and act
through the same functions as ``/admin/api`` (``sync_jobs.replay``, ``services.bulk_replay``,
``services.reconcile.resolve``); every action lands in the audit trail under the token's name.

Session: the sign-in form takes an admin token and keeps it in an HttpOnly, SameSite=Strict
cookie (``Secure`` over HTTPS) scoped to ``/admin``; every request checks it again with
``admin_auth`` (a token removed from the settings signs its sessions out). CSRF: a random nonce
in a second cookie, and every form carries ``HMAC(session token, nonce)``; a POST whose field
does not match is refused (403), as is any action by a viewer (403, audited). Pages are
``Cache-Control: no-store`` with a strict Content-Security-Policy (no script at all).

Routes are closures over the settings and the jobs' context, and FastAPI reads their
annotations at definition time: so no ``from __future__ import annotations`` here.
"""

import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from schoolsync.app.web import admin_views as views
from schoolsync.app.web.admin_auth import Principal, authenticator, configured_tokens
from schoolsync.app.web.admin_console import FilterIn
from schoolsync.app.web.admin_i18n import CATALOGUES, choose, text
from schoolsync.core.clock import as_utc
from schoolsync.core.db.tables import SYSTEM_SCHOOL
from schoolsync.core.errors import NotFoundError, SchoolsyncError, StoreUnavailableError
from schoolsync.core.settings import Settings
from schoolsync.core.stores import audit, failures, inbox
from schoolsync.core.stores import reconcile as findings
from schoolsync.core.stores.failures import FailureFilter
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.replay import (
    close_failure,
    replay_failure,
    replay_inbox_event,
    replay_many,
)
from schoolsync.sync_jobs.services import bulk_replay
from schoolsync.sync_jobs.services.reconcile import resolve as resolve_finding

SESSION_COOKIE = "ssa_session"
CSRF_COOKIE = "ssa_csrf"
LANG_COOKIE = "ssa_lang"
PAGE_SIZE = 50
MAX_CHECKED = 500  # rows one "replay checked" may name
MAX_FORM_BYTES = 64_000
Id = Annotated[int, Path(ge=1, le=2**62)]
ACCOUNT_SCAN_PAGES = 50  # pages of 200 read at most to fill one page filtered by account
FILTER_FIELDS = ("platform", "account", "actor", "class", "entity", "since", "until", "group")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class Form:
    """An ``application/x-www-form-urlencoded`` body (parsed here: no python-multipart)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, [default])[0]

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def csrf_token(session: str, nonce: str) -> str:
    """What a form must carry: the nonce cookie signed with the session's token."""
    return hmac.new(session.encode(), b"admin-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("schoolsync.app.web", "templates/admin"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _when
    return env


def _when(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def _utc(value: str) -> datetime | None:
    """A ``datetime-local`` field (``2026-11-23T10:00``) read as UTC; empty: None."""
    if not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def filter_from(values: Callable[[str], str]) -> tuple[FailureFilter, str, dict[str, str]]:
    """The failure filter of a query string or form (``status`` absent: open; ``all``: any),
    the account asked for, and the fields to echo into forms and links.

    Raises ``ValueError`` (pydantic's ``ValidationError`` included) for a bad value."""
    echo = {name: values(name).strip() for name in (*FILTER_FIELDS, "status")}
    wanted = echo["status"] or failures.OPEN
    if wanted != "all" and wanted not in failures.STATUSES:
        raise ValueError(f"unknown status {wanted[:20]!r}")
    echo["status"] = wanted
    filt = FilterIn(
        platform=echo["platform"] or None,
        actor=echo["actor"] or None,
        error_class=echo["class"] or None,
        entity=echo["entity"] or None,
        since=_utc(echo["since"]),
        until=_utc(echo["until"]),
        group=echo["group"] or None,
    ).to_filter(None if wanted == "all" else wanted)
    if len(echo["account"]) > 80:
        raise ValueError("account: at most 80 characters")
    return filt, echo["account"], echo


def _failure_out(principal: Principal, row: Any) -> views.FailureOut:
    return views.FailureOut(
        id=int(row["id"]),
        school=row["school"],
        platform=row["platform"],
        actor=row["actor"],
        error_class=row["error_class"],
        error_message=principal.mask(row["error_message"]),
        attempts=int(row["attempts"]),
        status=row["status"],
        first_failed_at=as_utc(row["first_failed_at"]),
        last_failed_at=as_utc(row["last_failed_at"]),
        resolved_at=as_utc(row["resolved_at"]) if row["resolved_at"] else None,
        group=failures.group_key(row["actor"], row["error_class"], row["error_message"]),
        job_id=int(row["job_id"]),
    )


def account_page(
    ctx: JobContext,
    filt: FailureFilter,
    account: str,
    *,
    principal: Principal,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> views.FailurePageOut:
    """``admin_views.failure_page`` narrowed to the failures whose job names ``account`` (the
    platform account in its arguments; ``FailureFilter`` has no account field): the store's
    pages are read and filtered here, at most ``ACCOUNT_SCAN_PAGES`` of them per page shown."""
    kept: list[Any] = []
    scan: str | None = cursor
    with ctx.db.read() as conn:
        for _ in range(ACCOUNT_SCAN_PAGES):
            page = failures.search(conn, filt, cursor=scan, limit=200)
            for row in page.rows:
                args = row["args"] if isinstance(row["args"], dict) else {}
                if str(args.get("account", "")) == account:
                    kept.append(row)
            scan = page.next_cursor
            if len(kept) > limit or scan is None:
                break
    if len(kept) > limit:
        last = kept[limit - 1]
        scan = failures.encode_cursor(last["last_failed_at"], int(last["id"]))
    return views.FailurePageOut(
        items=[_failure_out(principal, r) for r in kept[:limit]], next_cursor=scan
    )


def dry_run_ids(ctx: JobContext, ids: Iterable[int]) -> bulk_replay.DryRun:
    """``bulk_replay.dry_run`` for checked rows instead of a filter (it takes only a filter):
    each open failure's pre-check, where its job has one, grouped by root cause."""
    outcomes: Counter[str] = Counter()
    groups: dict[str, tuple[Any, Counter[str]]] = {}
    would_run = 0
    total = 0
    with ctx.db.read() as conn:
        for failure_id in ids:
            row = failures.get_with_platform(conn, failure_id)
            if row is None or row["status"] != failures.OPEN:
                continue
            total += 1
            check = bulk_replay.PRECHECKS.get(row["actor"])
            verdict = (
                check(ctx, conn, row)
                if check
                else bulk_replay.Verdict(ok=True, what=bulk_replay.WOULD_RUN)
            )
            would_run += verdict.ok
            outcomes[verdict.what] += 1
            key = failures.group_key(row["actor"], row["error_class"], row["error_message"])
            groups.setdefault(key, (row, Counter()))[1][verdict.what] += 1
    forecasts = [
        bulk_replay.GroupForecast(
            key=key,
            actor=row["actor"],
            error_class=row["error_class"],
            pattern=failures.normalise(row["error_message"]),
            count=sum(counted.values()),
            outcomes=dict(counted.most_common()),
        )
        for key, (row, counted) in groups.items()
    ]
    return bulk_replay.DryRun(
        total=total,
        would_run=would_run,
        would_fail=total - would_run,
        outcomes=dict(outcomes.most_common()),
        groups=sorted(forecasts, key=lambda g: (-g.count, g.key)),
        summary=bulk_replay.summarise(total, outcomes),
    )


def _ids(values: list[str]) -> list[int]:
    found = sorted({int(v) for v in values if v.isdigit() and len(v) < 18})
    if len(found) > MAX_CHECKED:
        raise ValueError(f"at most {MAX_CHECKED} rows at once")
    return found


def _int_id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 18 else None


def pages_router(settings: Settings, ctx: JobContext, *, prefix: str = "/admin") -> APIRouter:
    """The pages under ``prefix``; without any admin token configured every page is 404."""
    authenticate = authenticator(settings)
    env = _environment()
    db = ctx.db

    def lang_of(request: Request) -> str:
        return choose(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )

    def render(
        request: Request,
        principal: Principal | None,
        template: str,
        *,
        status_code: int = 200,
        **data: Any,
    ) -> HTMLResponse:
        lang = lang_of(request)
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        session = request.cookies.get(SESSION_COOKIE, "")
        page = env.get_template(template).render(
            base=prefix,
            lang=lang,
            t=lambda key, **values: text(lang, key, **values),
            principal=principal,
            csrf=csrf_token(session, nonce),
            path=request.url.path,
            qs=_qs,
            **data,
        )
        response = HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)
        if CSRF_COOKIE not in request.cookies:
            set_cookie(request, response, CSRF_COOKIE, nonce)
        if request.query_params.get("lang") in CATALOGUES:
            set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
        return response

    def set_cookie(
        request: Request, response: Response, name: str, value: str, max_age: int | None = None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=prefix,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def page_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == status.HTTP_303_SEE_OTHER and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
        principal = getattr(request.state, "principal", None)
        return render(
            request,
            principal,
            "error.html.j2",
            status_code=exc.status_code,
            detail=exc.detail,
            code=exc.status_code,
        )

    class HtmlRoute(APIRoute):
        """Errors as pages (FastAPI would answer JSON), in the page's language."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except HTTPException as exc:
                    return page_error(request, exc)

            return route

    router = APIRouter(prefix=prefix, route_class=HtmlRoute, include_in_schema=False)

    def principal_of(request: Request) -> Principal | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 500:
            return None
        try:
            return authenticate(f"Bearer {token}")
        except HTTPException as exc:
            if exc.status_code == status.HTTP_404_NOT_FOUND:
                raise
            return None

    def signed_in(request: Request) -> Principal:
        if not authenticator_on():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the admin console is off")
        principal = principal_of(request)
        if principal is None:
            raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": f"{prefix}/login"})
        request.state.principal = principal
        return principal

    def authenticator_on() -> bool:
        return bool(configured_tokens(settings))

    async def posted(request: Request) -> Form:
        """The form, its CSRF field checked against the cookies (403 when it does not match)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # never more than MAX_FORM_BYTES in memory
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "form too large")
            chunks.append(chunk)
        fields = parse_qs(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True)
        form = Form(fields)
        nonce = request.cookies.get(CSRF_COOKIE, "")
        session = request.cookies.get(SESSION_COOKIE, "")
        given = form.get("csrf")
        if not nonce or not hmac.compare_digest(
            given.encode(), csrf_token(session, nonce).encode()
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, text(lang_of(request), "csrf"))
        return form

    Signed = Annotated[Principal, Depends(signed_in)]
    Posted = Annotated[Form, Depends(posted)]

    def acting(
        request: Request, principal: Principal, action: str, target: str, school: str
    ) -> None:
        """403 for a viewer, and the refusal in the audit trail (as the API does)."""
        if principal.can_act:
            return
        with db.write() as conn:
            audit.add(
                conn,
                school=school,
                who=principal.who,
                action=action,
                target=target,
                detail={"refused": "viewer", "via": "page"},
                outcome=audit.FAILED,
            )
        raise HTTPException(status.HTTP_403_FORBIDDEN, text(lang_of(request), "forbidden"))

    def failure_school(failure_id: int) -> str:
        with db.read() as conn:
            row = failures.get(conn, failure_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"failure {failure_id} does not exist")
        return str(row["school"])

    def see(location: str) -> RedirectResponse:
        return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)

    # --- session ---------------------------------------------------------------------------

    @router.get("/admin.css")
    def stylesheet() -> Response:
        css = (resources.files("schoolsync.app.web") / "static" / "admin.css").read_text("utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @router.get("/login")
    def login_page(request: Request) -> Response:
        if not authenticator_on():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the admin console is off")
        return render(request, None, "login.html.j2", error=False)

    @router.post("/login")
    def login(request: Request, form: Posted) -> Response:
        token = form.get("token").strip()
        try:
            authenticate(f"Bearer {token}" if 0 < len(token) <= 500 else None)
        except HTTPException as exc:
            if exc.status_code == status.HTTP_404_NOT_FOUND:
                raise
            return render(request, None, "login.html.j2", status_code=401, error=True)
        response = see(f"{prefix}/")
        set_cookie(request, response, SESSION_COOKIE, token)
        set_cookie(request, response, CSRF_COOKIE, secrets.token_urlsafe(32))
        return response

    @router.post("/logout")
    def logout(request: Request, form: Posted) -> Response:
        response = see(f"{prefix}/login")
        response.delete_cookie(SESSION_COOKIE, path=prefix)
        response.delete_cookie(CSRF_COOKIE, path=prefix)
        return response

    # --- overview and failures -------------------------------------------------------------

    @router.get("/")
    def overview_page(request: Request, principal: Signed) -> Response:
        with _translated(principal):
            found = views.overview(db, principal=principal)
        return render(request, principal, "overview.html.j2", o=found)

    @router.get("/failures")
    def failures_page(request: Request, principal: Signed) -> Response:
        query = request.query_params
        cursor = query.get("cursor") or None
        with _translated(principal):
            filt, account, echo = filter_from(lambda name: query.get(name, "")[:200])
            if account:
                page = account_page(ctx, filt, account, principal=principal, cursor=cursor)
            else:
                page = views.failure_page(db, filt, principal=principal, cursor=cursor)
        return render(
            request,
            principal,
            "failures.html.j2",
            page=page,
            f=echo,
            platforms=failures.PLATFORMS,
            statuses=failures.STATUSES,
        )

    @router.get("/failures/{failure_id}")
    def failure_page(request: Request, principal: Signed, failure_id: Id) -> Response:
        with _translated(principal):
            found = views.failure_detail(db, failure_id, principal=principal)
        return render(
            request,
            principal,
            "failure.html.j2",
            x=found,
            done=request.query_params.get("done", ""),
            args_json=_pretty(found.args),
        )

    @router.post("/failures/{failure_id}/replay")
    def replay_one(request: Request, principal: Signed, form: Posted, failure_id: Id) -> Response:
        school = failure_school(failure_id)
        acting(request, principal, "replay", f"failure:{failure_id}", school)
        with _translated(principal):
            replay_failure(db, ctx.queue, failure_id, who=principal.who)
        return see(f"{prefix}/failures/{failure_id}?done=replayed")

    @router.post("/failures/{failure_id}/{verb}")
    def close_one(
        request: Request, principal: Signed, form: Posted, failure_id: Id, verb: str
    ) -> Response:
        closed = {"resolve": failures.RESOLVED, "ignore": failures.IGNORED}.get(verb)
        if closed is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such action")
        school = failure_school(failure_id)
        acting(request, principal, verb, f"failure:{failure_id}", school)
        with _translated(principal):
            close_failure(
                db, failure_id, status=closed, who=principal.who, comment=form.get("comment")[:2000]
            )
        return see(f"{prefix}/failures/{failure_id}?done=closed")

    @router.post("/bulk/dry-run")
    def bulk_dry_run(request: Request, principal: Signed, form: Posted) -> Response:
        acting(request, principal, "bulk_replay", "bulk:dry-run", SYSTEM_SCHOOL)
        with _translated(principal):
            filt, account, echo = filter_from(lambda name: form.get(name)[:200])
            ids = _ids(form.getlist("id")) if form.get("scope") == "checked" else []
            if form.get("scope") == "checked" and not ids:
                raise ValueError(text(lang_of(request), "none_checked"))
            if account and not ids:  # the filter has no account: name its rows instead
                ids = [item.id for item in _all_of_account(filt, account, principal)]
            # an account that matches nothing is nothing to replay, never "everything"
            found = dry_run_ids(ctx, ids) if ids or account else bulk_replay.dry_run(ctx, filt)
        return render(
            request,
            principal,
            "dry_run.html.j2",
            d=views.dry_run_out(principal, found),
            f=echo,
            ids=ids,
            scope="checked" if ids else "filter",
        )

    def _all_of_account(
        filt: FailureFilter, account: str, principal: Principal
    ) -> list[views.FailureOut]:
        found: list[views.FailureOut] = []
        cursor: str | None = None
        while len(found) <= MAX_CHECKED:
            page = account_page(ctx, filt, account, principal=principal, cursor=cursor, limit=200)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        if len(found) > MAX_CHECKED:
            raise ValueError(f"at most {MAX_CHECKED} rows at once: narrow the filter")
        return found

    @router.post("/bulk/confirm")
    def bulk_confirm(request: Request, principal: Signed, form: Posted) -> Response:
        acting(request, principal, "bulk_replay", "bulk:new", SYSTEM_SCHOOL)
        with _translated(principal):
            if form.get("scope") == "checked":
                ids = _ids(form.getlist("id"))
                with db.write() as conn:
                    many = replay_many(conn, ids, who=principal.who, detail={"via": "page"})
                if many.refs:
                    ctx.queue.send(many.refs)
                return render(
                    request,
                    principal,
                    "replayed.html.j2",
                    done=len(many.replayed),
                    skipped=len(many.skipped),
                )
            filt, account, _echo = filter_from(lambda name: form.get(name)[:200])
            if account:  # the filter cannot hold an account: only named rows are replayed
                raise ValueError(text(lang_of(request), "none_checked"))
            started = bulk_replay.start_bulk_replay(ctx, filt, who=principal.who)
        return see(f"{prefix}/bulk/{started.id}")

    @router.get("/bulk/{bulk_id}")
    def bulk_page(request: Request, principal: Signed, bulk_id: Id) -> Response:
        with _translated(principal):
            found = views.bulk_out(principal, bulk_replay.bulk_status(db, bulk_id))
        return render(
            request,
            principal,
            "bulk.html.j2",
            b=found,
            finished=found.status in bulk_replay.FINISHED,
        )

    @router.post("/bulk/{bulk_id}/cancel")
    def bulk_cancel(request: Request, principal: Signed, form: Posted, bulk_id: Id) -> Response:
        with _translated(principal):
            found = bulk_replay.bulk_status(db, bulk_id)
            acting(request, principal, "cancel", f"bulk:{bulk_id}", found.school)
            bulk_replay.cancel_bulk_replay(db, bulk_id, who=principal.who)
        return see(f"{prefix}/bulk/{bulk_id}")

    # --- inbox -----------------------------------------------------------------------------

    @router.get("/inbox")
    def inbox_list(request: Request, principal: Signed) -> Response:
        query = request.query_params
        wanted = query.get("status", inbox.REJECTED)
        if wanted not in (inbox.RECEIVED, inbox.PROCESSED, inbox.REJECTED, "all"):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown status")
        source = query.get("source", "")[:40]
        with _translated(principal):
            page = views.inbox_page(
                db,
                principal=principal,
                source=source or None,
                status=None if wanted == "all" else wanted,
                cursor=query.get("cursor") or None,
            )
        return render(request, principal, "inbox.html.j2", page=page, status=wanted, source=source)

    @router.get("/inbox/{inbox_id}")
    def inbox_page(request: Request, principal: Signed, inbox_id: Id) -> Response:
        with _translated(principal):
            found = views.inbox_detail(db, inbox_id, principal=principal)
        return render(
            request,
            principal,
            "inbox_event.html.j2",
            e=found,
            done=request.query_params.get("done", ""),
        )

    @router.post("/inbox/{inbox_id}/replay")
    def inbox_replay(request: Request, principal: Signed, form: Posted, inbox_id: Id) -> Response:
        with db.read() as conn:
            row = inbox.get(conn, inbox_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"inbox event {inbox_id} does not exist")
        acting(request, principal, "replay", f"inbox:{inbox_id}", str(row["school"]))
        with _translated(principal):
            replay_inbox_event(db, ctx.queue, inbox_id, who=principal.who)
        return see(f"{prefix}/inbox/{inbox_id}?done=replayed")

    # --- reconciliation queue --------------------------------------------------------------

    @router.get("/reconcile")
    def reconcile_list(request: Request, principal: Signed) -> Response:
        wanted = request.query_params.get("status", findings.OPEN)
        known = (findings.OPEN, findings.ACTED, findings.RESOLVED, findings.DISMISSED)
        if wanted not in (*known, findings.GONE, "all"):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown status")
        school = request.query_params.get("school", "")[:40] or ctx.config.default_school.id
        with _translated(principal):
            items = views.reconcile_queue(
                db, school, principal=principal, status=None if wanted == "all" else wanted
            )
        return render(request, principal, "reconcile.html.j2", items=items, status=wanted)

    @router.get("/reconcile/{item_id}")
    def reconcile_page(request: Request, principal: Signed, item_id: Id) -> Response:
        with _translated(principal):
            found = views.reconcile_detail(db, item_id, principal=principal)
        return render(
            request,
            principal,
            "reconcile_item.html.j2",
            r=found,
            done=request.query_params.get("done", ""),
        )

    @router.post("/reconcile/{item_id}/resolve")
    def reconcile_resolve(
        request: Request, principal: Signed, form: Posted, item_id: Id
    ) -> Response:
        with db.read() as conn:
            item = findings.get(conn, item_id)
        if item is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"item {item_id} does not exist")
        school = str(item["school"])
        target = f"reconcile:{item_id}"
        acting(request, principal, "reconcile_resolve", target, school)
        choice = form.get("choice")
        not_ours = choice == "not_ours"
        order = None if not_ours else choice.removeprefix("order:")[:60] or None
        comment = form.get("comment")[:2000]
        if order is None and not not_ours:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "choose an order or not ours"
            )
        with _translated(principal):
            resolve_finding(
                ctx,
                school,
                item_id,
                order_number=order,
                not_ours=not_ours,
                who=principal.who,
                comment=comment,
            )
            with db.write() as conn:
                audit.add(
                    conn,
                    school=school,
                    who=principal.who,
                    action="reconcile_resolve",
                    target=target,
                    detail={"order": order, "not_ours": not_ours, "comment": comment},
                    outcome=audit.SUCCEEDED,
                )
        return see(f"{prefix}/reconcile/{item_id}?done=closed")

    return router


def _qs(**params: Any) -> str:
    """A query string of the non-empty ``params`` (``klass`` is sent as ``class``)."""
    found = {("class" if k == "klass" else k): v for k, v in params.items() if v not in (None, "")}
    return urlencode(found)


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


class _translated:
    """Our errors as error pages: not found 404, bad input 422, storage down 503, a refused
    action (not open, rejected, …) 409 with its message masked for the caller."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, NotFoundError):
            raise HTTPException(status.HTTP_404_NOT_FOUND, self.principal.mask(exc.message))
        if isinstance(exc, ValidationError):
            problems = "; ".join(str(e["msg"]) for e in exc.errors()[:3])
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)
        if isinstance(exc, ValueError):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)[:300])
        if isinstance(exc, StoreUnavailableError | sa_exc.OperationalError):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable")
        if isinstance(exc, SchoolsyncError):
            raise HTTPException(status.HTTP_409_CONFLICT, self.principal.mask(exc.message))
