"""An amoCRM task on a lead, made once.

amoCRM has no idempotency: a task made by a request whose answer was lost would be made again
by a retry. So a "tried" effect is written before the request, the task text carries a marker,
and a retry that finds the "tried" effect looks for the marker among the lead's tasks first.
"""

from __future__ import annotations

from datetime import datetime

from schoolsync.connectors.amocrm.models import NewTask
from schoolsync.core.stores import effects
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup


def task_once(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    *,
    key: str,
    lead_id: int,
    text: str,
    due: datetime,
    responsible_user_id: int | None,
) -> bool:
    """Make the task unless ``key`` says it was made; ``True`` when it was made now."""
    marker = f"[schoolsync {key}]"
    with ctx.db.write() as conn:
        if effects.exists(conn, key):
            return False
        first_try = effects.record(
            conn, school=school, key=f"{key}:tried", job_id=None, detail={"lead": lead_id}
        )
    made = False
    if first_try or not any(marker in t.text for t in setup.client.tasks("leads", lead_id)):
        setup.client.add_tasks(
            [
                NewTask(
                    text=f"{text}\n{marker}",
                    complete_till=due,
                    entity_id=lead_id,
                    entity_type="leads",
                    responsible_user_id=responsible_user_id,
                )
            ]
        )
        made = True
    with ctx.db.write() as conn:
        effects.record(conn, school=school, key=key, job_id=None, detail={"lead": lead_id})
    return made
