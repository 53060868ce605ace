"""W4: lead stage -> order status (order status -> lead stage is the CRM push), without echoes.

A lead's ``status`` webhook, in order:

1. our own write coming back (``echoes``: the push remembered the stage it wrote): nothing;
2. older than a change of the same lead seen already (out of order): nothing;
3. the lead re-read from amoCRM (a webhook has no signature); moved on since: nothing, the later
   webhook decides;
4. its order (by link, else by the order number field) and the decision
   (``mappings/status_sync.py``): nothing, the status written to GetCourse (remembered, so its
   callback is not pushed back), or, in a conflict where GetCourse is the source of truth, the
   lead put back by the push. A conflict leaves a note on the lead saying who won.

From the other side, ``split_platform_changes`` sorts the orders the intake receives from
GetCourse: the callback of our own write is no change (the mirror has it already) or stale (the
order moved on since: ignored); a change that undoes, within the window, a stage a manager set is
a conflict, settled by the source of truth (``settle_conflict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schoolsync.connectors.amocrm.models import Lead
from schoolsync.connectors.amocrm.webhooks import LeadEvent
from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import jobs, links
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.status_sync import (
    CRM,
    ECHO,
    PAID_STATUSES,
    Decision,
    StatusSyncRules,
    on_lead_stage,
    on_platform_status,
    status_of_stage,
    status_sync_rules,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup
from schoolsync.sync_jobs.services import crm_notes
from schoolsync.sync_jobs.services.crm_notes import LEAD, ORDER, note_once
from schoolsync.sync_jobs.services.crm_push import LANES, schedule_push
from schoolsync.sync_jobs.services.echoes import (
    is_lead_echo,
    newer_lead_change,
    take_order_echoes,
)
from schoolsync.sync_jobs.services.platform_orders import write_status

log = get_logger(__name__)

SETTLE_ACTOR = "status_sync_settle"


def on_lead_status(ctx: JobContext, school: School, setup: AmoCrmSetup, event: LeadEvent) -> None:
    """A lead's stage changed in amoCRM (``leads[status]``)."""
    rules = status_sync_rules(school)
    mapping = setup.mapping
    if not rules.enabled or mapping is None or event.action != "status" or event.status_id is None:
        return
    if event.pipeline_id is not None and event.pipeline_id != mapping.pipeline_id:
        return
    assert ctx.platforms is not None
    redis = ctx.platforms.redis
    if is_lead_echo(
        redis, school.id, event.id, event.status_id, event.last_modified, rules.echo_ttl_s
    ):
        log.info("our own stage change came back; nothing to do", lead=event.id)
        return
    if not newer_lead_change(redis, school.id, event.id, event.last_modified):
        log.info("an older change of the lead arrived late; ignored", lead=event.id)
        return
    lead = setup.client.get_lead(event.id, with_contacts=False)
    clobbered = False
    if lead.status_id != event.status_id or lead.pipeline_id != mapping.pipeline_id:
        clobbered = _overwritten_by_us(ctx, school.id, rules, event, lead)
        if not clobbered:
            log.info("lead moved on since the webhook; the later one decides", lead=event.id)
            return
    number = _order_number(ctx, school.id, setup, lead)
    if number is None:
        log.info("lead has no order of ours; nothing to sync", lead=event.id)
        return
    with ctx.db.read() as conn:
        state = order_store.status_states(conn, school.id, [number]).get(number)
    if state is None:
        log.info("lead's order is not in the mirror; nothing to sync", lead=event.id, order=number)
        return
    if clobbered:
        # the manager's move was overwritten by a push of ours that did not know of it, and
        # amoCRM is the source of truth: their stage goes to GetCourse and back onto the lead
        target = status_of_stage(event.status_id, mapping, rules)
        decision = (
            Decision("to_order", "a push of ours overwrote the manager's move", target, True)
            if target is not None
            and target in rules.crm_may_set
            and state.order.status not in PAID_STATUSES
            else Decision("none", "the overwritten stage stands for no status we may set")
        )
    else:
        decision = on_lead_stage(
            state.order,
            changed_at=state.changed_at,
            origin=state.origin,
            stage_id=event.status_id,
            old_stage_id=event.old_status_id,
            now=utcnow(),
            mapping=mapping,
            rules=rules,
        )
    log.info(
        "lead stage change",
        lead=event.id,
        order=number,
        action=decision.action,
        reason=decision.reason,
    )
    if decision.action == "to_order":
        assert decision.status is not None
        _to_platform(ctx, school, state.order, decision.status)
        if clobbered:
            _push_again(ctx, school.id, number)
    elif decision.action == "to_lead":
        _push_again(ctx, school.id, number)
    if decision.conflict:
        _conflict_note(ctx, school, rules, state.order, decision, lead)


