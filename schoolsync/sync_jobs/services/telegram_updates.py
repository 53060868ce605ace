"""Telegram updates by ``getUpdates``, for a machine Telegram cannot reach with a webhook.

A periodic job asks for the updates after the stored offset, stores each in the inbox exactly as
``/webhooks/telegram`` would (same source, same dedup key: an update seen both ways is one row),
with its processing job, in one transaction; only then is the offset moved on (the next
``getUpdates`` with that offset confirms them to Telegram). A crash in between re-reads the same
updates, which the dedup key absorbs.
"""

from __future__ import annotations

from schoolsync.connectors.telegram.webhooks import dedup_key
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import cursors, inbox, jobs
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.names import PROCESS_INBOX_EVENT

log = get_logger(__name__)

POLL_ACTOR = "telegram_poll_updates"
SOURCE = "telegram"


def poll_updates(ctx: JobContext, school: str, *, wait_s: int = 0) -> int:
    """Store the waiting updates of the school's bot; returns how many were new."""
    setup = ctx.platforms.of(school).telegram if ctx.platforms else None
    if setup is None or not setup.poll:
        return 0
    name = f"telegram:{setup.bot}:update-offset"
    with ctx.db.read() as conn:
        stored = cursors.get_text(conn, school, name)
    updates = setup.client.get_updates(int(stored) if stored else None, timeout=wait_s)
    if not updates:
        return 0
    new = 0
    refs: list[jobs.JobRef] = []
    with ctx.db.write() as conn:
        records = [
            InboxRecord(
                school=school,
                source=SOURCE,
                dedup_key=dedup_key(setup.bot, update),
                body=update.model_dump_json(by_alias=True, exclude_none=True).encode(),
                headers={},
                query="",
                remote_addr=None,
            )
            for update in updates
        ]
        ids = inbox.insert_many(conn, records)
        keyed = [
            (school, PROCESS_INBOX_EVENT, {"inbox_id": i}, f"inbox:{i}")
            for i in ids
            if i is not None
        ]
        new = len(keyed)
        refs = jobs.add_many(conn, school_actor_args_keys=keyed)
        cursors.put_text(conn, school, name, str(max(u.update_id for u in updates) + 1))
    ctx.queue.send(refs)
    log.info("telegram updates polled", school=school, updates=len(updates), new=new)
    return new
