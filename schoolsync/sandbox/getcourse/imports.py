"""The import API: `action=add&key=…&params=base64(JSON)` for users and deals (orders).

The answer has two levels, as the docs describe: the top-level `success` says whether the call
was understood, `result.success`/`result.error` whether the action worked. Everything is
validated before anything is written, so a refused import changes nothing.
`system.refresh_if_exists=1` updates an existing user, and an existing order with the same
`deal_number`; without it a repeated order number is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schoolsync.sandbox.getcourse.config import SandboxOffer
from schoolsync.sandbox.getcourse.model import (
    DEAL_STATUSES,
    MOSCOW,
    PAYMENT_STATUSES,
    Account,
    Deal,
    User,
    now_moscow,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"1", "true", "yes", "y", "on", "да"}
_MOMENT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_USER_TEXT_FIELDS = ("phone", "first_name", "last_name", "city", "country")
_UTM = ("utm_source", "utm_medium", "utm_content", "utm_campaign", "utm_group", "utm_term")


class Refused(ValueError):
    """The action cannot be done; the message says why, in GetCourse's language."""


@dataclass
class Outcome:
    result: dict[str, Any]
    callbacks: list[tuple[Deal, int]] = field(default_factory=list)


def decode_params(raw: str | None) -> dict[str, Any]:
    """`params` as the docs define it: standard base64 of a JSON object."""
    if not raw:
        raise Refused("Не переданы параметры (params)")
    try:
        decoded = base64.b64decode(raw, validate=True)
        params = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise Refused("Параметры (params) должны быть JSON в кодировке base64") from exc
    if not isinstance(params, dict):
        raise Refused("Параметры (params) должны быть JSON-объектом")
    return params


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in _TRUE if value is not None else False


def parse_money(raw: Any, what: str) -> Decimal | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise Refused(f"Неверное значение {what}: {raw}")
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise Refused(f"Неверное значение {what}: {raw}") from exc
    if not amount.is_finite() or amount < 0:
        raise Refused(f"Неверное значение {what}: {raw}")
    return amount.quantize(Decimal("0.01"))


def parse_moment(raw: Any, what: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    for fmt in _MOMENT_FORMATS:
        try:
            return datetime.strptime(str(raw).strip(), fmt).replace(tzinfo=MOSCOW)
        except ValueError:
            continue
    raise Refused(f"Неверная дата {what}: {raw}")


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name) or {}
    if not isinstance(value, dict):
        raise Refused(f"Раздел {name} должен быть объектом")
    return value


def _checked_email(user: dict[str, Any]) -> str:
    email = str(user.get("email") or "").strip()
    if not email:
        raise Refused("Не указан email пользователя")
    if not _EMAIL.match(email):
        raise Refused(f"Неверный email: {email}")
    return email


def _upsert_user(account: Account, params: dict[str, Any], refresh: bool) -> tuple[User, str]:
    block = _section(params, "user")
    email = _checked_email(block)
    session = _section(params, "session")
    values = {name: str(block[name]).strip() for name in _USER_TEXT_FIELDS if block.get(name)}
    user = account.find_user(email)
    if user is None:
        user = account.add_user(
            email=email,
            phone=values.get("phone", ""),
            first_name=values.get("first_name", ""),
            last_name=values.get("last_name", ""),
            city=values.get("city", ""),
            country=values.get("country", ""),
        )
        user.utm = {key: str(session[key]) for key in _UTM if session.get(key)}
        status = "added"
    elif refresh:
        for name, value in values.items():
            setattr(user, name, value)
        status = "updated"
    else:
        return user, "exists"
    addfields = block.get("addfields") or {}
    if isinstance(addfields, dict):
        user.addfields.update({str(k): str(v) for k, v in addfields.items()})
    for group in block.get("group_name") or []:
        name = str(group[0] if isinstance(group, list) and group else group)
        if name and name not in user.groups:
            user.groups.append(name)
    return user, status


def import_user(account: Account, params: dict[str, Any]) -> Outcome:
    refresh = flag(_section(params, "system").get("refresh_if_exists"))
    _checked_email(_section(params, "user"))
    user, status = _upsert_user(account, params, refresh)
    return Outcome(
        {
            "success": True,
            "user_id": user.id,
            "user_status": status,
            "error_message": "",
            "error": False,
        }
    )


@dataclass
class _DealRequest:
    number: str | None
    offer: SandboxOffer | None
    adhoc_title: str
    cost: Decimal | None
    quantity: int
    status: str | None
    created_at: datetime | None
    finished_at: datetime | None
    manager_email: str
    payment_type: str
    payment_status: str | None
    comment: str
    addfields: dict[str, str]


