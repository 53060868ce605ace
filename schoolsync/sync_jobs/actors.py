"""The actors: thin wrappers that take ids, call a service and turn errors into retry decisions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import dramatiq

from schoolsync.connectors.smtp.client import SmtpClient
from schoolsync.core.errors import RetryableError
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.names import PROCESS_INBOX_BATCH, PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.services.bulk_replay import BULK_REPLAY_ACTOR, run_bulk_replay
from schoolsync.sync_jobs.services.crm_push import (
    PUSH_ACTOR,
    RESEND_ACTOR,
    push_orders,
    resend_order,
)
from schoolsync.sync_jobs.services.duplicates import DUPLICATES_ACTOR, duplicates_sweep
from schoolsync.sync_jobs.services.export_sync import EXPORT_ACTOR, export_sync
from schoolsync.sync_jobs.services.failure_alerts import ALERTS_ACTOR, failure_alerts_sweep
from schoolsync.sync_jobs.services.feedback import (
    SURVEY_ACTOR,
    SURVEY_ROW_ACTOR,
    poll_survey,
    reread_survey_row,
)
from schoolsync.sync_jobs.services.followups import FOLLOWUP_ACTOR, followups_sweep
from schoolsync.sync_jobs.services.inbox_events import process_inbox_batch, process_inbox_event
from schoolsync.sync_jobs.services.outbox import DELIVER_ACTOR, SWEEP_ACTOR, deliver, sweep
from schoolsync.sync_jobs.services.outbox import RESEND_ACTOR as RESEND_NOTICE_ACTOR
from schoolsync.sync_jobs.services.outbox import resend as resend_notice
from schoolsync.sync_jobs.services.payments import SETTLE_ACTOR, settle
from schoolsync.sync_jobs.services.reconcile import RECONCILE_ACTOR, run_reconciliation
from schoolsync.sync_jobs.services.refunds import REFUND_ACTOR, process_refund
from schoolsync.sync_jobs.services.relay import RELAY_ACTOR, relay_jobs
from schoolsync.sync_jobs.services.reports import REPORTS_ACTOR, reports_tick
from schoolsync.sync_jobs.services.session_emails import send_session_email
from schoolsync.sync_jobs.services.sessions import EMAIL_ACTOR, SESSIONS_ACTOR, sessions_sweep
from schoolsync.sync_jobs.services.sla import SLA_ACTOR, sla_sweep
from schoolsync.sync_jobs.services.status_sync import SETTLE_ACTOR as STATUS_SETTLE_ACTOR
from schoolsync.sync_jobs.services.status_sync import settle_conflict
from schoolsync.sync_jobs.services.telegram_updates import POLL_ACTOR, poll_updates


def _process_inbox_event(ctx: JobContext, *, inbox_id: int) -> None:
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    job_id = message.options.get("job_id") if message is not None else None
    process_inbox_event(ctx, inbox_id, job_id)


def _process_inbox_batch(ctx: JobContext, *, inbox_ids: list[int]) -> None:
    process_inbox_batch(ctx, inbox_ids)


def _relay_jobs(ctx: JobContext) -> None:
    relay_jobs(ctx)


def _push_orders(ctx: JobContext, *, school: str, lane: int = 0) -> None:
    push_orders(ctx, school, lane)


def _resend_order(
    ctx: JobContext, *, school: str, platform: str, account: str, number: str
) -> None:
    resend_order(ctx, school, platform, account, number)


def _export_sync(ctx: JobContext, *, school: str) -> None:
    export_sync(ctx, school)


def _deliver(ctx: JobContext, *, school: str, lane: str) -> None:
    deliver(ctx, school, lane)


def _sweep_notices(ctx: JobContext) -> None:
    sweep(ctx)


def _resend_notice(ctx: JobContext, *, school: str, key: str) -> None:
    resend_notice(ctx, school, key)


def _poll_survey(ctx: JobContext, *, school: str) -> None:
    poll_survey(ctx, school)


def _reread_survey_row(ctx: JobContext, *, school: str, key: str) -> None:
    reread_survey_row(ctx, school, key)


def _poll_telegram(ctx: JobContext, *, school: str) -> None:
    poll_updates(ctx, school)


def _settle(ctx: JobContext, *, school: str, payment_id: int) -> None:
    settle(ctx, school, payment_id)


def _process_refund(ctx: JobContext, *, school: str, request_id: int) -> None:
    process_refund(ctx, school, request_id)


def _sla_sweep(ctx: JobContext, *, school: str) -> None:
    sla_sweep(ctx, school)


def _duplicates_sweep(ctx: JobContext, *, school: str) -> None:
    duplicates_sweep(ctx, school)


def _followups_sweep(ctx: JobContext, *, school: str) -> None:
    followups_sweep(ctx, school)


def _settle_conflict(
    ctx: JobContext, *, school: str, number: str, winner: str, status: str, seen_at: str = ""
) -> None:
    settle_conflict(ctx, school, number, winner, status, seen_at)


def _failure_alerts_sweep(ctx: JobContext, *, school: str) -> None:
    failure_alerts_sweep(ctx, school)


def _bulk_replay(ctx: JobContext, *, bulk_id: int) -> None:
    run_bulk_replay(ctx, bulk_id)


def _reconcile(ctx: JobContext, *, school: str) -> None:
    run_reconciliation(ctx, school)


def _reports_tick(ctx: JobContext, *, school: str) -> None:
    reports_tick(ctx, school)


def _sessions_sweep(ctx: JobContext, *, school: str) -> None:
    sessions_sweep(ctx, school)


def _send_session_email(
    ctx: JobContext,
    *,
    mailers: Mapping[str, SmtpClient],
    school: str,
    session: str,
    start: str,
    kind: str,
) -> None:
    send_session_email(ctx, mailers, school, session, start, kind)


HANDLERS: dict[str, Callable[..., None]] = {
    PROCESS_INBOX_EVENT: _process_inbox_event,
    PROCESS_INBOX_BATCH: _process_inbox_batch,
    RELAY_ACTOR: _relay_jobs,
    PUSH_ACTOR: _push_orders,
    RESEND_ACTOR: _resend_order,
    EXPORT_ACTOR: _export_sync,
    DELIVER_ACTOR: _deliver,
    SWEEP_ACTOR: _sweep_notices,
    RESEND_NOTICE_ACTOR: _resend_notice,
    SURVEY_ACTOR: _poll_survey,
    SURVEY_ROW_ACTOR: _reread_survey_row,
    POLL_ACTOR: _poll_telegram,
    SETTLE_ACTOR: _settle,
    REFUND_ACTOR: _process_refund,
    SLA_ACTOR: _sla_sweep,
    DUPLICATES_ACTOR: _duplicates_sweep,
    FOLLOWUP_ACTOR: _followups_sweep,
    STATUS_SETTLE_ACTOR: _settle_conflict,
    RECONCILE_ACTOR: _reconcile,
    REPORTS_ACTOR: _reports_tick,
    BULK_REPLAY_ACTOR: _bulk_replay,
    ALERTS_ACTOR: _failure_alerts_sweep,
    SESSIONS_ACTOR: _sessions_sweep,
}


def _honour_retry_after(handler: Callable[..., None], ctx: JobContext) -> Callable[..., None]:
    def run(**kwargs: Any) -> None:
        try:
            handler(ctx, **kwargs)
        except RetryableError as exc:
            if exc.retry_after is not None:
                raise dramatiq.Retry(delay=int(exc.retry_after * 1000)) from exc
            raise

    return run


def register_actors(
    broker: dramatiq.Broker,
    ctx: JobContext,
    *,
    time_limit_ms: int,
    mailers: Mapping[str, SmtpClient] | None = None,
) -> dict[str, Any]:
    """Declare every actor on ``broker`` (never on Dramatiq's global default broker).
    ``mailers``: each school's SMTP account (session reminders by e-mail)."""
    handlers: dict[str, Callable[..., None]] = {
        **HANDLERS,
        EMAIL_ACTOR: partial(_send_session_email, mailers=dict(mailers or {})),
    }
    return {
        name: dramatiq.actor(actor_name=name, broker=broker, time_limit=time_limit_ms)(
            _honour_retry_after(handler, ctx)
        )
        for name, handler in handlers.items()
    }
