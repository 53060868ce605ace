"""amoCRM account webhooks: verified, re-fetched, and recorded on the order they belong to.

amoCRM webhooks carry no signature: the URL secret got them in, and the lead is re-fetched
through the API before anything trusts it. What a stage change should do to the order (W4,
two-way status sync) is decided by the status-sync workflow; here the lead's current stage is
read from amoCRM and logged against its order.
"""

from __future__ import annotations

from schoolsync.connectors.amocrm.webhooks import LeadEvent, parse
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox
from schoolsync.sync_jobs.context import JobContext

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
    body = parse(bytes(row["body"]))
    for event in body.events:
        # only a stage change matters (W4); leads we added ourselves need no second look, and a
        # launch's thousands of adds must not spend the account's 7 requests a second
        if isinstance(event, LeadEvent) and event.action == "status":
            lead = setup.client.get_lead(event.id, with_contacts=False)
            log.info(
                "amocrm lead changed",
                school=school,
                lead=lead.id,
                action=event.action,
                status_id=lead.status_id,
                pipeline_id=lead.pipeline_id,
            )
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)
