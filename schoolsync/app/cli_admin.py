"""``schoolsync failures`` and ``schoolsync inbox``: the admin console on the command line (W14).

What is shown comes from ``app.web.admin_views`` (the API and the pages show the same), masked
as for a viewer: emails, phones and card numbers never reach a terminal or a pasted log. What is
done comes from ``sync_jobs.replay`` and ``sync_jobs.services.bulk_replay``, recorded in the
audit trail as ``cli:<user>@<host>``.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schoolsync.core.config import ConfigFileError
from schoolsync.core.errors import ConfigError, NotFoundError
from schoolsync.core.logging import configure_logging
from schoolsync.core.settings import Settings
from schoolsync.core.stores.failures import FailureFilter

failures_app = typer.Typer(
    help="See what failed and why; replay one or all that match, resolve or ignore.",
    no_args_is_help=True,
)
inbox_app = typer.Typer(
    help="Stored webhooks: list (rejected ones with the reason), show, replay.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

School = Annotated[str | None, typer.Option(help="only this school")]
Platform = Annotated[str | None, typer.Option(help="getcourse, amocrm, yookassa, telegram, ...")]
Actor = Annotated[str | None, typer.Option(help="the job (workflow), e.g. resend_order_to_crm")]
ErrorClass = Annotated[
    str | None, typer.Option("--class", help="error class, e.g. UnmappableError")
]
Entity = Annotated[str | None, typer.Option(help="an order number or email in its input or error")]
Since = Annotated[
    str | None, typer.Option(help="failed (last) at or after (UTC): 2026-11-01 or 2026-11-01T09:00")
]
Until = Annotated[str | None, typer.Option(help="failed (last) before this time (UTC)")]
Group = Annotated[str | None, typer.Option(help="a root cause's key (schoolsync failures groups)")]
Filters = Annotated[
    list[str] | None,
    typer.Option("--filter", help="KEY=VALUE, repeatable: school, platform, actor, class, ..."),
]
Who = Annotated[str | None, typer.Option(help="name recorded in the audit trail")]
Wait = Annotated[float, typer.Option(help="seconds to wait for the outcome (0: do not wait)")]
_FILTER_KEYS = {"class": "error_class", **{k: k for k in FailureFilter.__dataclass_fields__}}


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(1)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return settings


def _runtime() -> Any:
    from schoolsync.app.bootstrap import build_runtime

    try:
        return build_runtime(_settings())
    except ConfigFileError as exc:
        raise _fail(f"the config file has problems:\n{exc}") from None
    except ConfigError as exc:
        raise _fail(exc.message) from None


def _db() -> Any:
    from schoolsync.core.db import Database

    return Database(_settings().effective_database_url)


def _shown() -> Any:
    """How the terminal sees data: masked, as a viewer does."""
    from schoolsync.app.web.admin_auth import VIEWER, Principal

    return Principal("cli", VIEWER)


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def _time(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"{option} {value!r} is not a time like 2026-11-01 or 2026-11-01T09:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _filter(
    *,
    status: str | None,
    school: str | None = None,
    platform: str | None = None,
    actor: str | None = None,
    error_class: str | None = None,
    entity: str | None = None,
    since: str | None = None,
    until: str | None = None,
    group: str | None = None,
    pairs: list[str] | None = None,
) -> FailureFilter:
    values: dict[str, Any] = {
        "school": school,
        "platform": platform,
        "actor": actor,
        "error_class": error_class,
        "entity": entity,
        "since": since,
        "until": until,
        "group": group,
    }
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        field = _FILTER_KEYS.get(key.strip().replace("-", "_"))
        if not sep or field is None or field == "status":
            raise _fail(
                f"--filter {pair!r}: use KEY=VALUE with KEY one of {', '.join(_FILTER_KEYS)}"
            )
        values[field] = value.strip()
    return FailureFilter(
        **{
            **values,
            "since": _time(values["since"], "--since"),
            "until": _time(values["until"], "--until"),
        },
        status=None if status in (None, "all") else status,
    )


def _ago(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- failures ------------------------------------------------------------------------------


@failures_app.command("list")
def failures_list(
    status: Annotated[str, typer.Option(help="open, replaying, resolved, ignored or all")] = "open",
    school: School = None,
    platform: Platform = None,
    actor: Actor = None,
    error_class: ErrorClass = None,
    entity: Entity = None,
    since: Since = None,
    until: Until = None,
    group: Group = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page, as the last one said")] = None,
) -> None:
    """List failures, newest first (personal data masked)."""
    from schoolsync.app.web.admin_views import failure_page

    filt = _filter(
        status=status,
        school=school,
        platform=platform,
        actor=actor,
        error_class=error_class,
        entity=entity,
        since=since,
        until=until,
        group=group,
    )
    try:
        page = failure_page(_db(), filt, principal=_shown(), cursor=cursor, limit=limit)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if not page.items:
        console.print(f"no {'' if status == 'all' else status + ' '}failures")
        return
    table = Table(title=f"failures ({status})")
    for column in (
        "id",
        "school",
        "platform",
        "job",
        "error",
        "message",
        "tries",
        "status",
        "last failed (UTC)",
    ):
        table.add_column(column)
    for item in page.items:
        table.add_row(
            str(item.id),
            item.school,
            item.platform,
            item.actor,
            item.error_class,
            item.error_message[:100],
            str(item.attempts),
            item.status,
            _ago(item.last_failed_at),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False, highlight=False)


@failures_app.command("groups")
def failures_groups(
    status: Annotated[str, typer.Option(help="open, replaying, resolved, ignored or all")] = "open",
    school: School = None,
    platform: Platform = None,
    actor: Actor = None,
    error_class: ErrorClass = None,
    since: Since = None,
) -> None:
    """Failures grouped by root cause (same job, error class and message without numbers)."""
    from schoolsync.app.web.admin_views import failure_groups

    filt = _filter(
        status=status,
        school=school,
        platform=platform,
        actor=actor,
        error_class=error_class,
        since=since,
    )
    found = failure_groups(_db(), filt, principal=_shown())
    if not found:
        console.print("no failures")
        return
    table = Table(
        "count", "group", "job", "error", "root cause", "last failed (UTC)", title="root causes"
    )
    for g in found:
        table.add_row(
            str(g.count), g.key, g.actor, g.error_class, g.pattern[:120], _ago(g.last_failed_at)
        )
    console.print(table)


@failures_app.command("show")
def failures_show(failure_id: int) -> None:
    """One failure: its input, error, every attempt and its audit trail (masked)."""
    from schoolsync.app.web.admin_views import failure_detail

    try:
        item = failure_detail(_db(), failure_id, principal=_shown())
    except NotFoundError as exc:
        raise _fail(exc.message) from None
    console.print(
        f"[bold]failure {item.id}[/bold]  school={item.school}  platform={item.platform}  "
        f"status={item.status}  group={item.group}"
    )
    console.print(
        f"job {item.job_id}: {item.actor}({json.dumps(item.args, ensure_ascii=False)})",
        markup=False,
    )
    console.print(f"error: {item.error_class}: {item.error_message}", markup=False)
    if item.input is not None:
        event = item.input
        console.print(
            f"input: inbox {event.id} from {event.source} at {_ago(event.received_at)}:\n  {event.body[:2000]}",
            markup=False,
        )
    table = Table(title="attempts")
    for column in ("#", "worker", "started", "finished", "outcome", "error"):
        table.add_column(column)
    for a in item.history:
        table.add_row(
            str(a.attempt),
            (a.worker or "")[:8],
            _ago(a.started_at),
            _ago(a.finished_at) if a.finished_at else "",
            a.outcome or "running",
            f"{a.error_class or ''} {a.error_message or ''}".strip()[:80],
        )
    console.print(table)
    for entry in item.audit:
        comment = entry.detail.get("comment")
        said = f" ({comment})" if comment else ""
        console.print(
            f"audit: {_ago(entry.at)} {entry.who} {entry.action} -> {entry.outcome}{said}",
            markup=False,
        )


@failures_app.command("replay")
def failures_replay(
    failure_id: Annotated[
        int | None,
        typer.Argument(help="one failure; without it, every open one matching the filter"),
    ] = None,
    filters: Filters = None,
    school: School = None,
    platform: Platform = None,
    actor: Actor = None,
    error_class: ErrorClass = None,
    entity: Entity = None,
    since: Since = None,
    until: Until = None,
    group: Group = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only say what would happen")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before a bulk replay")] = False,
    wait: Wait = 60,
    who: Who = None,
) -> None:
    """Run a failed job again from the start with the current configuration and its original
    idempotency keys; or, with filters instead of an id, every open failure that matches
    (a dry run first says how many and what would happen)."""
    if failure_id is not None:
        if (
            dry_run
            or filters
            or any((school, platform, actor, error_class, entity, since, until, group))
        ):
            raise _fail("give a failure id, or filters (for a bulk replay), not both")
        _replay_one(failure_id, wait=wait, who=who or _who())
        return
    filt = _filter(
        status="open",
        school=school,
        platform=platform,
        actor=actor,
        error_class=error_class,
        entity=entity,
        since=since,
        until=until,
        group=group,
        pairs=filters,
    )
    if filt == FailureFilter(status="open"):
        filt_note = "every open failure"
    else:
        filt_note = ", ".join(f"{k}={v}" for k, v in filt.to_json().items() if k != "status")
    _replay_many(filt, label=filt_note, dry_run=dry_run, yes=yes, wait=wait, who=who or _who())


def _replay_one(failure_id: int, *, wait: float, who: str) -> None:
    from schoolsync.sync_jobs.replay import replay_failure

    runtime = _runtime()
    try:
        ticket = replay_failure(runtime.db, runtime.queue, failure_id, who=who)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    note = "" if ticket.enqueued else " (Redis unreachable: the relay will send it)"
    console.print(f"failure {failure_id}: job {ticket.job_id} queued again{note}")
    report_outcome(runtime, ticket.audit_id, wait)


def _replay_many(
    filt: FailureFilter, *, label: str, dry_run: bool, yes: bool, wait: float, who: str
) -> None:
    from schoolsync.sync_jobs.services.bulk_replay import dry_run as forecast
    from schoolsync.sync_jobs.services.bulk_replay import start_bulk_replay

    runtime = _runtime()
    shown = _shown()
    found = forecast(runtime.context, filt)
    console.print(f"{label}: {shown.mask(found.summary)}", markup=False, highlight=False)
    if len(found.groups) > 1 or dry_run:
        table = Table("count", "job", "root cause", "what would happen", title="by root cause")
        for g in found.groups:
            table.add_row(
                str(g.count),
                g.actor,
                shown.mask(g.pattern)[:100],
                "; ".join(f"{n} {shown.mask(what)}" for what, n in g.outcomes.items()),
            )
        console.print(table)
    if dry_run or found.total == 0:
        return
    if not yes and not typer.confirm(f"replay {found.total} failures?"):
        raise typer.Exit(1)
    bulk = start_bulk_replay(runtime.context, filt, who=who)
    console.print(
        f"bulk replay {bulk.id}: {bulk.total} failures to queue again (job {bulk.job_id})"
    )
    _follow(runtime, bulk.id, total=bulk.total, wait=wait)


def _follow(runtime: Any, bulk_id: int, *, total: int, wait: float) -> None:
    """A progress bar while the bulk replay job queues the failures again."""
    from schoolsync.sync_jobs.services.bulk_replay import FINISHED, bulk_status

    status = bulk_status(runtime.db, bulk_id)
    deadline = time.monotonic() + wait
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("queued again", total=max(total, 1))
        while status.status not in FINISHED and time.monotonic() < deadline:
            time.sleep(0.5)
            status = bulk_status(runtime.db, bulk_id)
            progress.update(task, completed=status.done + status.skipped)
        progress.update(task, completed=status.done + status.skipped)
    console.print(
        f"bulk replay {bulk_id}: {status.status}; {status.done} queued again, "
        f"{status.skipped} skipped (no longer open) of {status.total}"
    )
    if status.status not in FINISHED:
        console.print(f"still running: schoolsync failures bulk-status {bulk_id}")


@failures_app.command("bulk-status")
def failures_bulk_status(bulk_id: int) -> None:
    """Where a bulk replay stands: done of total, skipped, finished or not."""
    from schoolsync.sync_jobs.services.bulk_replay import bulk_status

    try:
        status = bulk_status(_db(), bulk_id)
    except NotFoundError as exc:
        raise _fail(exc.message) from None
    cancel = " (cancel asked)" if status.cancel_requested else ""
    console.print(
        f"bulk replay {status.id} by {status.who}: {status.status}{cancel}; {status.done} queued "
        f"again, {status.skipped} skipped of {status.total}; filter {json.dumps(status.filter, ensure_ascii=False)}",
        markup=False,
    )


@failures_app.command("bulk-cancel")
def failures_bulk_cancel(bulk_id: int, who: Who = None) -> None:
    """Stop a bulk replay before its next chunk (what it queued stays queued)."""
    from schoolsync.sync_jobs.services.bulk_replay import cancel_bulk_replay

    try:
        status = cancel_bulk_replay(_db(), bulk_id, who=who or _who())
    except NotFoundError as exc:
        raise _fail(exc.message) from None
    if status.cancel_requested:
        console.print(f"bulk replay {bulk_id}: cancel asked; it stops before its next chunk")
    else:
        console.print(f"bulk replay {bulk_id} is {status.status}: nothing to cancel")


def _close(failure_id: int, status: str, comment: str, who: str | None) -> None:
    from schoolsync.sync_jobs.replay import close_failure

    try:
        close_failure(_db(), failure_id, status=status, who=who or _who(), comment=comment)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    console.print(f"failure {failure_id}: {status}")


@failures_app.command("resolve")
def failures_resolve(
    failure_id: int,
    comment: Annotated[str, typer.Option(help="what was done, for the record")] = "",
    who: Who = None,
) -> None:
    """Close an open failure as resolved (fixed by hand)."""
    _close(failure_id, "resolved", comment, who)


@failures_app.command("ignore")
def failures_ignore(
    failure_id: int,
    comment: Annotated[str, typer.Option(help="why, for the record")] = "",
    who: Who = None,
) -> None:
    """Close an open failure as ignored (nothing to do)."""
    _close(failure_id, "ignored", comment, who)


def report_outcome(runtime: Any, audit_id: int, wait: float) -> None:
    """Wait up to ``wait`` seconds for a replayed job's audit entry to settle; exit 1 if it failed."""
    from schoolsync.core.stores import audit

    deadline = time.monotonic() + wait
    outcome = audit.PENDING
    while wait > 0 and time.monotonic() < deadline:
        with runtime.db.read() as conn:
            entry = audit.get(conn, audit_id)
        outcome = entry["outcome"] if entry else audit.PENDING
        if outcome != audit.PENDING:
            break
        time.sleep(0.5)
    console.print(f"outcome: {outcome}")
    if outcome == audit.FAILED:
        raise typer.Exit(1)


