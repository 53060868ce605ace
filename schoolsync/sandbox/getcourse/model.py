"""The account's data in memory: users, orders (deals) and payments, and how they change.

Every change that GetCourse would run a process for returns the orders to call back about:
creation and every status change once, a change to `payed` twice (a payment fires two
process events). The caller renders and sends the callbacks; this module does no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from schoolsync.sandbox.getcourse.config import GetCourseSandboxConfig, SandboxOffer

MOSCOW = ZoneInfo("Europe/Moscow")

DEAL_STATUSES: dict[str, str] = {
    "new": "Новый",
    "in_work": "В работе",
    "payment_waiting": "Ожидаем оплаты",
    "part_payed": "Частично оплачен",
    "payed": "Завершен",
    "cancelled": "Отменен",
    "false": "Ложный",
    "pending": "Отложен",
    "not_confirmed": "Не подтвержден",
    "waiting_for_return": "Ожидаем возврата",
}

PAYMENT_STATUSES: dict[str, str] = {
    "expected": "Ожидается",
    "accepted": "Получен",
    "returned": "Возвращен",
    "tobalance": "Зачислен на баланс",
    "frombalance": "Списан с баланса",
    "returned_to_balance": "Возвращен на баланс",
}

PAYMENT_SYSTEMS: dict[str, str] = {
    "CARD": "Карта",
    "CASH": "Наличные",
    "OTHER": "Другое",
    "tinkoff": "Тинькофф",
    "yandex_kassa": "ЮKassa",
    "ROBOKASSA": "Робокасса",
    "PAYPAL": "PayPal",
    "cloud_payments": "CloudPayments",
}

MANAGER_NAMES = ("Анна Смирнова", "Олег Кузнецов", "Мария Соколова", "Павел Морозов")

FIRST_USER_ID = 318_000_001
FIRST_DEAL_ID = 241_500_001
FIRST_PAYMENT_ID = 97_300_001
FIRST_DEAL_NUMBER = 10_001


def now_moscow() -> datetime:
    return datetime.now(MOSCOW).replace(microsecond=0)


@dataclass
class User:
    id: int
    email: str
    phone: str
    first_name: str
    last_name: str
    city: str
    country: str
    created_at: datetime
    addfields: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    utm: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass
class Deal:
    id: int
    number: str
    user_id: int
    offer: SandboxOffer
    quantity: int
    cost: Decimal
    status: str
    created_at: datetime
    status_changed_at: datetime
    payment_link: str
    currency: str = "RUB"
    payed: Decimal = Decimal("0")
    payed_at: datetime | None = None
    finished_at: datetime | None = None
    manager_email: str = ""
    payment_type: str = ""
    comment: str = ""
    addfields: dict[str, str] = field(default_factory=dict)
    utm: dict[str, str] = field(default_factory=dict)

    @property
    def left(self) -> Decimal:
        return max(self.cost - self.payed, Decimal("0"))


@dataclass
class Payment:
    id: int
    deal_id: int
    user_id: int
    amount: Decimal
    status: str
    payment_type: str
    created_at: datetime


class Account:
    """All data of one sandbox account. Not thread-safe: the sandbox serialises access."""

    def __init__(self, config: GetCourseSandboxConfig) -> None:
        self.config = config
        self.users_by_email: dict[str, User] = {}
        self.users: dict[int, User] = {}
        self.deals: list[Deal] = []
        self.deals_by_number: dict[str, Deal] = {}
        self.deals_by_id: dict[int, Deal] = {}
        self.payments: list[Payment] = []
        self._next_user_id = FIRST_USER_ID
        self._next_deal_id = FIRST_DEAL_ID
        self._next_payment_id = FIRST_PAYMENT_ID
        self._next_number = FIRST_DEAL_NUMBER
        self._next_offer_id = 5_200_001
        self.adhoc_offers: dict[str, SandboxOffer] = {}

    # -- users -------------------------------------------------------------------------
    def find_user(self, email: str) -> User | None:
        return self.users_by_email.get(email.strip().lower())

    def add_user(
        self,
        *,
        email: str,
        phone: str = "",
        first_name: str = "",
        last_name: str = "",
        city: str = "",
        country: str = "",
        created_at: datetime | None = None,
    ) -> User:
        user = User(
            id=self._next_user_id,
            email=email.strip(),
            phone=phone,
            first_name=first_name,
            last_name=last_name,
            city=city,
            country=country,
            created_at=created_at or now_moscow(),
        )
        self._next_user_id += 1
        self.users[user.id] = user
        self.users_by_email[user.email.lower()] = user
        return user

    # -- offers ------------------------------------------------------------------------
    def offer_by_code(self, code: str) -> SandboxOffer | None:
        return next((o for o in self.config.products if o.code == code), None)

    def offer_by_title(self, title: str) -> SandboxOffer | None:
        found = next((o for o in self.config.products if o.title == title), None)
        return found or self.adhoc_offers.get(title)

    def adhoc_offer(self, title: str, price: Decimal) -> SandboxOffer:
        """An offer created on the fly by an import that names a product the school lacks."""
        offer = self.adhoc_offers.get(title)
        if offer is None:
            offer = SandboxOffer(title, price, self._next_offer_id, "")
            self._next_offer_id += 1
            self.adhoc_offers[title] = offer
        return offer

    def manager_name(self, email: str) -> str:
        if not email:
            return ""
        managers = self.config.managers
        index = managers.index(email) if email in managers else len(managers)
        return MANAGER_NAMES[index % len(MANAGER_NAMES)]

    # -- deals -------------------------------------------------------------------------
    def next_number(self) -> str:
        while str(self._next_number) in self.deals_by_number:
            self._next_number += 1
        number = str(self._next_number)
        self._next_number += 1
        return number

    def add_deal(
        self,
        *,
        user: User,
        offer: SandboxOffer,
        cost: Decimal,
        status: str,
        number: str | None = None,
        quantity: int = 1,
        created_at: datetime | None = None,
        manager_email: str = "",
    ) -> Deal:
        deal_id = self._next_deal_id
        self._next_deal_id += 1
        created = created_at or now_moscow()
        deal = Deal(
            id=deal_id,
            number=number if number is not None else self.next_number(),
            user_id=user.id,
            offer=offer,
            quantity=quantity,
            cost=cost,
            status="new",
            created_at=created,
            status_changed_at=created,
            payment_link=self._payment_link(deal_id),
            manager_email=manager_email,
        )
        self.deals.append(deal)
        self.deals_by_number[deal.number] = deal
        self.deals_by_id[deal.id] = deal
        if status != "new":
            self.set_status(deal, status, at=created)
        return deal

    def _payment_link(self, deal_id: int) -> str:
        digest = hashlib.sha1(f"{self.config.account}:{deal_id}".encode()).hexdigest()  # noqa: S324 - a link token, not security
        return f"https://{self.config.account}.getcourse.ru/sales/shop/dealPay/id/{deal_id}/hash/{digest[:32]}"

    def set_status(
        self,
        deal: Deal,
        status: str,
        *,
        at: datetime | None = None,
        amount: Decimal | None = None,
        payment_type: str = "tinkoff",
    ) -> int:
        """Move `deal` to `status`; returns how many process callbacks that change fires.

        `payed` pays the rest of the order (one accepted payment) and fires two callbacks;
        `part_payed` pays `amount` (default: half of what is left). The same status again
        changes nothing and fires nothing.
        """
        if status not in DEAL_STATUSES:
            raise ValueError(status)
        if status == deal.status:
            return 0
        when = at or now_moscow()
        deal.status = status
        deal.status_changed_at = when
        if status == "payed":
            self._pay(deal, deal.left, when, payment_type)
            deal.payed_at = deal.payed_at or when
            deal.finished_at = when
            return 2
        if status == "part_payed":
            part = amount if amount is not None else (deal.left / 2).quantize(Decimal("0.01"))
            self._pay(deal, min(part, deal.left), when, payment_type)
            deal.payed_at = deal.payed_at or when
        if status in ("cancelled", "false"):
            deal.finished_at = when
        return 1

    def return_payment(self, deal: Deal, payment_type: str) -> Payment | None:
        """The latest accepted payment of ``payment_type`` on ``deal`` becomes ``returned`` (its
        amount no longer counts as paid); ``None`` when there is none (nothing changes)."""
        found = next(
            (
                p
                for p in reversed(self.payments)
                if p.deal_id == deal.id
                and p.status == "accepted"
                and p.payment_type == payment_type
            ),
            None,
        )
        if found is not None:
            found.status = "returned"
            deal.payed = max(deal.payed - found.amount, Decimal("0"))
        return found

    def _pay(self, deal: Deal, amount: Decimal, when: datetime, payment_type: str) -> None:
        if amount <= 0:
            return
        deal.payed += amount
        deal.payment_type = payment_type
        self.payments.append(
            Payment(
                id=self._next_payment_id,
                deal_id=deal.id,
                user_id=deal.user_id,
                amount=amount,
                status="accepted",
                payment_type=payment_type,
                created_at=when,
            )
        )
        self._next_payment_id += 1
