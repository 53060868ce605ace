"""How GetCourse writes values: export tables (Russian column titles, every cell a string,
money in Russian format) and callback placeholder values ("12 000 руб.").

Column titles and their order follow public integrations that parse real exports (see the
package docstring); custom order fields are spliced in after «Промоакция», as real accounts do.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from schoolsync.sandbox.getcourse.model import (
    DEAL_STATUSES,
    PAYMENT_STATUSES,
    PAYMENT_SYSTEMS,
    Account,
    Deal,
    Payment,
    User,
)

NBSP = "\u00a0"
CENTS = Decimal("0.01")

DEAL_FIELDS_HEAD = [
    "ID заказа",
    "Номер",
    "ID пользователя",
    "Пользователь",
    "Email",
    "Телефон",
    "Дата создания",
    "Дата оплаты",
    "Title",
    "Статус",
    "Стоимость, RUB",
    "Оплачено",
    "Комиссия платежной системы",
    "Получено",
    "Налог",
    "Осталось после вычета комиссии платежной системы и налога",
    "Другие комиссии",
    "Заработано",
    "Валюта",
    "Менеджер",
    "Город",
    "Платежная система",
    "ID партнера",
    "Использован промокод",
    "Промоакция",
]
DEAL_FIELDS_TAIL = [
    "ID партнера заказа",
    "Email партнера заказа",
    "ФИО партнера заказа",
    "ID партнера пользователя",
    "Email партнера пользователя",
    "ФИО партнера пользователя",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "utm_group",
    "Партнерский источник",
    "Партнерский код",
    "Партнер (сессия)",
    "user_utm_source",
    "user_utm_medium",
    "user_utm_campaign",
    "user_utm_content",
    "user_utm_term",
    "user_utm_group",
    "user_gcpc",
    "Теги",
    "Теги предложений",
]
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_group")

USER_FIELDS = [
    "id",
    "Email",
    "Тип регистрации",
    "Создан",
    "Последняя активность",
    "Имя",
    "Фамилия",
    "Телефон",
    "Дата рождения",
    "Возраст",
    "Страна",
    "Город",
    "От партнера",
    "Откуда пришел",
    *UTM_KEYS,
    "ID партнера",
    "Email партнера",
    "ФИО партнера",
    "ФИО менеджера",
    "VK-ID",
]

PAYMENT_FIELDS = [
    "Номер",
    "Пользователь",
    "Email",
    "Заказ",
    "Дата создания",
    "Тип",
    "Статус",
    "Сумма",
    "Комиссии",
    "Получено",
    "Код платежа",
    "Название",
]


def grouped(whole: int, separator: str) -> str:
    return f"{whole:,}".replace(",", separator)


def split_money(amount: Decimal) -> tuple[int, int]:
    cents = int(amount.quantize(CENTS) * 100)
    return cents // 100, cents % 100


def export_money(amount: Decimal, separator: str) -> str:
    """`12 000,00`: thousands separated, comma before kopecks, as export cells show money."""
    whole, kopecks = split_money(amount)
    return f"{grouped(whole, separator)},{kopecks:02d}"


def callback_money(amount: Decimal, separator: str = " ") -> str:
    """`12 000 руб.` (`12 000,50 руб.` with kopecks), as `{object.cost_money}` renders."""
    whole, kopecks = split_money(amount)
    tail = f",{kopecks:02d}" if kopecks else ""
    return f"{grouped(whole, separator)}{tail} руб."


def plain_money(amount: Decimal) -> str:
    """`12000` (`12000.5` with kopecks), as `{object.cost_money_value}` renders."""
    whole, kopecks = split_money(amount)
    return str(whole) if not kopecks else f"{whole}.{kopecks:02d}".rstrip("0")


def moment(value: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in the account's timezone, or empty."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def deal_fields(extra: list[str]) -> list[str]:
    return [*DEAL_FIELDS_HEAD, *extra, *DEAL_FIELDS_TAIL]


def deal_row(account: Account, deal: Deal, extra: list[str]) -> list[Any]:
    user = account.users[deal.user_id]
    # Both separators occur in real exports; alternate so a client must cope with either.
    sep = NBSP if deal.id % 2 == 0 else " "
    zero = export_money(Decimal("0"), sep)
    payed = export_money(deal.payed, sep)
    system = PAYMENT_SYSTEMS.get(deal.payment_type, deal.payment_type) if deal.payed else ""
    head: list[Any] = [
        str(deal.id),
        deal.number,
        str(user.id),
        user.name,
        user.email,
        user.phone,
        moment(deal.created_at),
        moment(deal.payed_at),
        deal.offer.title,
        DEAL_STATUSES[deal.status],
        export_money(deal.cost, sep),
        payed,
        zero,
        payed,
        zero,
        payed,
        zero,
        payed,
        deal.currency,
        account.manager_name(deal.manager_email),
        user.city,
        system,
        "",
        "",
        "",
    ]
    custom = [deal.addfields.get(title, "") for title in extra]
    tail: list[Any] = [
        *([""] * 6),
        *(deal.utm.get(key, "") for key in UTM_KEYS),
        "",
        "",
        "",
        *(user.utm.get(key, "") for key in UTM_KEYS),
        "",
        [],
        [],
    ]
    return [*head, *custom, *tail]


def user_row(user: User) -> list[Any]:
    return [
        str(user.id),
        user.email,
        "Импорт",
        moment(user.created_at),
        moment(user.created_at),
        user.first_name,
        user.last_name,
        user.phone,
        "",
        "",
        user.country,
        user.city,
        "",
        "",
        *(user.utm.get(key, "") for key in UTM_KEYS),
        "",
        "",
        "",
        "",
        "",
    ]


def payment_row(account: Account, payment: Payment) -> list[Any]:
    user = account.users[payment.user_id]
    deal = account.deals_by_id[payment.deal_id]
    amount = callback_money(payment.amount, NBSP)
    return [
        str(payment.id),
        user.name,
        user.email,
        deal.number,
        moment(payment.created_at),
        PAYMENT_SYSTEMS.get(payment.payment_type, payment.payment_type),
        PAYMENT_STATUSES.get(payment.status, payment.status),
        amount,
        "0 руб.",
        amount,
        "",
        deal.offer.title,
    ]
