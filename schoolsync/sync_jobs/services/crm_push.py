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
from itertools import chain
from typing import Any

from redis.exceptions import LockError

from schoolsync.connectors.amocrm.models import ComplexResult, Contact, Created, Lead, LeadUpdate
from schoolsync.core.clock import utcnow
from schoolsync.core.domain import normalize_email, normalize_phone
from schoolsync.core.errors import (
    AuthError,
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
from schoolsync.mappings.status_sync import status_sync_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup
from schoolsync.sync_jobs.services.echoes import remember_lead_stages

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
_QUICK_TRIES = 5
_SCAN_AT_MOST = timedelta(hours=1)  # older "maybe sent" marks: search by number instead


def schedule_push(conn: Any, school: str, lanes: Iterable[int]) -> list[jobs.JobRef]:
    """Ask for a push of each lane in the caller's transaction, unless one is already waiting to
    start (it will see this transaction's orders: it is claimed only after the commit)."""
    refs = []
    for lane in sorted(set(lanes)):
        if jobs.find_waiting(conn, actor=PUSH_ACTOR, dedup_prefix=_push_prefix(school, lane)):
            continue
        ref = _add_push(conn, school, lane)
        if ref is not None:
            refs.append(ref)
    return refs


def _push_prefix(school: str, lane: int) -> str:
    return f"crm-push:{school}:{lane}:"


def _add_push(conn: Any, school: str, lane: int) -> jobs.JobRef | None:
    return jobs.add(
        conn,
        school=school,
        actor=PUSH_ACTOR,
        args={"school": school, "lane": lane},
        dedup_key=f"{_push_prefix(school, lane)}{uuid.uuid4().hex}",
    )


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
    out_of_time = False
    unavailable = 0  # failed tries in a row
    while True:
        lock = ctx.platforms.redis.lock(f"schoolsync:lock:crm-push:{school}:{lane}", timeout=180)
        if not lock.acquire(blocking=False):
            return synced  # the holder drains, and looks again after it lets go
        try:
            while True:
                try:
                    done = _push_batch(ctx, school, setup, lane, lock.reacquire)
                except UnavailableError as exc:
                    # a 5xx or a timeout: the batch is back (marked if it may have arrived);
                    # a few quick tries here before the job's slower retries take over
                    unavailable += 1
                    wait = min(0.5 * 2**unavailable, 5.0)
                    if unavailable > _QUICK_TRIES or (
                        time.monotonic() - started + wait > _DRAIN_BUDGET_S
                    ):
                        raise
                    log.info("amoCRM unavailable; trying again", school=school, error=exc.message)
                    time.sleep(wait)
                    lock.reacquire()
                    continue
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
                unavailable = 0
                if done == 0 and not _has_pending(ctx, school, lane):
                    break
                lock.reacquire()
                if time.monotonic() - started > _DRAIN_BUDGET_S:
                    out_of_time = True
                    break
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("push lock expired before release", school=school)
        if out_of_time:  # after the release, so that the next job can take the lock
            _continue_later(ctx, school, lane)
            return synced
        # a push asked for while we held the lock gave up: look once more
        if not _has_pending(ctx, school, lane):
            return synced


def _has_pending(ctx: JobContext, school: str, lane: int) -> bool:
    with ctx.db.read() as conn:
        counts = order_store.count_by_state(conn, school, lane=lane)
    return counts.get(order_store.PENDING, 0) > 0


def _continue_later(ctx: JobContext, school: str, lane: int) -> None:
    with ctx.db.write() as conn:
        ref = _add_push(conn, school, lane)
    if ref is not None:
        ctx.queue.send([ref])


def _push_batch(
    ctx: JobContext, school: str, setup: AmoCrmSetup, lane: int, keepalive: Callable[[], object]
) -> int:
    if not _refresh_contact_index(ctx, school, setup, keepalive):
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
        batch = _prepare(ctx, school, setup, claimed, claim_id, keepalive)
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
    keepalive: Callable[[], object],
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
        hidden = _find_hidden_leads(setup, lost, drafts, keepalive)
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
    setup: AmoCrmSetup,
    lost: list[StoredOrder],
    drafts: dict[int, LeadDraft],
    keepalive: Callable[[], object],
) -> dict[int, tuple[str, str | None]]:
    """Leads (and their contacts) created by a push whose answer we never got, found by the
    order number field: among the leads changed since that push when it was recent, else by
    searching each order's number."""
    assert setup.mapping is not None
    since: datetime = min(o.maybe_sent_at for o in lost if o.maybe_sent_at) - timedelta(minutes=2)
    wanted = {drafts[o.id].order_number: o.id for o in lost}
    field_id = setup.mapping.fields.order_number
    found: dict[int, tuple[str, str | None]] = {}
    if utcnow() - since > _SCAN_AT_MOST:
        candidates: Iterable[Lead] = (
            lead for number in wanted for lead in setup.client.find_leads(number)
        )
    else:
        candidates = setup.client.iter_leads(updated_since=since)
    for seen, lead in enumerate(candidates, start=1):
        if seen % 250 == 0:
            keepalive()
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
            changes = [batch.drafts[o.id].update(batch.lead_ids[o.id]) for o in updates]
            attempted = True
            answers = setup.client.update_leads(changes)
            _remember_stages(ctx, school, changes, answers)
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
                with ctx.db.write() as conn:  # the ones not sent yet go back as they were
                    order_store.release(  # (one its own send released is not ours any more)
                        conn, [o.id for o in rest[position:]], claim_id=batch.claim_id
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


def _remember_stages(
    ctx: JobContext, school: str, changes: list[LeadUpdate], answers: list[Created]
) -> None:
    """The stages just written, with the lead's ``updated_at`` amoCRM answered, so that the
    webhook each one sets off is known for ours (W4)."""
    config = ctx.config.school(school)
    if ctx.platforms is None or config is None:
        return
    when = {a.id: a.updated_at for a in answers}
    remember_lead_stages(
        ctx.platforms.redis,
        school,
        [(c.id, c.status_id, when.get(c.id)) for c in changes if c.status_id is not None],
        status_sync_rules(config).echo_ttl_s,
    )


def _fail_order(
    conn: Any, school: str, stored: StoredOrder, claim_id: str, error_class: str, message: str
) -> None:
    """Mark the order failed and make that a ``failures`` row an admin sees and can replay
    (``schoolsync failures replay N`` sends the order again, with the config as it is then).
    Nothing happens if this push no longer holds the order."""
    if not order_store.mark_failed(
        conn, stored.id, message, claim_id=claim_id, version=stored.version
    ):
        return
    order = stored.order
    jobs.fail_as_job(
        conn,
        school=school,
        actor=RESEND_ACTOR,
        args={
            "school": school,
            "platform": order.platform,
            "account": order.account,
            "number": order.number,
        },
        key=f"crm-order:{school}:{order.platform}:{order.account}:{order.number}",
        error_class=error_class,
        error=message,
    )


def resend_order(ctx: JobContext, school: str, platform: str, account: str, number: str) -> None:
    """A failed order, replayed: pending again, and a push asked for."""
    with ctx.db.write() as conn:
        row = order_store.get(conn, school, platform, account, number)
        if row is None:
            raise UnmappableError(f"order {number} is not in the order mirror")
        order_store.requeue(conn, school, [number], platform=platform, account=account)
        refs = schedule_push(conn, school, [int(row["lane"])])
    ctx.queue.send(refs)


def _surely_not_applied(exc: BaseException) -> bool:
    """A 429 (amoCRM's or our own budget's) is refused before anything happens; a timeout, a
    5xx or an unexpected error may come after amoCRM applied the request."""
    if isinstance(exc, AuthError) and exc.status == 401:
        return True  # refused at the door
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


def _refresh_contact_index(
    ctx: JobContext, school: str, setup: AmoCrmSetup, keepalive: Callable[[], object]
) -> bool:
    """Mirror amoCRM's contacts (email and phone -> contact id); returns whether the mirror is
    complete. No contact is created before it is: the person could be in amoCRM already.

    The first time, every contact is read in id order, ``_CONTACT_PAGES_PER_LOOK`` pages per
    look; the page and the last id read are stored after each page, and a look resumes a page
    early, skipping what it has (contacts deleted meanwhile shift the pages back: nobody is
    skipped). After that, every 30 s at most, the contacts changed since the last look, the
    position stored after each page (a look cut short goes on from there).
    """
    name = f"amocrm:{setup.account}:contacts"
    with ctx.db.read() as conn:
        position = cursors.get(conn, school, name)  # changes up to here are mirrored
        checked = cursors.get(conn, school, f"{name}:checked")
        build = cursors.get_text(conn, school, f"{name}:build")  # "page:last id"
        build_started = cursors.get(conn, school, f"{name}:build-started")
    now = utcnow()
    if checked is not None and (now - checked).total_seconds() < _CONTACT_INDEX_EVERY_S:
        return True
    if position is None:
        return _build_contact_index(
            ctx, school, setup, keepalive, build=build, started=build_started or now
        )
    entries: list[tuple[str, str, str]] = []
    newest = position
    for seen, contact in enumerate(
        setup.client.iter_contacts(updated_since=position - timedelta(seconds=5)), start=1
    ):
        entries += _contact_entries(contact)
        if contact.updated_at is not None and contact.updated_at > newest:
            newest = contact.updated_at
        if seen % 250 == 0:
            keepalive()
            _save_index(ctx, school, setup, entries, {name: newest})
    _save_index(ctx, school, setup, entries, {name: newest, f"{name}:checked": now})
    return True


def _build_contact_index(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    keepalive: Callable[[], object],
    *,
    build: str | None,
    started: datetime,
) -> bool:
    name = f"amocrm:{setup.account}:contacts"
    page, last_id = (int(part) for part in (build or "1:0").split(":"))
    start = max(1, page - 1)
    entries: list[tuple[str, str, str]] = []
    pages = 0  # full pages read in this look
    fresh = 0  # of them, pages with contacts not read before (the look's budget)
    new_in_page = False
    while True:
        contacts = setup.client.iter_contacts(order_by="id", first_page=start)
        first = next(contacts, None)
        if first is not None and first.id > last_id and start > 1:
            start -= 1  # more were deleted than a page holds: step back further
            continue
        break
    for seen, contact in enumerate([] if first is None else chain([first], contacts), start=1):
        if contact.id > last_id:
            entries += _contact_entries(contact)
            last_id = contact.id
            new_in_page = True
        if seen % 250 == 0:
            pages += 1
            fresh += new_in_page
            new_in_page = False
            keepalive()
            _save_index(
                ctx,
                school,
                setup,
                entries,
                {f"{name}:build-started": started},
                texts={f"{name}:build": f"{start + pages}:{last_id}"},
            )
            if fresh >= _CONTACT_PAGES_PER_LOOK:
                return False  # the next look goes on from here
    _save_index(
        ctx,
        school,
        setup,
        entries,
        {name: started, f"{name}:checked": utcnow()},
        texts={f"{name}:build": f"{start + pages}:{last_id}"},
    )
    return True


def _contact_entries(contact: Contact) -> list[tuple[str, str, str]]:
    cid = str(contact.id)
    return [("email", e, cid) for e in map(normalize_email, contact.emails()) if e] + [
        ("phone", p, cid) for p in map(normalize_phone, contact.phones()) if p
    ]


def _save_index(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    entries: list[tuple[str, str, str]],
    times: dict[str, datetime],
    *,
    texts: dict[str, str] | None = None,
) -> None:
    with ctx.db.write() as conn:
        links.index_contacts(conn, school, "amocrm", setup.account, entries)
        for key, value in times.items():
            cursors.put(conn, school, key, value)
        for key, text in (texts or {}).items():
            cursors.put_text(conn, school, key, text)
    entries.clear()


def _request_id(result: ComplexResult) -> str:
    return result.request_id[0] if result.request_id else ""


def _field_value(lead: Lead, field_id: int) -> str | None:
    values = lead.field_values(field_id)
    return values[0] if values else None
