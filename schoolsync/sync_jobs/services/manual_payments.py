"""W6: payments a person tells us about, into the ledger.

- A line a manager types in the finance group (``2500 Демин Саша``): parsed leniently; a line
  that cannot be read gets the bot's answer in the group saying what it could not read (the
  update itself stays in the inbox).
- A bank statement file (1C exchange format or a CSV export): every incoming line once (its id
  is derived from the statement's own data, so importing the same file again adds nothing).
- A single payment from the CLI or the admin API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

from schoolsync.connectors.bankstatements.models import StatementParse, StatementProblem
from schoolsync.connectors.telegram.models import Message
from schoolsync.connectors.telegram.text import escape_html
from schoolsync.core.config import School
from schoolsync.core.domain import Money, normalize_email, normalize_phone
from schoolsync.core.errors import ConfigError, MalformedInputError
from schoolsync.core.logging import get_logger
from schoolsync.core.pii import mask_text
from schoolsync.core.stores import inbox
from schoolsync.core.stores.payments import MANUAL, NewPayment
from schoolsync.mappings.manual_payments import Unreadable, parse_payment_message
from schoolsync.mappings.payments import payment_rules
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices
from schoolsync.sync_jobs.services.payments import FINANCE_GROUP, record, record_many

log = get_logger(__name__)


def from_finance_group(ctx: JobContext, school: School, message: Message) -> None:
    """A manager's line in the finance group: a payment, or the bot's question about it."""
    assert message.text is not None
    parsed = parse_payment_message(message.text)
    origin = f"telegram:{message.chat.id}:{message.message_id}"
    if isinstance(parsed, Unreadable):
        rules = payment_rules(school)
        html = (
            # quoted masked: a card number or phone typed in the line is not repeated
            f"Не поняла строку «{escape_html(mask_text(message.text.strip())[:200])}»: "
            f"{escape_html(parsed.reason_ru)}.\nЗапишите так: <code>2500 Демин Саша</code>"
        )
        with ctx.db.write() as conn:
            refs = queue_notices(
                conn,
                school,
                [Notice(key=f"unreadable:{origin}", kind="payment_unreadable", html=html,
                        channel=rules.channel)],
            )  # fmt: skip
        ctx.queue.send(refs)
        log.info("a line in the finance group was not understood; asked", school=school.id)
        return
    author = message.from_user.first_name if message.from_user is not None else None
    record(
        ctx,
        school.id,
        NewPayment(
            source=str(parsed.method or "card_transfer"),
            external_id=origin,
            amount=Money(amount=parsed.amount, currency=parsed.currency),
            kind=MANUAL,
            paid_at=message.date,
            payer_name=parsed.payer,
            payer_email=parsed.payer_email,
            payer_phone=parsed.payer_phone,
            reference=parsed.order_number,
            data={
                "origin": FINANCE_GROUP,
                "bank": parsed.bank,
                "comment": parsed.comment,
                "entered_by": author,
            },
        ),
    )


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    known: int = 0
    skipped: int = 0  # not incoming payments (our own outgoing transfers)
    problems: list[StatementProblem] = field(default_factory=list)


def import_statement(
    ctx: JobContext,
    school: str,
    path: Path,
    parse: Callable[[bytes], StatementParse],
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 200,
) -> ImportSummary:
    """Every incoming line of a statement file into the ledger, once."""
    parsed = parse(path.read_bytes())
    summary = ImportSummary(
        read=len(parsed.lines), skipped=parsed.skipped, problems=list(parsed.problems)
    )
    for start in range(0, len(parsed.lines), chunk):
        batch = parsed.lines[start : start + chunk]
        recorded = record_many(
            ctx,
            school,
            [
                NewPayment(
                    source="bank_transfer",
                    external_id=line.external_id,
                    amount=Money(amount=line.amount, currency=line.currency),
                    kind=MANUAL,
                    paid_at=datetime.combine(line.date, time(12, 0), tzinfo=UTC),
                    payer_name=line.payer_name,
                    reference=line.order_number,
                    data={
                        "origin": "statement",
                        "file": path.name,
                        "line": line.line_number,
                        "purpose": line.purpose,
                        "payer_inn": line.payer_inn,
                        "document": line.document_number,
                    },
                )
                for line in batch
            ],
        )
        summary.new += sum(1 for r in recorded if r.created)
        summary.known += sum(1 for r in recorded if not r.created)
        if progress is not None:
            progress(start + len(batch), len(parsed.lines))
    log.info(
        "statement imported",
        school=school,
        file=path.name,
        new=summary.new,
        known=summary.known,
        problems=len(summary.problems),
    )
    return summary


def add_manual(
    ctx: JobContext,
    school: str,
    *,
    key: str,
    amount: Decimal,
    currency: str,
    payer: str,
    method: str,
    order: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    comment: str | None = None,
    entered_by: str,
) -> int:
    """One payment a person reports (CLI, admin API); ``key`` makes a repeat a no-op."""
    recorded = record(
        ctx,
        school,
        NewPayment(
            source=method,
            external_id=key,
            amount=Money(amount=amount, currency=currency),
            kind=MANUAL,
            paid_at=datetime.now(UTC),
            payer_name=payer,
            payer_email=normalize_email(email),
            payer_phone=normalize_phone(phone),
            reference=order,
            data={"origin": "manual", "comment": comment, "entered_by": entered_by},
        ),
    )
    return recorded.id


def process_payment_api(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    """A payment posted to ``/admin/api/payments`` (stored in the inbox first)."""
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    try:
        data = json.loads(bytes(row["body"]))
        amount = Decimal(str(data["amount"]))
        payer, method = str(data["payer"]), str(data["method"])
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise MalformedInputError(f"stored API payment {inbox_id} is not readable: {exc}") from None
    add_manual(
        ctx,
        str(row["school"]),
        key=str(row["dedup_key"]),
        amount=amount,
        currency=str(data.get("currency") or "RUB"),
        payer=payer,
        method=method,
        order=data.get("order"),
        email=data.get("email"),
        phone=data.get("phone"),
        comment=data.get("comment"),
        entered_by="api",
    )
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)
