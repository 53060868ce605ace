"""amoCRM account webhooks: verified by the secret in their URL, parsed, stored and logged.

amoCRM webhooks carry no signature: the URL secret got them in, and whatever acts on one (the
two-way status sync, W4) re-fetches the lead through the API before trusting it. Until then a
lead event is parsed (a malformed body fails here, visibly) and logged.
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
        if isinstance(event, LeadEvent):
            # recorded, not acted on: the stage -> order status rule (W4) re-fetches the lead
            # before trusting it; fetching here for nothing would spend the account's 7
            # requests a second that the CRM push needs during a launch
            log.info(
                "amocrm lead changed",
                school=school,
                account=setup.account,
                lead=event.id,
                action=event.action,
                status_id=event.status_id,
                pipeline_id=event.pipeline_id,
            )
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)
