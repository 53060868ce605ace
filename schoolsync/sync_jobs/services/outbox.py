"""Notifications: queued as outbox rows, delivered to Telegram once, in order per chat.

Whoever has something to say calls :func:`queue_notices` inside its own transaction: the
message is a row (deterministic key: asked twice, stored once) before anything is sent, and a
delivery job for its chat is asked for. Messages to clients created in quiet hours get a
``not_before`` of the morning (W11); internal channels go at once.

One delivery at a time per chat (a Redis lock shared by every worker) sends the chat's due
messages oldest first, part by part, each part paced by the chat's budget (about 1 a second,
20 a minute in a group) and the bot's (30 a second), and records the message id Telegram gives
back before the next part goes.

Nothing twice: before a part is handed over the row is marked ``inflight_at``; if no answer
comes (timeout, lost connection, 5xx, a crash), the next try first asks Telegram whether the
part is already in the chat, by editing the message after the last one we know to the same text
(``TelegramClient.probe_text``: "message is not modified" means it is there). Only a chat we
have never posted to has no last known message; there a lost answer means sending again.

Failures: a message Telegram refuses (bad HTML) fails alone and can be replayed; a chat that
cannot be posted to at all (bot removed, chat not found, channel not configured) is one failure
for the chat, its messages stay pending and go out in order once it is replayed after the fix.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from redis.exceptions import LockError

from schoolsync.connectors.telegram.client import ChatMigratedError, ProbeResult
from schoolsync.connectors.telegram.text import MESSAGE_LIMIT, split_message
from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import cursors as cursor_table
from schoolsync.core.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UnavailableError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import cursors, jobs
from schoolsync.core.stores import outbox as store
from schoolsync.core.stores.outbox import NewMessage, OutMessage
from schoolsync.mappings.notifications import channel_target, notification_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import TelegramSetup

log = get_logger(__name__)

DELIVER_ACTOR = "deliver_notifications"
RESEND_ACTOR = "resend_notification"
SWEEP_ACTOR = "notifications_sweep"
_DRAIN_BUDGET_S = 100.0
_MAX_HOLD_S = 300.0  # a delivery held back longer is picked up by the sweep instead
_QUICK_TRIES = 5
PROBE_WINDOW = 50  # message ids looked at after the last one we know
_MISSING_IN_A_ROW = 3
PROBE_AFTER_S = 1.0  # let a slow request land before asking whether it did


@dataclass(frozen=True)
class Notice:
    """One message to say: to a channel of the config (``channel``) or to a person's own chat
    (``chat_id``). Messages to clients (``to_client``) wait for the end of quiet hours."""

    key: str
    kind: str
    html: str
    channel: str | None = None
    chat_id: int | str | None = None
    to_client: bool = False


def lane_of(school: School, notice: Notice) -> str:
    """Messages to one Telegram chat share a lane (they go out in order, one at a time)."""
    if notice.channel is None:
        return f"chat:{notice.chat_id}"
    try:
        return f"chat:{channel_target(school, notice.channel).chat_id}"
    except ConfigError:
        return f"channel:{notice.channel}"  # kept; delivery fails the lane with the reason


def queue_notices(
    conn: Any, school: School, notices: Sequence[Notice], *, now: datetime | None = None
) -> list[jobs.JobRef]:
    """Store ``notices`` in the caller's transaction; returns delivery jobs to send after the
    commit. A notice whose key is stored already is left as it is."""
    now = now or utcnow()
    rules = notification_rules(school)
    lanes: set[str] = set()
    for notice in notices:
        if (notice.channel is None) == (notice.chat_id is None):
            raise ValueError(f"notice {notice.key!r} needs a channel or a chat, not both")
        parts = [p for p in split_message(notice.html, MESSAGE_LIMIT) if p.strip()]
        if not parts:
            raise ValueError(f"notice {notice.key!r} has no text")
        not_before = (
            rules.quiet_hours.not_before(now, rules.client_tz(school)) if notice.to_client else now
        )
        lane = lane_of(school, notice)
        added = store.add(
            conn,
            school.id,
            NewMessage(
                key=notice.key,
                kind=notice.kind,
                lane=lane,
                text=notice.html,
                parts=parts,
                not_before=not_before,
                audience=store.CLIENT if notice.to_client else store.INTERNAL,
                channel=notice.channel,
                chat_id=None if notice.chat_id is None else str(notice.chat_id),
            ),
        )
        if added is not None and not_before <= now:
            lanes.add(lane)
    return schedule_delivery(conn, school.id, lanes)


def schedule_delivery(conn: Any, school: str, lanes: Sequence[str] | set[str]) -> list[jobs.JobRef]:
    """Ask for a delivery of each lane, unless one is already waiting to start."""
    refs = []
    for lane in sorted(lanes):
        prefix = f"outbox:{school}:{lane}:"
        # a delivery waiting for its retry (Telegram was down) may start minutes from now:
        # only one not started yet counts
        if jobs.find_waiting(conn, actor=DELIVER_ACTOR, dedup_prefix=prefix, retrying=False):
            continue
        ref = jobs.add(
            conn,
            school=school,
            actor=DELIVER_ACTOR,
            args={"school": school, "lane": lane},
            dedup_key=f"{prefix}{uuid.uuid4().hex}",
        )
        if ref is not None:
            refs.append(ref)
    return refs


def sweep(ctx: JobContext) -> int:
    """Ask for deliveries of every lane with due messages (the morning after quiet hours, a
    delivery lost with Redis). Returns how many were asked for."""
    with ctx.db.write() as conn:
        due = store.due_lanes(conn, utcnow())
        refs: list[jobs.JobRef] = []
        for school, lane in due:
            if _lane_failure_open(conn, school, lane):
                continue
            refs += schedule_delivery(conn, school, {lane})
    ctx.queue.send(refs)
    return len(refs)


def resend(ctx: JobContext, school: str, key: str) -> None:
    """A failed message, replayed: pending again, and delivered (a refused text is sent as it
    was: a replay helps when the cause was the chat, not the text)."""
    with ctx.db.write() as conn:
        row = store.requeue(conn, school, key)
        if row is None:
            raise NotFoundError(f"no outbox message {key!r} in school {school!r}")
        refs = schedule_delivery(conn, school, {str(row["lane"])})
    ctx.queue.send(refs)


# --- delivery --------------------------------------------------------------------------------


class _LaneBlocked(Exception):
    """The chat cannot be posted to at all; the lane's failure is recorded."""