def _overwritten_by_us(
    ctx: JobContext, school: str, rules: StatusSyncRules, event: LeadEvent, lead: Lead
) -> bool:
    """The lead moved on from the webhook's stage because a push of ours, sent without knowing
    of the manager's move (made before it), put it elsewhere; only amoCRM as the source of truth
    minds that."""
    if rules.source_of_truth.status != "amocrm" or lead.status_id is None:
        return False
    assert ctx.platforms is not None
    return (
        event.last_modified is not None
        and lead.updated_at is not None
        and event.last_modified <= lead.updated_at
        and is_lead_echo(
            ctx.platforms.redis,
            school,
            lead.id,
            lead.status_id,
            lead.updated_at,
            rules.echo_ttl_s,
        )
    )


def _push_again(ctx: JobContext, school: str, number: str) -> None:
    with ctx.db.write() as conn:
        order_store.requeue(conn, school, [number])
        refs = schedule_push(conn, school, range(LANES))
    ctx.queue.send(refs)


def _order_number(ctx: JobContext, school: str, setup: AmoCrmSetup, lead: Lead) -> str | None:
    with ctx.db.read() as conn:
        found = links.sources(conn, school, ORDER, LEAD, str(lead.id))
    if found:
        return found[-1]
    assert setup.mapping is not None
    values = lead.field_values(setup.mapping.fields.order_number)
    return values[0] if values else None


def _to_platform(ctx: JobContext, school: School, order: Order, status: OrderStatus) -> None:
    """GetCourse first (remembered as ours), then the mirror, which the push then leaves alone."""
    if order.platform != "getcourse":
        log.info("order is not a GetCourse order; its status is not written", order=order.number)
        return
    write_status(ctx, school, order, status)
    with ctx.db.write() as conn:
        order_store.upsert_many(
            conn, school.id, [order.model_copy(update={"status": status})], push=False, origin=CRM
        )
    log.info("order status set from the CRM", order=order.number, status=status.value)


def _conflict_note(
    ctx: JobContext,
    school: School,
    rules: StatusSyncRules,
    order: Order,
    decision: Decision,
    lead: Lead,
) -> None:
    if decision.action == "to_lead":
        winner = "GetCourse"
        fixed = f"этап сделки возвращён к статусу заказа «{order.status.russian}»"
    else:
        assert decision.status is not None
        winner = "amoCRM"
        fixed = f"статус заказа в GetCourse изменён на «{decision.status.russian}»"
    stamp = int(lead.updated_at.timestamp()) if lead.updated_at else 0
    note_once(
        ctx,
        school.id,
        key=f"status-conflict:{school.id}:{lead.id}:{stamp}",
        number=order.number,
        text=rules.conflict_note.format(number=order.number, winner=winner, fixed=fixed),
    )


@dataclass
class PlatformChanges:
    """The orders of a batch from GetCourse, sorted for storing."""

    push: list[Order] = field(default_factory=list)  # ordinary changes: stored and pushed
    echoes: list[Order] = field(default_factory=list)  # our writes' callbacks: pushed, marked
    quiet: list[Order] = field(default_factory=list)  # stored only: a conflict amoCRM wins
    # (number, winner, its status, when the conflict was seen)
    settle: list[tuple[str, str, str, str]] = field(default_factory=list)


