"""W12: the daily and weekly reports, to the school's spreadsheet and channel.

A report reads the store for its period (school time, ``mappings.reports.Period``), computes the
metrics (``reconciliation.metrics``, pure) and:

- writes one row to its tab (``Ежедневный`` / ``Еженедельный``) keyed by the period
  (``2026-11-22`` / ``2026-W47``) with ``SheetsClient.upsert_row``: a rerun updates the row,
  never adds a second;
- queues the five-line digest to the configured channel under the outbox key
  ``report-digest:<school>:<period>``: stored once, delivered once;
- for a week, sends the chart (``sendPhoto``) once, under the effects key
  ``telegram:photo:report:<school>:<week>`` (recorded after Telegram answered: a crash in
  between may post it twice; the Bot API has no idempotency).

``reports_tick`` (scheduled) runs what is due once (effects key ``report:<school>:<period>``);
``run_report`` (the CLI, any past period) runs one period whenever asked, with the same output.

What the store gives: orders from the order mirror (see ``reconciliation.metrics`` for how the
mirror is read), money from the payments ledger (``succeeded`` and later ``refunded`` payments
by their payment time; doubles removed and payments dismissed as not ours do not count), refunds
that are ``done`` by the time they were done, satisfaction from the feedback table (0-10 scores
for NPS, 1-5 for CSAT, the configured questions for CSI and FCR from the score and the survey
answers kept in ``data.answers``). Sessions: no source provides them yet ("no data").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.config import School
from schoolsync.core.db.tables import feedback as feedback_table
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.core.db.tables import payments as payments_table
from schoolsync.core.db.tables import refunds as refunds_table
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects
from schoolsync.core.stores import payments as ledger
from schoolsync.core.stores import refunds as refund_store
from schoolsync.mappings.notifications import channel_target
from schoolsync.mappings.reports import (
    HEADER,
    Period,
    ReportData,
    ReportRules,
    digest,
    due_periods,
    report_rules,
    sheet_row,
)
from schoolsync.reconciliation import metrics
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices
from schoolsync.sync_jobs.services.report_chart import weekly_chart

log = get_logger(__name__)

REPORTS_ACTOR = "reports_tick"
PAID_STATUSES = ("payed",)


@dataclass
class ReportOutcome:
    key: str
    row: list[str]
    digest: str
    sheet_row: int | None = None  # the sheet's row number written (None: no sheet)
    digest_queued: bool = False  # False also when it was queued before (once per period)
    photo_sent: bool = False


def reports_tick(ctx: JobContext, school_id: str, *, now: datetime | None = None) -> list[str]:
    """Run each report that is due and was not run yet; returns their keys."""
    now = now or utcnow()
    school = ctx.school(school_id)
    rules = report_rules(school)
    done: list[str] = []
    for period in due_periods(rules, now, school.tz):
        key = f"report:{school_id}:{period.kind}:{period.key}"
        with ctx.db.read() as conn:
            if effects.exists(conn, key):
                continue
        run_report(ctx, school_id, period, now=now)
        with ctx.db.write() as conn:
            effects.record(conn, school=school_id, key=key, job_id=None, detail={})
        done.append(period.key)
    return done


def run_report(
    ctx: JobContext, school_id: str, period: Period, *, now: datetime | None = None
) -> ReportOutcome:
    """Compute ``period``'s report and write it: the sheet row (updated if there), the digest
    (once), the weekly chart (once). Safe to run any number of times."""
    now = now or utcnow()
    school = ctx.school(school_id)
    rules = report_rules(school)
    data = collect(ctx, school, rules, period)
    outcome = ReportOutcome(key=period.key, row=sheet_row(data), digest=digest(data))
    outcome.sheet_row = _write_row(ctx, school, rules, period, outcome.row)
    if rules.channel in school.channels:
        with ctx.db.write() as conn:
            refs = queue_notices(
                conn,
                school,
                [
                    Notice(
                        key=f"report-digest:{school.id}:{period.kind}:{period.key}",
                        kind="report",
                        html=outcome.digest,
                        channel=rules.channel,
                    )
                ],
                now=now,
            )
        ctx.queue.send(refs)
        outcome.digest_queued = bool(refs)
        if period.kind == "weekly" and rules.chart:
            outcome.photo_sent = _send_chart(ctx, school, rules, data)
    else:
        log.warning("report channel is not configured", school=school.id, channel=rules.channel)
    log.info("report written", school=school.id, period=period.key, row=outcome.sheet_row)
    return outcome


def _write_row(
    ctx: JobContext, school: School, rules: ReportRules, period: Period, row: list[str]
) -> int | None:
    setup = ctx.platforms.of(school.id).sheets if ctx.platforms else None
    if rules.spreadsheet is None:
        return None
    if setup is None:
        raise ConfigError(
            f"school {school.id!r} has rules.reports.spreadsheet but no Sheets account"
        )
    tab = rules.tab(period.kind)
    setup.client.upsert_row(rules.spreadsheet, tab, HEADER[0], HEADER)  # once, first in a new tab
    result = setup.client.upsert_row(rules.spreadsheet, tab, period.key, row)
    return result.row


def _send_chart(ctx: JobContext, school: School, rules: ReportRules, data: ReportData) -> bool:
    setup = ctx.platforms.of(school.id).telegram if ctx.platforms else None
    if setup is None:
        return False
    key = f"telegram:photo:report:{school.id}:{data.period.key}"
    with ctx.db.read() as conn:
        if effects.exists(conn, key):
            return False
    target = channel_target(school, rules.channel)
    title = f"Неделя {data.period.key}"
    png = weekly_chart(title, data.daily)
    sent = setup.client.send_photo(
        target.chat_id,
        png,
        caption=f"{title}: заказы, оплаты и конверсия по дням",
        thread_id=target.topic,
    )
    with ctx.db.write() as conn:
        effects.record(
            conn, school=school.id, key=key, job_id=None, detail={"message_id": sent.message_id}
        )
    return True


# --- reading the store -------------------------------------------------------------------------


def collect(ctx: JobContext, school: School, rules: ReportRules, period: Period) -> ReportData:
    """Everything the report says about ``period``, from the store."""
    # in UTC: SQLite compares the stored UTC text, not instants (a Moscow 00:00 would read as
    # 00:00 UTC and shift the day by three hours)
    start, end = as_utc(period.start), as_utc(period.end)
    with ctx.db.read() as conn:
        order_rows = list(
            conn.execute(
                sa.select(
                    orders_table.c.number,
                    orders_table.c.status,
                    orders_table.c.data,
                    orders_table.c.created_at,
                    orders_table.c.status_changed_at,
                    orders_table.c.status_origin,
                ).where(
                    orders_table.c.school == school.id,
                    orders_table.c.created_at >= start,
                    orders_table.c.created_at < end,
                )
            ).mappings()
        )
        paid_numbers = _paid_numbers(conn, school.id, [str(r["number"]) for r in order_rows])
        paid_at = sa.func.coalesce(payments_table.c.paid_at, payments_table.c.created_at)
        payment_rows = conn.execute(
            sa.select(
                payments_table.c.source, payments_table.c.amount_minor, payments_table.c.currency
            ).where(
                payments_table.c.school == school.id,
                payments_table.c.status.in_((ledger.SUCCEEDED, ledger.REFUNDED)),
                payments_table.c.match_state.notin_((ledger.DUPLICATE, ledger.DISMISSED)),
                paid_at >= start,
                paid_at < end,
            )
        ).all()
        refund_rows = conn.execute(
            sa.select(
                refunds_table.c.source, refunds_table.c.amount_minor, refunds_table.c.currency
            ).where(
                refunds_table.c.school == school.id,
                refunds_table.c.status == refund_store.DONE,
                refunds_table.c.updated_at >= start,
                refunds_table.c.updated_at < end,
            )
        ).all()
        feedback_rows = list(
            conn.execute(
                sa.select(
                    feedback_table.c.score, feedback_table.c.scale, feedback_table.c.data
                ).where(
                    feedback_table.c.school == school.id,
                    feedback_table.c.created_at >= start,
                    feedback_table.c.created_at < end,
                )
            ).mappings()
        )
    facts = [_order_fact(row, paid_numbers) for row in order_rows]
    days = [day.isoformat() for day in period.days]
    by_day = metrics.orders_by_day(facts, days, school.tz)
    answers = [_answers(row) for row in feedback_rows]
    return ReportData(
        period=period,
        orders=metrics.order_metrics(facts),
        revenue=metrics.money_by_source(
            metrics.MoneyFact(str(s), int(a), str(c)) for s, a, c in payment_rows
        ),
        refunds=metrics.money_by_currency(
            metrics.MoneyFact(str(s), int(a), str(c)) for s, a, c in refund_rows
        ),
        sessions=metrics.session_metrics(None),
        nps=metrics.nps(_scores(feedback_rows, 10)),
        csat=metrics.csat(_scores(feedback_rows, 5)),
        csi=metrics.csi(answers, rules.questions()),
        fcr=(
            metrics.fcr(a.get(rules.fcr_question) for a in answers)
            if rules.fcr_question
            else metrics.NO_DATA
        ),
        daily=list(zip(days, by_day, strict=True)),
    )


def _paid_numbers(conn: Any, school: str, numbers: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(numbers), 500):
        found.update(
            str(n)
            for n in conn.execute(
                sa.select(payments_table.c.order_number).where(
                    payments_table.c.school == school,
                    payments_table.c.order_number.in_(numbers[start : start + 500]),
                    payments_table.c.status == ledger.SUCCEEDED,
                    payments_table.c.match_state.in_((ledger.MATCHED, ledger.FLAGGED)),
                )
            ).scalars()
        )
    return found


def _order_fact(row: Any, paid_numbers: set[str]) -> metrics.OrderFact:
    data = row["data"] or {}
    number = str(row["number"])
    changed = row["status_changed_at"]
    return metrics.OrderFact(
        number=number,
        created_at=as_utc(row["created_at"]),
        status=str(row["status"]),
        manager=data.get("manager_email") or None,
        status_changed_at=as_utc(changed) if changed is not None else None,
        status_changed_after_arrival=row["status_origin"] is not None,
        paid=row["status"] in PAID_STATUSES or number in paid_numbers,
    )


def _scores(rows: list[Any], scale: int) -> list[int]:
    return [int(r["score"]) for r in rows if r["score"] is not None and (r["scale"] or 10) == scale]


def _answers(row: Any) -> dict[str, Any]:
    """A feedback row's answers by question: ``data.answers`` (survey columns), and its own
    score as ``score`` (0-10) or ``score5`` (1-5)."""
    data = row["data"] or {}
    found: dict[str, Any] = {}
    for name, value in (data.get("answers") or {}).items():
        found[str(name)] = _number(value) if _number(value) is not None else value
    if row["score"] is not None:
        scale = int(row["scale"] or 10)
        found["score" if scale == 10 else f"score{scale}"] = float(row["score"])
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(str(value).replace(",", "."))
    except ValueError:
        return None