class _OutOfTime(Exception):
    """No turn for us within this job's time (our budget, or Telegram's 429 ``retry_after``):
    a new job goes on, held back until the turn comes."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"next turn in {wait_s:.1f} s")
        self.wait_s = wait_s


def deliver(ctx: JobContext, school: str, lane: str) -> int:
    """Send the due messages of one lane; returns how many were completed."""
    setup = ctx.platforms.of(school).telegram if ctx.platforms else None
    config = ctx.config.school(school)
    if setup is None or config is None:
        log.warning("no Telegram bot for this school; messages wait", school=school, lane=lane)
        return 0
    assert ctx.platforms is not None
    started = time.monotonic()
    done = 0
    lock = ctx.platforms.redis.lock(f"schoolsync:lock:outbox:{school}:{lane}", timeout=120)
    if not lock.acquire(blocking=False):
        return 0  # the holder sends these too, and looks again after it lets go
    out_of_time = False
    wait_s = 0.0
    try:
        sender = _Sender(ctx, config, setup, lane, lock.reacquire, started)
        while True:
            with ctx.db.read() as conn:
                if _lane_failure_open(conn, school, lane):
                    log.info("chat is waiting for a person; not sending", school=school, lane=lane)
                    return done
                message = store.next_due(conn, school, lane, utcnow())
            if message is None:
                break
            if time.monotonic() - started > _DRAIN_BUDGET_S:
                out_of_time = True
                break
            try:
                done += sender.send(message)
            except _LaneBlocked:
                return done
            except _OutOfTime as exc:
                out_of_time, wait_s = True, exc.wait_s
                break
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("outbox lock expired before release", school=school, lane=lane)
    if out_of_time:
        with ctx.db.write() as conn:
            refs = schedule_delivery(conn, school, {lane})
        ctx.queue.send(refs, delay_ms=int(min(wait_s, _MAX_HOLD_S) * 1000))
        return done
    # a message queued while we held the lock, whose own delivery found it taken: look again
    with ctx.db.write() as conn:
        due = store.next_due(conn, school, lane, utcnow()) is not None
        refs = schedule_delivery(conn, school, {lane}) if due else []
    ctx.queue.send(refs)
    return done


class _Sender:
    def __init__(
        self,
        ctx: JobContext,
        school: School,
        setup: TelegramSetup,
        lane: str,
        keepalive: Callable[[], object],
        started: float,
    ) -> None:
        self.ctx = ctx
        self.school = school
        self.setup = setup
        self.lane = lane
        self.keepalive = keepalive
        self.started = started

    def _left(self) -> float:
        return max(0.0, _DRAIN_BUDGET_S - (time.monotonic() - self.started))

    def send(self, message: OutMessage) -> int:
        """Send the remaining parts of ``message``; 1 when it is complete, 0 when it failed."""
        try:
            chat_id, thread_id = self._target(message)
        except ConfigError as exc:
            self._block(message, exc)
            raise _LaneBlocked from exc
        tries = 0
        while message.next_part < len(message.parts):
            self.keepalive()
            text = message.parts[message.next_part]
            handed_over = False  # this pass's sendMessage may have reached Telegram
            try:
                if message.inflight_at is not None:
                    found = self._probe(message, chat_id, text)
                    if found is not None:
                        message = self._record(message, chat_id, found)
                        continue
                    self._clear(message)  # looked: it is not there
                    message = _without_inflight(message)
                self.setup.chat_pacer(chat_id).acquire(max_wait=self._left())
                self.keepalive()  # still ours: nobody else may send this part meanwhile
                with self.ctx.db.write() as conn:
                    if not store.mark_inflight(conn, message.id, at=utcnow()):
                        return 0  # replayed or cancelled meanwhile
                message = _with_inflight(message)
                handed_over = True
                sent = self.setup.client.send_part(chat_id, text, thread_id=thread_id)
            except ChatMigratedError as exc:
                with self.ctx.db.write() as conn:
                    cursors.put_text(conn, self.school.id, _migrated(chat_id), str(exc.new_chat_id))
                    store.clear_inflight(conn, message.id)
                log.warning(
                    "Telegram group became a supergroup; using its new chat id",
                    school=self.school.id,
                    channel=message.channel,
                )
                chat_id = str(exc.new_chat_id)
                message = _without_inflight(message)
                continue
            except RateLimitedError as exc:
                # a 429 (the client already slowed the bot down), or a budget spent for longer
                # than this job may wait: nothing was sent by the call that said so
                if handed_over:
                    self._clear(message)
                    message = _without_inflight(message)
                if exc.status == 429:
                    self.setup.chat_pacer(chat_id).penalize(exc.retry_after or 1.0)
                wait = exc.retry_after or 1.0
                if wait > self._left():
                    raise _OutOfTime(wait) from exc  # not a retry: waiting is not failing
                time.sleep(wait)
                continue
            except UnavailableError as exc:
                tries += 1  # no answer: the part may be in the chat (inflight_at stays)
                with self.ctx.db.write() as conn:
                    store.note_error(conn, message.id, exc.message)
                wait = min(0.25 * 2 ** (tries - 1), 5.0)
                if tries > _QUICK_TRIES or wait > self._left():
                    raise
                log.info("Telegram did not answer; checking and trying again", lane=self.lane)
                time.sleep(wait)
                continue
            except (AuthError, NotFoundError, RejectedError) as exc:
                if handed_over:
                    self._clear(message)
                if message.channel is None and isinstance(exc, AuthError | NotFoundError):
                    self._cancel_lane(exc)  # blocked by the client, or never started: no fix
                    raise _LaneBlocked from exc
                if isinstance(exc, AuthError | NotFoundError) or _chat_level(exc):
                    self._block(message, exc)
                    raise _LaneBlocked from exc
                self._fail_message(message, type(exc).__name__, exc.message)
                return 0
            message = self._record(message, chat_id, sent.message_id)
        return 1

    # -- where ---------------------------------------------------------------------------------

    def _target(self, message: OutMessage) -> tuple[str, int | None]:
        if message.channel is None:
            chat, topic = str(message.chat_id), None
        else:
            target = channel_target(self.school, message.channel)
            chat, topic = str(target.chat_id), target.topic
        with self.ctx.db.read() as conn:
            moved = cursors.get_text(conn, self.school.id, _migrated(chat))
        return (moved or chat), topic

    # -- lost answers --------------------------------------------------------------------------

    def _probe(self, message: OutMessage, chat_id: str, text: str) -> int | None:
        """The id of ``text`` if the part handed over earlier is in the chat, else ``None``."""
        assert message.inflight_at is not None
        settle = PROBE_AFTER_S - (utcnow() - message.inflight_at).total_seconds()
        if settle > 0:
            time.sleep(settle)
        with self.ctx.db.read() as conn:
            known = cursors.get_text(conn, self.school.id, _last_id(chat_id))
        if known is None:
            log.warning(
                "a part may have reached a chat we never posted to; sending it again "
                "(it can appear twice)",
                school=self.school.id,
                lane=self.lane,
            )
            return None
        last = int(known)
        missing = 0
        for candidate in range(last + 1, last + 1 + PROBE_WINDOW):
            self.keepalive()
            found = self.setup.client.probe_text(chat_id, candidate, text)
            if found is ProbeResult.SAME:
                log.info("a part whose answer was lost is in the chat", lane=self.lane)
                return candidate
            if found is ProbeResult.MISSING:
                # ids are given in order: a few missing in a row means ours was never given
                # one (one or two may be messages deleted since)
                missing += 1
                if missing >= _MISSING_IN_A_ROW:
                    return None
                continue
            missing = 0
            if found is ProbeResult.EDITED:
                log.error(
                    "probing replaced the text of one of our messages we did not know about",
                    school=self.school.id,
                    lane=self.lane,
                    message_id=candidate,
                )
                return candidate
        return None

    # -- bookkeeping ---------------------------------------------------------------------------

    def _record(self, message: OutMessage, chat_id: str, telegram_id: int) -> OutMessage:
        with self.ctx.db.write() as conn:
            ids = store.mark_part_sent(conn, message, telegram_id)
            known = cursors.get_text(conn, self.school.id, _last_id(chat_id))
            if known is None or int(known) < telegram_id:
                cursors.put_text(conn, self.school.id, _last_id(chat_id), str(telegram_id))
        return replace(message, sent_ids=ids, inflight_at=None)

    def _clear(self, message: OutMessage) -> None:
        with self.ctx.db.write() as conn:
            store.clear_inflight(conn, message.id)

    def _cancel_lane(self, exc: AuthError | NotFoundError) -> None:
        """A client blocked the bot (or never started it): their messages cannot go, and no
        person can change that; they are cancelled with the reason, not failed."""
        with self.ctx.db.write() as conn:
            cancelled = store.cancel_lane(conn, self.school.id, self.lane, exc.message)
        log.info(
            "a client's chat refuses the bot; their messages are cancelled",
            school=self.school.id,
            lane=self.lane,
            cancelled=cancelled,
        )

    def _fail_message(self, message: OutMessage, error_class: str, error: str) -> None:
        where = f"channel {message.channel!r}" if message.channel else "a client's chat"
        text = f"Telegram refused message {message.key!r} to {where}: {error}"
        with self.ctx.db.write() as conn:
            store.mark_failed(conn, message.id, text)
            jobs.fail_as_job(
                conn,
                school=self.school.id,
                actor=RESEND_ACTOR,
                args={"school": self.school.id, "key": message.key},
                key=f"outbox-message:{self.school.id}:{message.key}",
                error_class=error_class,
                error=text,
            )
        log.error("Telegram refused a message", school=self.school.id, message=message.key)

    def _block(
        self, message: OutMessage, exc: AuthError | NotFoundError | ConfigError | RejectedError
    ) -> None:
        """One failure for the chat, naming the channel; its messages stay pending.

        Inside the replay of that very failure (it holds the chat's lock, its job is running),
        the error is raised instead, so the replay fails and the same failure reopens.
        """
        where = f"channel {message.channel!r}" if message.channel else f"chat {message.chat_id}"
        text = (
            f"cannot post to {where} ({exc.message}); its messages wait. Add the bot to the "
            "group (or fix `channels:` in schoolsync.yaml), then replay this failure"
        )
        key = _lane_failure_key(self.school.id, self.lane)
        with self.ctx.db.write() as conn:
            row = jobs.get_by_key(conn, key)
            if row is not None and row["status"] == jobs.RUNNING:
                raise type(exc)(text, platform="telegram")
            jobs.fail_as_job(
                conn,
                school=self.school.id,
                actor=DELIVER_ACTOR,
                args={"school": self.school.id, "lane": self.lane},
                key=key,
                error_class=type(exc).__name__,
                error=text,
            )
        log.error("cannot post to a chat", school=self.school.id, lane=self.lane, error=text)


# 400s that are about the chat, not the message: every message there would fail the same way
_CHAT_LEVEL = ("not enough rights", "topic_closed", "topic closed", "chat_write_forbidden")


def _chat_level(exc: RejectedError) -> bool:
    folded = exc.message.casefold()
    return any(marker in folded for marker in _CHAT_LEVEL)


def chat_ids(conn: Any, school: str, configured: str) -> list[str]:
    """A configured chat id and the ids it moved to (a group that became a supergroup)."""
    found = [configured]
    while len(found) < 5:
        moved = cursors.get_text(conn, school, _migrated(found[-1]))
        if moved is None or moved in found:
            break
        found.append(moved)
    return found


def chat_ids_before(conn: Any, school: str, chat_id: str) -> list[str]:
    """A chat id and the ids it had before it moved (whose lanes hold its older messages)."""
    found = [chat_id]
    rows = conn.execute(
        sa.select(cursor_table.c.name, cursor_table.c.value).where(
            cursor_table.c.school == school, cursor_table.c.name.startswith("telegram:migrated:")
        )
    ).all()
    moved_from = {str(value): str(name).removeprefix("telegram:migrated:") for name, value in rows}
    while found[-1] in moved_from and moved_from[found[-1]] not in found and len(found) < 5:
        found.append(moved_from[found[-1]])
    return found


def lanes_of_chat(conn: Any, school: str, chat_id: str) -> list[str]:
    """The lanes a chat's messages are in (its own, and those of ids it had before)."""
    return [f"chat:{c}" for c in chat_ids_before(conn, school, chat_id)]


def note_chat_position(conn: Any, school: str, chat_id: int, message_id: int) -> None:
    """A message seen in a chat: keep the chat's last known message id current, so that a lost
    answer to our next message there is looked for from close by. Only while none of ours is
    on its way there: a newer id than an unanswered message of ours would hide it."""
    name = _last_id(str(chat_id))
    if store.inflight_in(conn, school, lanes_of_chat(conn, school, str(chat_id))):
        return
    known = cursors.get_text(conn, school, name)
    if known is None or int(known) < message_id:
        cursors.put_text(conn, school, name, str(message_id))


def _lane_failure_key(school: str, lane: str) -> str:
    return f"outbox-lane:{school}:{lane}"


def _lane_failure_open(conn: Any, school: str, lane: str) -> bool:
    row = jobs.get_by_key(conn, _lane_failure_key(school, lane))
    return row is not None and row["status"] in (jobs.FAILED, jobs.DEAD)


def _migrated(chat_id: str) -> str:
    return f"telegram:migrated:{chat_id}"


def _last_id(chat_id: str) -> str:
    return f"telegram:last-id:{chat_id}"


def _with_inflight(message: OutMessage) -> OutMessage:
    return replace(message, inflight_at=utcnow())


def _without_inflight(message: OutMessage) -> OutMessage:
    return replace(message, inflight_at=None)