def _read_deal(account: Account, block: dict[str, Any]) -> _DealRequest:
    status = block.get("deal_status")
    if status is not None and status != "":
        status = str(status)
        if status not in DEAL_STATUSES:
            raise Refused(f"Неизвестный статус заказа: {status}")
    else:
        status = None
    payment_status = block.get("payment_status")
    if payment_status and str(payment_status) not in PAYMENT_STATUSES:
        raise Refused(f"Неизвестный статус платежа: {payment_status}")
    if status is None and (flag(block.get("deal_is_paid")) or payment_status == "accepted"):
        status = "payed"
    try:
        quantity = int(block.get("quantity") or 1)
    except (TypeError, ValueError) as exc:
        raise Refused(f"Неверное количество: {block.get('quantity')}") from exc
    if quantity < 1:
        raise Refused(f"Неверное количество: {quantity}")
    cost = parse_money(block.get("deal_cost"), "deal_cost")
    code = str(block.get("offer_code") or "").strip()
    title = str(block.get("product_title") or "").strip()
    offer = account.offer_by_code(code) if code else None
    if code and offer is None and not title:
        raise Refused(f"Предложение с кодом {code} не найдено")
    adhoc_title = ""
    if offer is None and title:
        offer = account.offer_by_title(title)
        if offer is None:
            if cost is None:
                raise Refused(f"Для нового предложения «{title}» нужна сумма заказа (deal_cost)")
            adhoc_title = title
    number = block.get("deal_number")
    addfields = block.get("addfields") or {}
    return _DealRequest(
        number=str(number).strip() if number not in (None, "") else None,
        offer=offer,
        adhoc_title=adhoc_title,
        cost=cost,
        quantity=quantity,
        status=status,
        created_at=parse_moment(block.get("deal_created_at"), "deal_created_at"),
        finished_at=parse_moment(block.get("deal_finished_at"), "deal_finished_at"),
        manager_email=str(block.get("manager_email") or "").strip(),
        payment_type=str(block.get("payment_type") or "OTHER"),
        payment_status=str(payment_status) if payment_status else None,
        comment=str(block.get("deal_comment") or ""),
        addfields={str(k): str(v) for k, v in addfields.items()}
        if isinstance(addfields, dict)
        else {},
    )


def import_deal(account: Account, params: dict[str, Any]) -> Outcome:
    system = _section(params, "system")
    refresh = flag(system.get("refresh_if_exists"))
    _checked_email(_section(params, "user"))
    block = _section(params, "deal")
    if not block:
        raise Refused("Не переданы параметры заказа (deal)")
    wanted = _read_deal(account, block)
    existing = account.deals_by_number.get(wanted.number) if wanted.number else None
    if existing is None and wanted.offer is None and not wanted.adhoc_title:
        raise Refused("Не указано предложение: нужен offer_code или product_title")
    if existing is not None and not refresh:
        raise Refused(f"Заказ с номером {wanted.number} уже существует")
    user, user_status = _upsert_user(account, params, refresh)
    if wanted.offer is None and wanted.adhoc_title and wanted.cost is not None:
        wanted.offer = account.adhoc_offer(wanted.adhoc_title, wanted.cost)
    callbacks: list[tuple[Deal, int]] = []
    if existing is not None:
        deal = existing
        if wanted.offer is not None:
            deal.offer = wanted.offer
        if wanted.cost is not None:
            deal.cost = wanted.cost
        fired = 0
        if wanted.status is not None:
            fired = account.set_status(
                deal, wanted.status, at=wanted.finished_at, payment_type=wanted.payment_type
            )
    else:
        offer = wanted.offer
        if offer is None:  # checked above; keeps the type checker informed
            raise Refused("Не указано предложение: нужен offer_code или product_title")
        deal = account.add_deal(
            user=user,
            offer=offer,
            cost=wanted.cost if wanted.cost is not None else offer.price * wanted.quantity,
            status="new",
            number=wanted.number,
            quantity=wanted.quantity,
            created_at=wanted.created_at,
        )
        deal.utm = {k: str(v) for k, v in _section(params, "session").items() if k in _UTM and v}
        fired = 1
        if wanted.status is not None:
            fired += account.set_status(
                deal,
                wanted.status,
                at=wanted.finished_at or wanted.created_at or now_moscow(),
                payment_type=wanted.payment_type,
            )
    if wanted.payment_status == "returned" and existing is not None:
        # [T] a payment of this type on the deal, as returned (the import API's only way to
        # take back a payment: there is no call that deletes one)
        account.return_payment(deal, wanted.payment_type)
    if wanted.manager_email:
        deal.manager_email = wanted.manager_email
    if wanted.comment:
        deal.comment = wanted.comment
    deal.addfields.update(wanted.addfields)
    if fired:
        callbacks.append((deal, fired))
    link = deal.payment_link if flag(system.get("return_payment_link")) else ""
    return Outcome(
        {
            "deal_id": deal.id,
            "deal_number": int(deal.number) if deal.number.isdigit() else deal.number,
            "success": True,
            "user_id": user.id,
            "user_status": user_status,
            "payment_link": link,
            "error_message": "",
            "error": False,
        },
        callbacks,
    )
