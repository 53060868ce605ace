"""A note on an order's amoCRM lead, made once.

Like tasks (``crm_tasks``), amoCRM has no idempotency for notes: a "tried" effect is written
before the request, the note carries a marker, and a retry after a lost answer looks for it.
"""

from __future__ import annotations

from schoolsync.connectors.amocrm.models import NewNote
from schoolsync.core.stores import effects, links
from schoolsync.sync_jobs.context import JobContext

ORDER = ("getcourse", "order")
LEAD = ("amocrm", "lead")


def lead_of(ctx: JobContext, school: str, number: str) -> int | None:
    with ctx.db.read() as conn:
        lead = links.targets(conn, school, ORDER, [number], LEAD).get(number)
    return int(lead) if lead is not None else None


def note_once(ctx: JobContext, school: str, *, key: str, number: str, text: str) -> bool:
    """A common note on the lead of order ``number`` unless ``key`` says it was made; ``True``
    when it was made now, ``False`` when made before or the order has no lead (or no CRM)."""
    setup = ctx.platforms.of(school).amocrm if ctx.platforms else None
    lead_id = lead_of(ctx, school, number)
    if setup is None or lead_id is None:
        return False
    marker = f"[schoolsync {key}]"
    with ctx.db.write() as conn:
        if effects.exists(conn, key):
            return False
        first_try = effects.record(
            conn, school=school, key=f"{key}:tried", job_id=None, detail={"lead": lead_id}
        )
    made = False
    if first_try or not any(marker in n.text for n in setup.client.notes("leads", lead_id)):
        setup.client.add_notes([NewNote.common(lead_id, f"{text}\n{marker}")], entity="leads")
        made = True
    with ctx.db.write() as conn:
        effects.record(conn, school=school, key=key, job_id=None, detail={"lead": lead_id})
    return made
