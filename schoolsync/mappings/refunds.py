"""W9: refunds as config and pure formatting. No I/O.

The school's ``rules.refunds`` block (every key optional)::

    rules:
      refunds:
        channel: refunds                  # «Возвраты»: the request and its outcome
        confirm_stage_id: 143             # an amoCRM stage: a lead moved there confirms
        close_access_status: cancelled    # the GetCourse deal status that ends the access
        comment: "Возврат по заказу {order}, запрос №{request}"   # the provider's refund note

Closing the access: GetCourse's import API (``/pl/api/deals``, the one write API there is) can
only *add* a user to groups (``user.group_name``; the official PHP SDK has ``setGroup`` and no
way to remove one), so removing the buyer from a group is not possible through it. What it can
do is set the deal's ``deal_status``; the access an offer gives belongs to its paid deal, so the
deal goes to ``cancelled`` («Отменен») by default. ``waiting_for_return`` («Ожидаем возврата»)
and ``false`` («Ложный») may be chosen instead; a status that means money or work in progress
may not.

The request message follows the handbook («Правила возвратов»: ФИО, Пакет, Телефон, Почта,
карта, Комментарий), with the card masked to its last four digits: staff never see more.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.core.config import School
from schoolsync.core.domain import Money, OrderStatus
from schoolsync.core.pii import mask_card
from schoolsync.mappings.notifications import render
from schoolsync.mappings.payments import SOURCE_LABELS

CLOSING_STATUSES = frozenset(
    {OrderStatus.CANCELLED, OrderStatus.WAITING_FOR_RETURN, OrderStatus.FALSE}
)
COMMENT_FIELDS = frozenset({"order", "request", "amount"})
MAX_PROVIDER_COMMENT = 250  # YooKassa's refund description


class RefundRules(BaseModel):
    """``rules.refunds`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = "refunds"
    confirm_stage_id: int | None = Field(default=None, gt=0)
    close_access_status: OrderStatus = OrderStatus.CANCELLED
    comment: str = Field(
        default="Возврат по заказу {order}, запрос №{request}", min_length=1, max_length=500
    )

    @field_validator("close_access_status")
    @classmethod
    def _closes(cls, value: OrderStatus) -> OrderStatus:
        if value not in CLOSING_STATUSES:
            allowed = ", ".join(sorted(s.value for s in CLOSING_STATUSES))
            raise ValueError(f"{value.value!r} does not end a course access; use one of {allowed}")
        return value

    @field_validator("comment")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"comment is not a valid template: {exc}") from None
        unknown = names - COMMENT_FIELDS
        if unknown:
            known = ", ".join("{" + n + "}" for n in sorted(COMMENT_FIELDS))
            raise ValueError(f"comment uses {sorted(unknown)}; it may use {known}")
        return value

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("channel",), self.channel)]

    def provider_comment(self, *, order: str, request: int, amount: Money) -> str:
        text = self.comment.format(order=order, request=request, amount=amount.display())
        return text[:MAX_PROVIDER_COMMENT]


def refund_rules(school: School) -> RefundRules:
    return RefundRules.model_validate(school.block("rules.refunds") or {})


def card_last4(card: str) -> str:
    """The last four digits of a card number as people type it (``0000 0000 0000 1234``,
    ``0000-0000-...``): the only part that is kept.

    Raises:
        ValueError: not 13 to 19 digits (the message never repeats what was typed).
    """
    digits = re.sub(r"[\s\-]", "", card)
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        raise ValueError("a card number is 13 to 19 digits (spaces and dashes allowed)")
    return digits[-4:]


def masked(last4: str | None) -> str | None:
    return mask_card(last4) if last4 else None


def phone_for_staff(phone: str | None) -> str | None:
    """``+79237956435`` -> ``79237956435``, as the handbook writes phones."""
    return phone.removeprefix("+") if phone else None


@dataclass(frozen=True)
class RequestFacts:
    """What the «Возвраты» chat is told about a request."""

    request_id: int
    order_number: str
    full_name: str | None
    package: str | None
    phone: str | None  # E.164
    email: str | None
    card_last4: str | None
    comment: str | None
    paid: list[tuple[Money, str]]  # (amount, ledger source) of each payment refunded


def request_message(facts: RequestFacts) -> str:
    return render(
        "refund_request",
        request=facts.request_id,
        order=facts.order_number,
        name=facts.full_name or "не указано",
        package=facts.package or "не указан",
        phone=phone_for_staff(facts.phone) or "не указан",
        email=facts.email or "не указана",
        card=masked(facts.card_last4) or "не указана",
        comment=facts.comment or "нет",
        paid=", ".join(f"{m.display()} ({source_label(s)})" for m, s in facts.paid),
    )


@dataclass(frozen=True)
class RefundLine:
    amount: Money
    source: str
    result: str  # done | manual | failed
    reason: str | None = None


def outcome_message(
    *,
    request_id: int,
    order_number: str,
    full_name: str | None,
    package: str | None,
    card_last4: str | None,
    lines: list[RefundLine],
    access: str | None,
    access_problem: str | None = None,
) -> str:
    """The outcome in the «Возвраты» chat: every payment's refund, and the access. ``access``
    is the status the deal was set to; ``None`` with ``access_problem`` when it was not
    closed; no line at all when the refund failed (nothing was closed)."""
    failed = any(line.result == "failed" for line in lines)
    return render(
        "refund_outcome",
        ok=not failed,
        request=request_id,
        order=order_number,
        name=full_name or "клиент",
        package=package,
        lines=[
            {
                "amount": line.amount.display(),
                "source": source_label(line.source),
                "text": _result_text(line, masked(card_last4)),
            }
            for line in lines
        ],
        access=access,
        access_problem=access_problem,
    )


def _result_text(line: RefundLine, card: str | None) -> str:
    if line.result == "done":
        return "возвращено"
    if line.result == "manual":
        return f"вернуть вручную на карту {card}" if card else "вернуть вручную (карта не указана)"
    return f"не прошёл: {line.reason or 'причина неизвестна'}"


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)