def split_platform_changes(
    ctx: JobContext, conn: Any, school_id: str, orders: Sequence[Order]
) -> PlatformChanges:
    """Sort orders from GetCourse: the late callback of a write of ours is stored as an echo
    (dropped if the order was paid meanwhile); a change that undoes, within the window, a stage
    a manager set is a conflict, settled by the source of truth (a job: GetCourse's status
    written back to it, or the lead's stage written to GetCourse); the rest are ordinary
    changes."""
    school = ctx.config.school(school_id)
    if school is None or not orders or ctx.platforms is None:
        return PlatformChanges(push=list(orders))
    rules = status_sync_rules(school)
    if not rules.enabled:
        return PlatformChanges(push=list(orders))
    ours = take_order_echoes(
        ctx.platforms.redis, school_id, [(o.number, o.status.value) for o in orders]
    )
    states = order_store.status_states(conn, school_id, [o.number for o in orders])
    now = utcnow()
    winner = rules.source_of_truth.status
    split = PlatformChanges()
    for order in orders:
        state = states.get(order.number)
        kind = (
            on_platform_status(
                state.order.status,
                order.status,
                changed_at=state.changed_at,
                origin=state.origin,
                ours=(order.number, order.status.value) in ours,
                now=now,
                rules=rules,
            )
            if state is not None
            else "change"
        )
        if kind == "echo":
            split.echoes.append(order)
        elif kind == "stale":
            log.info("a status we wrote came back after the order was paid", order=order.number)
        elif kind == "conflict":
            (split.push if winner == "getcourse" else split.quiet).append(order)
            split.settle.append((order.number, winner, order.status.value, now.isoformat()))
        else:
            split.push.append(order)
    return split


def schedule_settles(
    conn: Any, school: str, settles: Sequence[tuple[str, str, str, str]]
) -> list[jobs.JobRef]:
    refs = []
    for number, winner, status, seen_at in settles:
        ref = jobs.add(
            conn,
            school=school,
            actor=SETTLE_ACTOR,
            args={
                "school": school,
                "number": number,
                "winner": winner,
                "status": status,
                "seen_at": seen_at,
            },
            dedup_key=f"status-settle:{school}:{number}:{seen_at}",
        )
        if ref is not None:
            refs.append(ref)
    return refs


def settle_conflict(
    ctx: JobContext, school_id: str, number: str, winner: str, status: str, seen_at: str = ""
) -> None:
    """GetCourse changed an order to ``status`` against a stage a manager set moments ago.

    ``getcourse`` wins: ``status`` is written back to it (our write of the manager's stage may
    have overwritten it) unless the order moved on since to a status that is not ours, and the
    push brings the lead along. ``amocrm`` wins: the lead's stage (re-read) is written to
    GetCourse. A note says so.
    """
    school = ctx.school(school_id)
    setup = ctx.platforms.of(school_id).amocrm if ctx.platforms else None
    if setup is None or setup.mapping is None:
        return
    rules = status_sync_rules(school)
    with ctx.db.read() as conn:
        order = order_store.find_order(conn, school_id, number)
    if order is None:
        return
    if winner == "getcourse":
        wanted = OrderStatus(status)
        with ctx.db.read() as conn:
            state = order_store.status_states(conn, school_id, [number]).get(number)
        if state is not None and state.order.status != wanted and state.origin != ECHO:
            log.info("order changed again since the conflict; that change decides", order=number)
            return
        # GetCourse may hold our write of the manager's stage, made after its own change (its
        # callback, with the status the mirror has, changes nothing)
        write_status(ctx, school, order, wanted)
        fixed = f"статус заказа «{wanted.russian}» оставлен, этап сделки приведён к нему"
        key = f"status-settle:{school_id}:{number}:{seen_at}"
    else:
        lead_id = crm_notes.lead_of(ctx, school_id, number)
        if lead_id is None:
            return
        lead = setup.client.get_lead(lead_id, with_contacts=False)
        target = (
            status_of_stage(lead.status_id, setup.mapping, rules)
            if lead.status_id is not None
            else None
        )
        if (
            target is None
            or order.status in PAID_STATUSES
            or setup.mapping.stages.get(order.status) == lead.status_id
        ):
            return  # the lead stands for no status, money decided, or the two agree again
        _to_platform(ctx, school, order, target)
        fixed = f"статус заказа в GetCourse возвращён на «{target.russian}»"
        key = f"status-settle:{school_id}:{number}:{seen_at}"
    note_once(
        ctx,
        school_id,
        key=key,
        number=number,
        text=rules.conflict_note.format(
            number=number, winner="GetCourse" if winner == "getcourse" else "amoCRM", fixed=fixed
        ),
    )
