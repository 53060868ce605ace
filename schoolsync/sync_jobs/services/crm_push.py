"""W1: pending orders -> amoCRM leads with their contacts, in batches of up to 50, once.

One push at a time per school (a Redis lock shared by every worker process) drains the pending
orders: each batch is claimed in the database, mapped, matched to known contacts (by email, then
E.164 phone, from a contact index mirrored from the CRM), and sent as one
``/api/v4/leads/complex`` request for new leads plus one ``PATCH /api/v4/leads`` for leads we
already have. Links (order -> lead, order -> contact) and the contact index are written in the
same transaction that marks the orders synced.

Nothing twice: an order whose earlier push may have reached amoCRM (a timeout, a 5xx, a crash)
is looked up first among the leads changed since then, by the order number in its custom field;
if found, it is linked and updated instead of created again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import LockError

from schoolsync.connectors.amocrm.models import ComplexResult, Lead
from schoolsync.core.clock import utcnow
from schoolsync.core.domain import normalize_email, normalize_phone
from schoolsync.core.errors import (
    RateLimitedError,
    RejectedError,
    StoreUnavailableError,
    UnavailableError,
    UnmappableError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import cursors, jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores.orders import StoredOrder
from schoolsync.mappings.amocrm import LeadDraft, lead_for
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup

log = get_logger(__name__)

PUSH_ACTOR = "push_orders_to_crm"
RESEND_ACTOR = "resend_order_to_crm"
# Pushes that may run at once per school, each for its own share of people. Measured with 2: no
# faster (the push waits for amoCRM's request budget 70 % of the time), so one by default.
LANES = 1
BATCH = 50
ORDER = ("getcourse", "order")
LEAD = ("amocrm", "lead")
CONTACT = ("amocrm", "contact")
_CLAIM_STALE = timedelta(minutes=10)
_DRAIN_BUDGET_S = 120.0
_CONTACT_INDEX_EVERY_S = 30.0
_CONTACT_PAGES_PER_LOOK = 20


def schedule_push(conn: Any, school: str, lanes: Iterable[int]) -> list[jobs.JobRef]:
    """Ask for a push of each lane in the caller's transaction, unless one is already waiting to
    start (it will see this transaction's orders: it is claimed only after the commit)."""
    refs = []
    for lane in sorted(set(lanes)):
        prefix = f"crm-push:{school}:{lane}:"
        if jobs.find_waiting(conn, actor=PUSH_ACTOR, dedup_prefix=prefix):
            continue
        ref = jobs.add(
            conn,
            school=school,
            actor=PUSH_ACTOR,
            args={"school": school, "lane": lane},
            dedup_key=f"{prefix}{uuid.uuid4().hex}",
        )
        if ref is not None:
            refs.append(ref)
    return refs


@dataclass
class _Batch:
    claimed: list[StoredOrder]
    drafts: dict[int, LeadDraft]
    lead_ids: dict[int, str]  # order row id -> existing lead id
    contact_ids: dict[int, str]  # order row id -> existing contact id
    claim_id: str


def push_orders(ctx: JobContext, school: str, lane: int = 0) -> int:
    """Drain the pending orders of one lane into amoCRM; returns how many were synced.

    Lanes (``LANES``, by person) let two pushes overlap: one prepares and records its batch
    while the other waits for amoCRM, both under the account's shared request budget.
    """
    setup = ctx.platforms.of(school).amocrm if ctx.platforms else None
    if setup is None or setup.mapping is None:
        log.info("no amoCRM account or mapping for this school; nothing to push", school=school)
        return 0
    assert ctx.platforms is not None
    started = time.monotonic()
    synced = 0
    while True:
        lock = ctx.platforms.redis.lock(f"schoolsync:lock:crm-push:{school}:{lane}", timeout=180)
        if not lock.acquire(blocking=False):
            return synced  # the holder drains, and looks again after it lets go
        try:
            while True:
                try:
                    done = _push_batch(ctx, school, setup, lane, lock.reacquire)
                except RateLimitedError as exc:
                    # the budget is shared and already slowed down: wait our turn here rather
                    # than give the batch up to a retry that starts the queue over
                    wait = min(exc.retry_after or 1.0, 5.0)
                    if time.monotonic() - started + wait > _DRAIN_BUDGET_S:
                        raise
                    log.info("amoCRM rate limit; waiting", school=school, seconds=wait)
                    time.sleep(wait)
                    lock.reacquire()
                    continue
                synced += done
                if done == 0 and not _has_pending(ctx, school, lane):
                    break
                lock.reacquire()
                if time.monotonic() - started > _DRAIN_BUDGET_S:
                    _continue_later(ctx, school, lane)
                    return synced
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("push lock expired before release", school=school)
        # a push asked for while we held the lock gave up: look once more
        if not _has_pending(ctx, school, lane):
            return synced


def _has_pending(ctx: JobContext, school: str, lane: int) -> bool:
    with ctx.db.read() as conn:
        counts = order_store.count_by_state(conn, school, lane=lane)
    return counts.get(order_store.PENDING, 0) > 0


def _continue_later(ctx: JobContext, school: str, lane: int) -> None:
    with ctx.db.write() as conn:
        ref = jobs.add(
            conn,
            school=school,
            actor=PUSH_ACTOR,
            args={"school": school, "lane": lane},
            dedup_key=f"crm-push:{school}:{lane}:{uuid.uuid4().hex}",
        )
    if ref is not None:
        ctx.queue.send([ref])


def _push_batch(
    ctx: JobContext, school: str, setup: AmoCrmSetup, lane: int, keepalive: Callable[[], object]
) -> int:
    if not _refresh_contact_index(ctx, school, setup):
        return 0  # the mirror of amoCRM's contacts is still being built: match nobody yet
    claim_id = uuid.uuid4().hex
    with ctx.db.write() as conn:
        claimed = order_store.claim(
            conn,
            school,
            limit=min(setup.batch_size, BATCH),
            claim_id=claim_id,
            stale_before=utcnow() - _CLAIM_STALE,
            lane=lane,
        )
    if not claimed:
        return 0
    try:
        batch = _prepare(ctx, school, setup, claimed, claim_id)
    except BaseException:
        with ctx.db.write() as conn:
            order_store.release(conn, [o.id for o in claimed], claim_id=claim_id)
        raise
    return _send(ctx, school, setup, batch, keepalive)


def _prepare(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    claimed: list[StoredOrder],
    claim_id: str,
) -> _Batch:
    assert setup.mapping is not None
    drafts: dict[int, LeadDraft] = {}
    failed: list[tuple[int, str]] = []
    for stored in claimed:
        try:
            drafts[stored.id] = lead_for(stored.order, setup.mapping, school=school)
        except Exception as exc:  # one order that cannot be mapped must not hold up the rest
            message = exc.message if isinstance(exc, UnmappableError) else repr(exc)
            failed.append((stored.id, message))
            log.error("order cannot be mapped to a lead", school=school, error=message)
    numbers = [o.order.number for o in claimed if o.id in drafts]
    with ctx.db.write() as conn:
        by_id = {o.id: o for o in claimed}
        for order_id, message in failed:
            _fail_order(conn, school, by_id[order_id], claim_id, "UnmappableError", message)
        lead_by_number = links.targets(conn, school, ORDER, numbers, LEAD)
        by_email = links.find_contacts(
            conn,
            school,
            "amocrm",
            setup.account,
            "email",
            [d.email for d in drafts.values() if d.email],
        )
        by_phone = links.find_contacts(
            conn,
            school,
            "amocrm",
            setup.account,
            "phone",
            [d.phone for d in drafts.values() if d.phone],
        )
    active = [o for o in claimed if o.id in drafts]
    lead_ids = {
        o.id: lead_by_number[o.order.number] for o in active if o.order.number in lead_by_number
    }
    contact_ids: dict[int, str] = {}
    lost = [o for o in active if o.id not in lead_ids and o.maybe_sent_at is not None]
    if lost:
        hidden = _find_hidden_leads(setup, lost, drafts)
        with ctx.db.write() as conn:  # found is found: keep it even if this push stops here
            pairs: list[tuple[tuple[str, str, str], tuple[str, str, str]]] = []
            index: list[tuple[str, str, str]] = []
            for order_id, (lead_id, contact_id) in hidden.items():
                draft = drafts[order_id]
                pairs.append(((*ORDER, draft.order_number), (*LEAD, lead_id)))
                lead_ids[order_id] = lead_id
                if contact_id:
                    contact_ids[order_id] = contact_id
                    pairs.append(((*ORDER, draft.order_number), (*CONTACT, contact_id)))
                    index += [(k, v, contact_id) for k, v in _keys(draft)]
            links.put_many(conn, school, pairs)
            links.index_contacts(conn, school, "amocrm", setup.account, index)
            by_email.update({v: c for k, v, c in index if k == "email"})
            by_phone.update({v: c for k, v, c in index if k == "phone"})
    postponed: list[int] = []
    new_contact_keys: set[str] = set()
    for stored in active:
        draft = drafts[stored.id]
        known = (by_email.get(draft.email) if draft.email else None) or (
            by_phone.get(draft.phone) if draft.phone else None
        )
        if known:
            contact_ids.setdefault(stored.id, known)
        elif stored.id not in lead_ids:
            keys = {k for k in (draft.email, draft.phone) if k}
            if keys & new_contact_keys:
                postponed.append(stored.id)  # same new person twice: one contact, next batch
                continue
            new_contact_keys |= keys
    if postponed:
        with ctx.db.write() as conn:
            order_store.release(conn, postponed, claim_id=claim_id)
    keep = [o for o in active if o.id not in postponed]
    return _Batch(keep, drafts, lead_ids, contact_ids, claim_id)


def _keys(draft: LeadDraft) -> list[tuple[str, str]]:
    return [(k, v) for k, v in (("email", draft.email), ("phone", draft.phone)) if v]


def _find_hidden_leads(
    setup: AmoCrmSetup, lost: list[StoredOrder], drafts: dict[int, LeadDraft]
) -> dict[int, tuple[str, str | None]]:
    """Leads (and their contacts) created by a push whose answer we never got, found by the
    order number field among the leads changed since that push."""
    assert setup.mapping is not None
    since: datetime = min(o.maybe_sent_at for o in lost if o.maybe_sent_at) - timedelta(minutes=2)
    wanted = {drafts[o.id].order_number: o.id for o in lost}
    field_id = setup.mapping.fields.order_number
    found: dict[int, tuple[str, str | None]] = {}
    for lead in setup.client.iter_leads(updated_since=since):
        number = _field_value(lead, field_id)
        if number in wanted:
            contact = lead.main_contact_id
            found[wanted[number]] = (str(lead.id), str(contact) if contact else None)
    if found:
        log.info("found leads created by an unanswered push", count=len(found))
    return found


def _send(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    batch: _Batch,
    keepalive: Callable[[], object],
) -> int:
    updates = [o for o in batch.claimed if o.id in batch.lead_ids]
    creates = [o for o in batch.claimed if o.id not in batch.lead_ids]
    done_links: list[tuple[StoredOrder, str, str | None]] = []
    attempted = False
    try:
        if updates:
            attempted = True
            setup.client.update_leads(
                [batch.drafts[o.id].update(batch.lead_ids[o.id]) for o in updates]
            )
            done_links += [(o, batch.lead_ids[o.id], batch.contact_ids.get(o.id)) for o in updates]
        if creates:
            attempted = True
            results = setup.client.leads_complex(
                [
                    batch.drafts[stored.id].create(
                        request_id=str(index), contact_id=batch.contact_ids.get(stored.id)
                    )
                    for index, stored in enumerate(creates)
                ]
            )
            by_request = {_request_id(r): r for r in results}
            for index, stored in enumerate(creates):
                result = by_request.get(str(index))
                if result is None:
                    raise UnavailableError(
                        f"amoCRM answered {len(results)} results for {len(creates)} leads",
                        platform="amocrm",
                        account=setup.account,
                    )
                contact_id = result.contact_id or batch.contact_ids.get(stored.id)
                done_links.append((stored, str(result.id), str(contact_id) if contact_id else None))
    except RejectedError as exc:
        _record(ctx, school, setup, batch, done_links)
        rest = [o for o in batch.claimed if o.id not in {d[0].id for d in done_links}]
        if len(rest) == 1:
            with ctx.db.write() as conn:
                _fail_order(conn, school, rest[0], batch.claim_id, type(exc).__name__, exc.message)
            log.error("amoCRM rejected a lead", school=school, error=exc.message)
            return len(done_links)
        # one bad lead refuses the whole batch: send the rest one by one, still under this
        # claim, to find it (nothing is released, so no other push can take them meanwhile)
        sent = len(done_links)
        for position, stored in enumerate(rest):
            try:
                keepalive()
                single = _Batch(
                    [stored], batch.drafts, batch.lead_ids, batch.contact_ids, batch.claim_id
                )
                sent += _send(ctx, school, setup, single, keepalive)
            except BaseException:
                with ctx.db.write() as conn:  # the ones not tried yet go back as they were
                    order_store.release(
                        conn, [o.id for o in rest[position + 1 :]], claim_id=batch.claim_id
                    )
                raise
        return sent
    except BaseException as exc:
        _record(ctx, school, setup, batch, done_links)
        pending = [o.id for o in batch.claimed if o.id not in {d[0].id for d in done_links}]
        with ctx.db.write() as conn:
            order_store.release(
                conn,
                pending,
                claim_id=batch.claim_id,
                maybe_sent=attempted and not _surely_not_applied(exc),
            )
        raise
    _record(ctx, school, setup, batch, done_links)
    return len(done_links)


def _fail_order(
    conn: Any, school: str, stored: StoredOrder, claim_id: str, error_class: str, message: str
) -> None:
    """Mark the order failed and make that a ``failures`` row an admin sees and can replay
    (``schoolsync failures replay N`` sends the order again, with the config as it is then)."""
    order_store.mark_failed(conn, stored.id, message, claim_id=claim_id)
    order = stored.order
    key = f"crm-order:{school}:{order.platform}:{order.account}:{order.number}"
    jobs.add(
        conn,
        school=school,
        actor=RESEND_ACTOR,
        args={
            "school": school,
            "platform": order.platform,
            "account": order.account,
            "number": order.number,
        },
        dedup_key=key,
    )
    row = jobs.get_by_key(conn, key)
    assert row is not None
    jobs.finish(conn, row, attempt=None, status=jobs.FAILED, error_class=error_class, error=message)


def resend_order(ctx: JobContext, school: str, platform: str, account: str, number: str) -> None:
    """A failed order, replayed: pending again, and a push asked for."""
    with ctx.db.write() as conn:
        row = order_store.get(conn, school, platform, account, number)
        if row is None:
            raise UnmappableError(f"order {number} is not in the order mirror")
        order_store.requeue(conn, school, [number])
        refs = schedule_push(conn, school, [int(row["lane"])])
    ctx.queue.send(refs)


def _surely_not_applied(exc: BaseException) -> bool:
    """A 429 (amoCRM's or our own budget's) is refused before anything happens; a timeout, a
    5xx or an unexpected error may come after amoCRM applied the request."""
    return isinstance(exc, RateLimitedError | StoreUnavailableError)


def _record(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    batch: _Batch,
    done: list[tuple[StoredOrder, str, str | None]],
) -> None:
    if not done:
        return
    with ctx.db.write() as conn:
        index: list[tuple[str, str, str]] = []
        pairs: list[tuple[tuple[str, str, str], tuple[str, str, str]]] = []
        for stored, lead_id, contact_id in done:
            number = stored.order.number
            pairs.append(((*ORDER, number), (*LEAD, lead_id)))
            if contact_id:
                pairs.append(((*ORDER, number), (*CONTACT, contact_id)))
                draft = batch.drafts[stored.id]
                if draft.email:
                    index.append(("email", draft.email, contact_id))
                if draft.phone:
                    index.append(("phone", draft.phone, contact_id))
        links.put_many(conn, school, pairs)
        links.index_contacts(conn, school, "amocrm", setup.account, index)
        order_store.mark_synced(
            conn, [(stored.id, stored.version) for stored, _, _ in done], claim_id=batch.claim_id
        )


def _refresh_contact_index(ctx: JobContext, school: str, setup: AmoCrmSetup) -> bool:
    """Mirror amoCRM's contacts (email and phone -> contact id); returns whether the mirror is
    complete. No contact is created before it is: the person could be in amoCRM already.

    The first time, every contact is read in id order, ``_CONTACT_PAGES_PER_LOOK`` pages per
    look, the page reached stored after each page (an account with a million contacts is read
    look by look, never started over). After that, every 30 s at most, the contacts changed
    since the last look (a few seconds of overlap).
    """
    name = f"amocrm:{setup.account}:contacts"
    with ctx.db.read() as conn:
        position = cursors.get(conn, school, name)  # changes up to here are mirrored
        checked = cursors.get(conn, school, f"{name}:checked")
        build_page = cursors.get_text(conn, school, f"{name}:build-page")
        build_started = cursors.get(conn, school, f"{name}:build-started")
    now = utcnow()
    if checked is not None and (now - checked).total_seconds() < _CONTACT_INDEX_EVERY_S:
        return True
    building = position is None
    if building and build_started is None:
        build_started = now
    page = int(build_page or 1)
    entries: list[tuple[str, str, str]] = []

    def save(*, done: bool) -> None:
        with ctx.db.write() as conn:
            links.index_contacts(conn, school, "amocrm", setup.account, entries)
            if building:
                assert build_started is not None
                cursors.put(conn, school, f"{name}:build-started", build_started)
                cursors.put_text(conn, school, f"{name}:build-page", str(page))
                if done:
                    cursors.put(conn, school, name, build_started)
            elif done:
                cursors.put(conn, school, name, now)
            if done:
                cursors.put(conn, school, f"{name}:checked", now)
        entries.clear()

    if position is None:
        contacts = setup.client.iter_contacts(order_by="id", first_page=page)
    else:
        contacts = setup.client.iter_contacts(updated_since=position - timedelta(seconds=5))
    for seen, contact in enumerate(contacts, start=1):
        cid = str(contact.id)
        entries.extend(("email", e, cid) for e in map(normalize_email, contact.emails()) if e)
        entries.extend(("phone", p, cid) for p in map(normalize_phone, contact.phones()) if p)
        if seen % 250 == 0:  # a full page
            page += 1
            save(done=False)
            if building and seen >= 250 * _CONTACT_PAGES_PER_LOOK:
                return False  # the next look goes on from this page
    save(done=True)
    return True


def _request_id(result: ComplexResult) -> str:
    return result.request_id[0] if result.request_id else ""


def _field_value(lead: Lead, field_id: int) -> str | None:
    values = lead.field_values(field_id)
    return values[0] if values else None
