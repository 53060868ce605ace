"""Messages people write in the bot's groups, by the group they are in.

- the feedback intake group (КОНТЕНТ): a teacher's feedback, or a reply to our question (W10);
- the finance group (ФИНАНСЫ ПРИХОДЫ): a manager's line about a payment, ``2500 Демин Саша`` (W6).

Anything else (other groups, the bot's own messages, edits, non-text) is noted and left alone.
A group that became a supergroup is recognised under its new id.
"""

from __future__ import annotations

from schoolsync.connectors.telegram.models import Message
from schoolsync.connectors.telegram.webhooks import parse_update
from schoolsync.core.config import School
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox
from schoolsync.mappings.feedback import feedback_rules
from schoolsync.mappings.notifications import channel_target
from schoolsync.mappings.payments import payment_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.feedback import from_intake_group
from schoolsync.sync_jobs.services.manual_payments import from_finance_group
from schoolsync.sync_jobs.services.outbox import chat_ids, note_chat_position

log = get_logger(__name__)


def process_telegram_update(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    school = ctx.school(str(row["school"]))
    message = parse_update(bytes(row["body"])).message
    if message is not None and message.text and not message.from_bot:
        with ctx.db.write() as conn:
            note_chat_position(conn, school.id, message.chat.id, message.message_id)
        group = _group_of(ctx, school, message)
        if group == "intake":
            from_intake_group(ctx, school, message)
        elif group == "finance":
            from_finance_group(ctx, school, message)
        else:
            log.info("a message in a group we do not read", school=school.id)
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)


def _group_of(ctx: JobContext, school: School, message: Message) -> str | None:
    chat = str(message.chat.id)
    wanted = {
        "intake": feedback_rules(school).intake_channel,
        "finance": payment_rules(school).channel,
    }
    with ctx.db.read() as conn:
        for group, channel in wanted.items():
            if channel not in school.channels:
                continue
            target = channel_target(school, channel)
            if chat not in chat_ids(conn, school.id, str(target.chat_id)):
                continue
            # a forum group shared by several channels: the topic says which
            if target.topic is None or target.topic == message.message_thread_id:
                return group
    return None
