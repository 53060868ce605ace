"""W7: every payment in the ledger paired with its order, hourly and on demand, acting only on
what is certain and the config allows.

A run reads the school's recent succeeded payments (not those a person dismissed as not ours)
and mirrored orders, asks the engine (``reconciliation``), and:

- a ``matched`` payment the ledger had not matched (or had flagged on the same order) is
  matched (``reconcile:<rule>``, the engine's explanation as the note) and settled as any payment
  (GetCourse told where it did not see it, the lead won): the settle job's effects are each done
  once;
- a ``duplicate_manual`` payment (a manual transfer next to an automatic payment for the same
  order, a day apart: the handbook's rule) is taken out of the ledger's money
  (``match_state = duplicate``), returned in GetCourse through the import API (GetCourse has no
  call that deletes a payment) and named in ``finance_income``, once;
- everything else (and the above where ``act_on`` leaves them out) waits in the queue for a
  person: ``schoolsync reconcile queue`` / ``resolve``.

The findings are kept (``reconcile_items``); the day's digest goes to the channel once, after
``digest_at``; with ``report`` set, one row per finding per day goes to the sheet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis.exceptions import LockError

from schoolsync.connectors.getcourse.models import DealImport, ImportDeal, ImportSystem, ImportUser
from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.db.tables import payments as payments_table
from schoolsync.core.errors import NotFoundError, UnmappableError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects, jobs
from schoolsync.core.stores import orders as order_store
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import reconcile as findings_store
from schoolsync.core.stores.reconcile import ACTED, OPEN, Finding
from schoolsync.mappings.payments import payment_rules
from schoolsync.mappings.reconciliation import (
    PERSON,
    ReconciliationConfig,
    digest_lines,
    kind_name,
    needs_nothing,
    order_in,
    payment_in,
    reconciliation_config,
    subject,
)
from schoolsync.reconciliation import Verdict, VerdictKind, reconcile
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices
from schoolsync.sync_jobs.services.payments import settle_job

log = get_logger(__name__)

RECONCILE_ACTOR = "reconcile_school"


@dataclass
class RunSummary:
    busy: bool = False  # another run of the school was under way: this one did nothing
    payments: int = 0
    orders: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    acted: int = 0
    waiting: int = 0
    new: int = 0
    gone: int = 0
    digest_posted: bool = False


def run_reconciliation(
    ctx: JobContext, school_id: str, *, now: datetime | None = None
) -> RunSummary:
    """One run for one school (idempotent: a second run at once finds and does nothing new).
    One run at a time per school: a run that finds another under way returns ``busy``."""
    lock = (
        ctx.platforms.redis.lock(f"schoolsync:lock:reconcile:{school_id}", timeout=900)
        if ctx.platforms is not None
        else None
    )
    if lock is not None and not lock.acquire(blocking=False):
        log.info("a reconciliation run is under way; this one is skipped", school=school_id)
        return RunSummary(busy=True)
    try:
        return _run(ctx, school_id, now or utcnow())
    finally:
        if lock is not None:
            with contextlib.suppress(LockError):
                lock.release()


def _run(ctx: JobContext, school_id: str, now: datetime) -> RunSummary:
    school = ctx.school(school_id)
    config = reconciliation_config(school)
    since = now - timedelta(days=config.lookback_days)
    with ctx.db.read() as conn:
        rows = list(
            conn.execute(
                sa.select(payments_table).where(
                    payments_table.c.school == school_id,
                    payments_table.c.status == ledger.SUCCEEDED,
                    # a person's "not ours" and a removed double count as no money
                    payments_table.c.match_state.notin_((ledger.DISMISSED, ledger.DUPLICATE)),
                    sa.func.coalesce(payments_table.c.paid_at, payments_table.c.created_at)
                    >= since,
                )
            ).mappings()
        )
        orders = order_store.orders_where(
            conn,
            school_id,
            orders_table.c.created_at
            >= since - timedelta(days=max(config.window_days, config.reference_window_days)),
        )
    payments_in = [p for p in (payment_in(row) for row in rows) if p is not None]
    orders_in = [o for o in (order_in(x, unpaid_orders=config.unpaid_orders) for x in orders) if o]
    result = reconcile(orders_in, payments_in, config, now)
    by_id = {str(row["id"]): row for row in rows}
    matched_to = {
        p: (str(row["order_number"]) if row["order_number"] else None)
        for p, row in by_id.items()
        if row["match_state"] == ledger.MATCHED
    }
    summary = RunSummary(
        payments=len(payments_in),
        orders=len(orders_in),
        verdicts={k.value: n for k, n in sorted(result.counts().items())},
    )
    findings: list[Finding] = []
    # the doubles first: a flagged automatic payment is promoted once its double is gone
    # what a person decided stands: their payments and the orders those pay are not re-judged
    by_person = {p for p, row in by_id.items() if row["match_rule"] == PERSON}
    person_orders = {str(by_id[p]["order_number"]) for p in by_person}
    ordered = sorted(
        (
            v
            for v in result.verdicts
            if not needs_nothing(v, matched_to)
            and not (v.payment_ids and set(v.payment_ids) <= by_person)
            and not (not v.payment_ids and set(v.order_ids) & person_orders)
        ),
        key=lambda v: v.kind != VerdictKind.DUPLICATE_MANUAL,
    )
    for verdict in ordered:
        outcome, why = "open", ""
        if verdict.kind in config.act_on:
            why = _cannot_act(verdict, by_id)
            if not why:
                try:
                    outcome, why = _act(ctx, school, config, verdict)
                except Exception as exc:  # one action that fails must not stop the others
                    why = f"could not act: {getattr(exc, 'message', type(exc).__name__)}"
                    log.error(
                        "reconciliation action failed",
                        school=school_id,
                        payments=list(verdict.payment_ids),
                        error=why,
                    )
        if outcome == "done":
            summary.acted += 1
        findings.append(
            Finding(
                subject=subject(verdict),
                kind=verdict.kind.value,
                rule=verdict.rule,
                score=verdict.score,
                explanation=f"{verdict.explanation} ({why})" if why else verdict.explanation,
                payment_ids=tuple(int(p) for p in verdict.payment_ids),
                order_ids=verdict.order_ids,
                candidates=verdict.candidates,
                status=ACTED if outcome in ("done", "already") else OPEN,
            )
        )
    with ctx.db.write() as conn:
        counts = findings_store.record_run(conn, school_id, findings)
    summary.new, summary.gone = counts["new"], counts["gone"]
    summary.waiting = sum(1 for f in findings if f.status == OPEN)
    summary.digest_posted = _digest(ctx, school, config, now, summary)
    if config.report is not None:
        _report_rows(ctx, school, config, now, findings)
    log.info(
        "reconciliation run",
        school=school_id,
        payments=summary.payments,
        orders=summary.orders,
        acted=summary.acted,
        waiting=summary.waiting,
    )
    return summary


def _cannot_act(verdict: Verdict, by_id: Mapping[str, Any]) -> str:
    """Why the service must leave ``verdict`` to a person though the config lets it act ('' if
    it may act): one order only, and no payment already on another order or placed by a
    person."""
    if len(verdict.order_ids) != 1:
        return "several orders: a person confirms"
    if verdict.kind == VerdictKind.DUPLICATE_MANUAL and verdict.rule == "name":
        return "only a name ties them: a person confirms before a payment is taken back"
    order = verdict.order_ids[0]
    for payment_id in verdict.payment_ids:
        row = by_id.get(payment_id)
        if row is None:
            return "the payment is no longer in the ledger"
        if row["order_number"] and str(row["order_number"]) != order:
            return f"the ledger has payment {payment_id} on order {row['order_number']}"
        if row["match_rule"] == PERSON and verdict.kind != VerdictKind.MATCHED:
            return f"a person placed payment {payment_id}"
    return ""


# --- acting on what is certain ---------------------------------------------------------------


def _act(
    ctx: JobContext, school: School, config: ReconciliationConfig, verdict: Verdict
) -> tuple[str, str]:
    """Do what ``verdict`` calls for, once: (``done`` now | ``already`` before | ``open``, why)."""
    order_number = verdict.order_ids[0]
    if verdict.kind == VerdictKind.MATCHED:
        return _match(ctx, school.id, verdict, order_number)
    if verdict.kind == VerdictKind.DUPLICATE_MANUAL:
        outcomes = [
            _remove_manual(ctx, school, config, int(p), order_number, verdict)
            for p in verdict.payment_ids
        ]
        return ("done", "") if "done" in outcomes else ("already", "")
    return "open", ""


def _match(ctx: JobContext, school: str, verdict: Verdict, order_number: str) -> tuple[str, str]:
    refs: list[jobs.JobRef] = []
    done = already = 0
    why = ""
    with ctx.db.write() as conn:
        others = [
            r
            for r in ledger.paid_for_order(conn, school, order_number, other_than=0)
            if r["match_state"] == ledger.MATCHED and str(r["id"]) not in verdict.payment_ids
        ]
        for payment_id in verdict.payment_ids:
            row = ledger.get(conn, int(payment_id))
            if row is None:
                continue
            if row["match_state"] == ledger.MATCHED and row["order_number"] == order_number:
                already += 1
                continue
            if row["match_state"] == ledger.FLAGGED:
                # flagged by the direct rules (the order looked paid, or another amount); it
                # pays the order now only if no other payment stands on it (its double gone)
                if others:
                    why = f"order {order_number} has payment {others[0]['id']} already"
                    continue
            elif row["match_state"] != ledger.UNMATCHED:
                continue
            ledger.set_match(
                conn,
                int(payment_id),
                order_number=order_number,
                state=ledger.MATCHED,
                rule=f"reconcile:{verdict.rule}",
                note=verdict.explanation,
            )
            refs += settle_job(conn, school, int(payment_id), again="reconciled")
            done += 1
    ctx.queue.send(refs)
    if done:
        log.info("payment matched by reconciliation", school=school, order=order_number)
        return "done", ""
    if already == len(verdict.payment_ids):
        return "already", ""
    return "open", why or "the ledger holds it otherwise"


def _remove_manual(
    ctx: JobContext,
    school: School,
    config: ReconciliationConfig,
    payment_id: int,
    order_number: str,
    verdict: Verdict,
) -> str:
    key = f"reconcile:duplicate-manual:{school.id}:{payment_id}"
    with ctx.db.read() as conn:
        if effects.exists(conn, key):
            return "already"
        row = ledger.get(conn, payment_id)
        told_getcourse = effects.exists(conn, f"getcourse:paid:{school.id}:{payment_id}")
        order = order_store.find_order(conn, school.id, order_number)
    if row is None or order is None:
        raise NotFoundError(f"payment {payment_id} or order {order_number} is gone")
    if told_getcourse:
        _return_in_getcourse(ctx, school, row, order_number, order.customer.email)
    amount = ledger.amount_of(row)
    html = (
        f"♻️ Двойная оплата заказа №{order_number}: автоматический платёж прошёл, ручной "
        f"{amount.display()} ({row['source']}) снят"
        + (" в GetCourse" if told_getcourse else "")
        + "."
    )
    with ctx.db.write() as conn:
        ledger.set_match(
            conn,
            payment_id,
            order_number=order_number,
            state=ledger.DUPLICATE,
            rule=f"reconcile:{verdict.rule}",
            note=verdict.explanation,
        )
        refs = queue_notices(
            conn,
            school,
            [Notice(key=key, kind="reconcile", html=html, channel=config.channel)],
        )
        effects.record(
            conn,
            school=school.id,
            key=key,
            job_id=None,
            detail={"order": order_number, "getcourse": told_getcourse},
        )
    ctx.queue.send(refs)
    log.info("manual double removed", school=school.id, payment=payment_id, order=order_number)
    return "done"


def _return_in_getcourse(
    ctx: JobContext, school: School, row: Any, order_number: str, email: str | None
) -> None:
    setup = ctx.platforms.of(school.id).getcourse if ctx.platforms else None
    if setup is None:
        return
    if not email:
        raise UnmappableError(f"order {order_number} has no buyer email; GetCourse needs one")
    types = payment_rules(school).getcourse_payment_types
    setup.client.add_deal(
        DealImport(
            user=ImportUser(email=email),
            system=ImportSystem(refresh_if_exists=True),
            deal=ImportDeal(
                deal_number=order_number,
                payment_type=types.get(str(row["source"]), "CARD"),
                payment_status="returned",
                deal_comment="schoolsync: ручной платёж снят, заказ оплачен автоматически",
            ),
        )
    )


# --- what people see ---------------------------------------------------------------------------


def _digest(
    ctx: JobContext,
    school: School,
    config: ReconciliationConfig,
    now: datetime,
    summary: RunSummary,
) -> bool:
    """The day's digest, once a day, on the first run after ``digest_at`` (school time)."""
    local = now.astimezone(school.tz)
    if (
        summary.payments == 0  # nothing to reconcile yet (a new school): nothing to say
        or local.time() < config.digest_at
        or config.channel not in school.channels
    ):
        return False
    day = local.date()
    start = datetime.combine(day, datetime.min.time(), school.tz) - timedelta(days=1)
    with ctx.db.read() as conn:
        counts = findings_store.counts_by_kind(conn, school.id, start)
        waiting = len(findings_store.listing(conn, school.id))
    by_kind: dict[str, int] = {}
    for (kind, status), n in counts.items():
        if status != findings_store.GONE:
            by_kind[kind] = by_kind.get(kind, 0) + n
    lines = digest_lines(sorted(by_kind.items()), waiting)
    html = f"<b>Сверка платежей {day:%d.%m}</b> ({summary.payments} платежей)\n" + "\n".join(lines)
    with ctx.db.write() as conn:
        refs = queue_notices(
            conn,
            school,
            [
                Notice(
                    key=f"reconcile-digest:{school.id}:{day.isoformat()}",
                    kind="reconcile",
                    html=html,
                    channel=config.channel,
                )
            ],
        )
    ctx.queue.send(refs)
    return bool(refs)