# --- inbox ---------------------------------------------------------------------------------


@inbox_app.command("list")
def inbox_list(
    status: Annotated[str, typer.Option(help="received, processed, rejected or all")] = "all",
    source: Annotated[str | None, typer.Option(help="getcourse, amocrm, yookassa, ...")] = None,
    school: School = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page, as the last one said")] = None,
) -> None:
    """Stored webhooks, newest first; rejected ones (bad signature, malformed) with the reason."""
    from schoolsync.app.web.admin_views import inbox_page

    try:
        page = inbox_page(
            _db(),
            principal=_shown(),
            school=school,
            source=source,
            status=None if status == "all" else status,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if not page.items:
        console.print("no stored webhooks")
        return
    table = Table("id", "school", "source", "status", "reason", "received (UTC)", title="inbox")
    for e in page.items:
        table.add_row(
            str(e.id), e.school, e.source, e.status, e.reject_reason or "", _ago(e.received_at)
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False, highlight=False)


@inbox_app.command("show")
def inbox_show(inbox_id: int) -> None:
    """One stored webhook: headers, query and body (personal data and secrets masked)."""
    from schoolsync.app.web.admin_views import inbox_detail

    try:
        event = inbox_detail(_db(), inbox_id, principal=_shown())
    except NotFoundError as exc:
        raise _fail(exc.message) from None
    reason = f" ({event.reject_reason})" if event.reject_reason else ""
    console.print(
        f"inbox {event.id} from {event.source} at {_ago(event.received_at)}: {event.status}{reason}",
        markup=False,
    )
    for name, value in event.headers.items():
        console.print(f"  {name}: {value}", markup=False, highlight=False)
    if event.query:
        console.print(f"query: {event.query}", markup=False, highlight=False)
    more = " (cut)" if event.body_truncated else ""
    console.print(f"body{more}:\n{event.body}", markup=False, highlight=False)


@inbox_app.command("replay")
def inbox_replay(inbox_id: int, wait: Wait = 60, who: Who = None) -> None:
    """Process a stored webhook again from the start (e.g. after fixing the config)."""
    from schoolsync.sync_jobs.replay import replay_inbox_event

    runtime = _runtime()
    try:
        ticket = replay_inbox_event(runtime.db, runtime.queue, inbox_id, who=who or _who())
    except ConfigError as exc:
        raise _fail(exc.message) from None
    note = "" if ticket.enqueued else " (Redis unreachable: the relay will send it)"
    console.print(f"inbox event {inbox_id}: job {ticket.job_id} queued{note}")
    report_outcome(runtime, ticket.audit_id, wait)
