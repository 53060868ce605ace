"""amoCRM account webhooks: verified by the secret in their URL, parsed, stored and logged.

amoCRM webhooks carry no signature: the URL secret got them in, and whatever acts on one (the
two-way status sync, W4) re-fetches the lead through the API before trusting it. A lead event is
parsed (a malformed body fails here, visibly) and logged; a lead reaching a stage that the
feedback rules watch (first lesson, second feedback call) is acted on (``lesson_triggers``), a
lead's stage change is synced to its order (``status_sync``, W4), and a lead reaching the refund
stage confirms its order's refund request (``refunds``, W9).
"""

from __future__ import annotations

from schoolsync.connectors.amocrm.webhooks import LeadEvent, parse
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.lesson_triggers import on_lead_event
from schoolsync.sync_jobs.services.refunds import on_lead_refund_stage
from schoolsync.sync_jobs.services.status_sync import on_lead_status

log = get_logger(__name__)


def process_amocrm_webhook(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    school = str(row["school"])
    setup = ctx.platforms.of(school).amocrm if ctx.platforms else None
    if setup is None:
        raise ConfigError(
            f"school '{school}' has no amoCRM account: add accounts.amocrm to schoolsync.yaml"
        )
    config = ctx.config.school(school)
    body = parse(bytes(row["body"]))
    problems: list[Exception] = []
    for event in body.events:
        if isinstance(event, LeadEvent):
            # the rules that act on a lead (lesson triggers, the stage -> order status sync)
            # re-fetch it before trusting it, each only when the event concerns it: fetching
            # for nothing would spend the 7 requests a second the CRM push needs in a launch
            log.info(
                "amocrm lead changed",
                school=school,
                account=setup.account,
                lead=event.id,
                action=event.action,
                status_id=event.status_id,
                pipeline_id=event.pipeline_id,
            )
            if config is None:
                continue
            for rule in (on_lead_event, on_lead_status, on_lead_refund_stage):
                try:
                    rule(ctx, config, setup, event)
                except Exception as exc:  # the other leads and rules of the body still run
                    log.error(
                        "a rule failed on a lead event",
                        school=school,
                        lead=event.id,
                        rule=rule.__name__,
                        error=getattr(exc, "message", type(exc).__name__),
                    )
                    problems.append(exc)
    if problems:
        # the job fails visibly and is replayable; every rule is idempotent, so a replay
        # re-running the events that went through changes nothing there
        raise problems[0]
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)