def _report_rows(
    ctx: JobContext,
    school: School,
    config: ReconciliationConfig,
    now: datetime,
    findings: list[Finding],
) -> None:
    """One row per finding per day in the report sheet (a rerun adds none)."""
    setup = ctx.platforms.of(school.id).sheets if ctx.platforms else None
    report = config.report
    if setup is None or report is None or not findings:
        return
    day = now.astimezone(school.tz).date().isoformat()
    rows = [
        [
            f"{day} {f.subject}",
            day,
            kind_name(f.kind),
            ", ".join(str(p) for p in f.payment_ids),
            ", ".join(f.order_ids or f.candidates),
            f.rule,
            f"{f.score:.2f}",
            f.explanation,
            f.status,
        ]
        for f in findings
    ]
    setup.client.append_unique(report.spreadsheet, report.tab, rows)


# --- a person decides --------------------------------------------------------------------------


def resolve(
    ctx: JobContext,
    school_id: str,
    item_id: int,
    *,
    order_number: str | None,
    not_ours: bool,
    who: str,
    comment: str = "",
) -> str:
    """Settle a waiting finding: its payment(s) pay ``order_number`` (matched by a person and
    settled as any payment), or are not ours (left out of every later run). Returns a line for
    the person."""
    if (order_number is None) == (not not_ours):
        raise ValueError("choose an order, or say the payment is not ours")
    with ctx.db.read() as conn:
        item = findings_store.get(conn, item_id)
        order = order_store.find_order(conn, school_id, order_number) if order_number else None
    if item is None or item["school"] != school_id:
        raise NotFoundError(f"reconciliation item {item_id} does not exist")
    if item["status"] != OPEN:
        raise NotFoundError(f"reconciliation item {item_id} is {item['status']}, not waiting")
    if order_number is not None and order is None:
        raise NotFoundError(f"order {order_number} is not in the order mirror")
    payment_ids = [int(p) for p in item["payment_ids"]]
    if not payment_ids:
        raise NotFoundError(
            f"item {item_id} is an order without money ({item['kind']}): check it in GetCourse"
        )
    refs: list[jobs.JobRef] = []
    with ctx.db.write() as conn:
        if not findings_store.settle(
            conn,
            item_id,
            status=findings_store.DISMISSED if not_ours else findings_store.RESOLVED,
            who=who,
            choice={"order": order_number, "not_ours": not_ours, "comment": comment},
        ):
            raise NotFoundError(f"reconciliation item {item_id} was settled meanwhile")
        for payment_id in payment_ids:
            if not_ours:
                conn.execute(
                    sa.update(payments_table)
                    .where(payments_table.c.id == payment_id)
                    .values(
                        match_state=ledger.DISMISSED,
                        match_note=f"not ours ({who}) {comment}".strip(),
                    )
                )
                continue
            assert order_number is not None
            ledger.set_match(
                conn,
                payment_id,
                order_number=order_number,
                state=ledger.MATCHED,
                rule=PERSON,
                note=f"{who}: {comment}".strip(": "),
            )
            refs += settle_job(conn, school_id, payment_id, again=f"person:{item_id}")
    ctx.queue.send(refs)
    log.info("reconciliation item settled", school=school_id, item=item_id, who=who)
    if not_ours:
        return f"item {item_id}: payment(s) {payment_ids} marked not ours"
    return f"item {item_id}: payment(s) {payment_ids} now pay order {order_number}"
