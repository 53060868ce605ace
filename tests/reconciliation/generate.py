"""Orders and payments as a school sees them, with the truth known: who paid for what.

``generate(10_000)`` gives 10,000 orders and 10,000 payments (seeded, deterministic) over a
period at about ``orders_per_day``, mixing what the morning reconciliation meets:

- clients who type their names in either order, in Latin, in lower case, with a patronymic or
  only a first name; returning clients (the same email, another order);
- automatic payments (YooKassa, Robokassa) with the order's email, mostly with the order number
  in the description, some less the provider's fee; a card holder's Latin name;
- PayPal for orders in euros: a Latin name in one of the transliteration systems banks and
  passports use, sometimes another email, always less PayPal's fee;
- manual transfers as managers write them: ``Демин Саша``, ``Саша Демина``, ``Демин А.``,
  diminutives, the masculine form for a woman, a typo, rarely an email, phone or order number;
- doubles (a manual payment and the automatic one for the same order), instalments (two
  payments for one order), siblings (one payment by a parent for two children's orders), paid
  twice automatically, a wrong amount, duplicate orders marked ``false``, a parent paying
  under their own name with nothing else to go by, orders marked paid by hand with no money,
  orders never paid, and payments for no order at all.

``Truth.orders_of[payment_id]`` is the set of orders the payment really pays (empty: none);
``Truth.expected`` the verdict a perfect engine would give with what the data shows. ``score``
holds a result against the truth: precision of the verdicts the service acts on by itself
(``matched``, ``duplicate_manual``: the order set must be the true one) and recall of the true
(payment, order) pairs that any verdict naming orders ties correctly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import iuliia  # type: ignore[import-untyped]

from schoolsync.reconciliation.models import (
    AUTOMATIC_KINDS,
    OrderIn,
    PaymentIn,
    ReconcileResult,
    VerdictKind,
)

START = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)

MALE = (  # noqa: SIM905 - word lists read better as text
    "Александр Алексей Андрей Антон Артём Борис Вадим Валерий Василий Виктор Виталий Владимир "
    "Владислав Георгий Григорий Денис Дмитрий Евгений Егор Иван Игорь Илья Кирилл Константин "
    "Максим Михаил Никита Николай Олег Павел Пётр Роман Руслан Семён Сергей Станислав Степан "
    "Тимофей Фёдор Юрий Ярослав Матвей Лев Марк Глеб Арсений"
).split()
FEMALE = (  # noqa: SIM905 - word lists read better as text
    "Александра Алина Алиса Анастасия Анна Валентина Валерия Варвара Вера Вероника Виктория "
    "Галина Дарья Диана Евгения Екатерина Елена Елизавета Ирина Карина Кристина Ксения Лариса "
    "Любовь Людмила Маргарита Марина Мария Надежда Наталья Нина Оксана Ольга Полина Светлана "
    "Софья Татьяна Ульяна Юлия Яна Арина Милана Ева Злата"
).split()
DIMINUTIVES = {
    "Александр": ["Саша", "Шура", "Саня"],
    "Александра": ["Саша", "Шура"],
    "Алексей": ["Лёша", "Алёша"],
    "Анастасия": ["Настя"],
    "Анна": ["Аня", "Анюта"],
    "Андрей": ["Андрюша"],
    "Артём": ["Тёма"],
    "Борис": ["Боря"],
    "Валерия": ["Лера"],
    "Варвара": ["Варя"],
    "Василий": ["Вася"],
    "Виктор": ["Витя"],
    "Виктория": ["Вика"],
    "Владимир": ["Вова", "Володя"],
    "Владислав": ["Влад"],
    "Галина": ["Галя"],
    "Георгий": ["Гоша", "Жора"],
    "Григорий": ["Гриша"],
    "Дарья": ["Даша"],
    "Дмитрий": ["Дима", "Митя"],
    "Евгений": ["Женя"],
    "Евгения": ["Женя"],
    "Екатерина": ["Катя"],
    "Елена": ["Лена"],
    "Елизавета": ["Лиза"],
    "Иван": ["Ваня"],
    "Ирина": ["Ира"],
    "Константин": ["Костя"],
    "Ксения": ["Ксюша"],
    "Любовь": ["Люба"],
    "Людмила": ["Люда"],
    "Максим": ["Макс"],
    "Маргарита": ["Рита"],
    "Мария": ["Маша"],
    "Михаил": ["Миша"],
    "Надежда": ["Надя"],
    "Наталья": ["Наташа"],
    "Николай": ["Коля"],
    "Ольга": ["Оля"],
    "Павел": ["Паша"],
    "Пётр": ["Петя"],
    "Полина": ["Поля"],
    "Роман": ["Рома"],
    "Светлана": ["Света"],
    "Семён": ["Сёма"],
    "Сергей": ["Серёжа"],
    "Софья": ["Соня"],
    "Станислав": ["Стас"],
    "Татьяна": ["Таня"],
    "Юлия": ["Юля"],
    "Юрий": ["Юра"],
}
ENGLISH = {"Александр": "Alexander", "Александра": "Alexandra", "Евгений": "Eugene"}
SURNAMES = (  # noqa: SIM905 - word lists read better as text
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов "
    "Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев "
    "Макаров Никитин Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев "
    "Кузьмин Фролов Александров Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин "
    "Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков Баранов Филиппов Комаров Давыдов "
    "Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов Крылов Куликов "
    "Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев "
    "Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев "
    "Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев "
    "Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов Соболев Ермаков "
    "Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов Громов "
    "Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов "
    "Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев Харитонов Князев "
    "Цветков Левин Митрофанов Воронов Аксёнов Мальцев Логинов Горшков Савин Краснов Майоров "
    "Демидов Елисеев Рыбаков Сафонов Плотников Демин Хохлов Жданов Хабиров Ахмедов Алиев "
    "Садыков Шарипов Гусейнов Высоцкий Ковальский Островский Вишневский Покровский Руденко "
    "Шевченко Ким Цой Бондаренко Ткаченко"
).split()
PATRONYMIC = {"male": "Сергеевич Андреевич Игоревич", "female": "Сергеевна Андреевна Игоревна"}
SCHEMES = ("WIKIPEDIA", "ICAO_DOC_9303", "MOSMETRO", "GOST_52535", "BGN_PCGN", "YANDEX_MONEY")
SCHEMES += ("MVD_782",)
DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "bk.ru", "inbox.ru", "icloud.com")
RUB = (99_000, 290_000, 360_000, 490_000, 640_000, 720_000, 990_000, 1_250_000, 1_500_000)
RUB += (1_690_000, 1_990_000, 2_490_000)
EUR = (1_900, 4_900, 6_900, 9_900)
LETTERS = "абвгдеклмнопрстуфхц"


@dataclass(frozen=True)
class Person:
    number: int
    female: bool
    given: str  # full, Cyrillic
    surname: str  # in the person's gender, Cyrillic
    email: str
    phone: str


@dataclass
class Truth:
    orders_of: dict[str, frozenset[str]] = field(default_factory=dict)
    expected: dict[str, VerdictKind] = field(default_factory=dict)
    unpaid_orders: set[str] = field(default_factory=set)
    scenario: dict[str, str] = field(default_factory=dict)  # payment id -> what it is


@dataclass
class Dataset:
    orders: list[OrderIn]
    payments: list[PaymentIn]
    now: datetime
    truth: Truth


@cache
def _latin(word: str, scheme: str) -> str:
    return str(getattr(iuliia, scheme).translate(word))


def _feminine(surname: str) -> str:
    if surname.endswith("ий"):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин")):
        return surname + "а"
    return surname  # Ким, Руденко


class _Maker:
    def __init__(self, seed: int, orders_per_day: int, n: int) -> None:
        self.rnd = random.Random(seed)
        self.span = timedelta(days=max(7.0, n / orders_per_day))
        self.orders: list[OrderIn] = []
        self.payments: list[PaymentIn] = []
        self.truth = Truth()
        self.people: list[Person] = []
        self.order_no = 4_100_000
        self.payment_no = 0
        self.manual_pairs: list[tuple[str, str, str]] = []  # manual id, order id, auto id

    # --- people and how their names are written -------------------------------------------

    def person(self, *, surname: str | None = None, female: bool | None = None) -> Person:
        rnd = self.rnd
        female = rnd.random() < 0.55 if female is None else female
        given = rnd.choice(FEMALE if female else MALE)
        male_surname = surname or rnd.choice(SURNAMES)
        family = _feminine(male_surname) if female else male_surname
        number = len(self.people)
        local = f"{_latin(given, 'YANDEX_MONEY')[:1]}{_latin(male_surname, 'ICAO_DOC_9303')}"
        email = f"{local.lower()}{number}@{rnd.choice(DOMAINS)}"
        digits = f"9{rnd.randrange(10**9):09d}"
        phone = rnd.choice(
            [
                f"+7{digits}",
                f"8{digits}",
                f"+7 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
            ]
        )
        found = Person(number, female, given, family, email, phone)
        self.people.append(found)
        return found

    def typo(self, word: str) -> str:
        if len(word) < 5:
            return word
        rnd = self.rnd
        i = rnd.randrange(1, len(word) - 1)
        how = rnd.randrange(4)
        if how == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if how == 1:
            return word[:i] + word[i + 1 :]
        if how == 2:
            return word[:i] + word[i] + word[i:]
        return word[:i] + rnd.choice(LETTERS) + word[i + 1 :]

    def order_name(self, p: Person) -> str:
        r = self.rnd.random()
        if r < 0.62:
            return f"{p.given} {p.surname}"
        if r < 0.82:
            return f"{p.surname} {p.given}"
        if r < 0.87:
            return f"{p.given} {p.surname}".lower()
        if r < 0.92:
            middle = self.rnd.choice(PATRONYMIC["female" if p.female else "male"].split())
            return f"{p.surname} {p.given} {middle}"
        if r < 0.97:
            scheme = self.rnd.choice(SCHEMES)
            return f"{_latin(p.given, scheme)} {_latin(p.surname, scheme)}"
        return p.given  # only a first name: no name matching for this one

    def manager_name(self, p: Person) -> str:
        """How a manager writes the payer of a transfer in the finance group."""
        rnd = self.rnd
        given = p.given
        if given in DIMINUTIVES and rnd.random() < 0.5:
            given = rnd.choice(DIMINUTIVES[given])
        surname = p.surname
        if p.female and rnd.random() < 0.06:
            surname = surname[:-1] if surname.endswith(("ова", "ева", "ёва", "ина")) else surname
        if rnd.random() < 0.06:
            surname = self.typo(surname)
        elif rnd.random() < 0.04:
            given = self.typo(given)
        r = rnd.random()
        if r < 0.1:
            return f"{surname} {p.given[0]}."
        if r < 0.65:
            return f"{surname} {given}"
        return f"{given} {surname}"

    def latin_name(self, p: Person) -> str:
        rnd = self.rnd
        scheme = rnd.choice(SCHEMES)
        given = p.given
        if given in ENGLISH and rnd.random() < 0.4:
            first = ENGLISH[given]
        elif given in DIMINUTIVES and rnd.random() < 0.15:
            first = _latin(rnd.choice(DIMINUTIVES[given]), scheme)
        else:
            first = _latin(given, scheme)
        last = _latin(p.surname, scheme)
        if rnd.random() < 0.04:
            last = self.typo(last)
        name = f"{first} {last}" if rnd.random() < 0.7 else f"{last} {first}"
        return name.upper() if rnd.random() < 0.3 else name

    # --- records --------------------------------------------------------------------------

    def order(
        self,
        p: Person,
        at: datetime,
        *,
        euro: bool = False,
        amount: int | None = None,
        status: str = "new",
        manual: bool = False,
        contacts: Person | None = None,
    ) -> OrderIn:
        """An order by ``p`` (with the email and phone of ``contacts`` if given: a parent's)."""
        rnd = self.rnd
        self.order_no += rnd.randrange(1, 4)
        currency = "EUR" if euro else "RUB"
        made = OrderIn(
            order_id=str(self.order_no),
            created_at=at,
            email=(contacts or p).email if contacts or rnd.random() < 0.97 else None,
            phone=(contacts or p).phone if rnd.random() < 0.7 else None,
            name=f"{p.given} {p.surname}" if contacts else self.order_name(p),
            product=f"product {amount}",
            amount_minor=amount or rnd.choice(EUR if euro else RUB),
            currency=currency,
            status=status,
            paid_manually=manual,
        )
        self.orders.append(made)
        return made

    def payment(
        self,
        order: OrderIn,
        p: Person,
        at: datetime,
        how: str,
        *,
        amount: int | None = None,
        scenario: str,
        truth: tuple[str, ...] | None = None,
    ) -> PaymentIn:
        """``how``: automatic, paypal or manual; the person paying is ``p``."""
        rnd = self.rnd
        self.payment_no += 1
        pid = f"pay-{self.payment_no:07d}"
        cost = order.amount_minor if amount is None else amount
        if how == "paypal":
            made = PaymentIn(
                pid,
                "paypal",
                "automatic",
                at,
                cost - round(cost * 0.034) - 35,
                order.currency,
                payer_name=self.latin_name(p),
                email=p.email if rnd.random() < 0.5 else f"pp{p.number}@{rnd.choice(DOMAINS)}",
            )
        elif how == "automatic":
            source = "yookassa" if rnd.random() < 0.78 else "robokassa"
            fee = round(cost * 0.039) if source == "robokassa" and rnd.random() < 0.5 else 0
            email = p.email if rnd.random() < 0.96 else None
            holder = None
            if rnd.random() < 0.35:
                scheme = rnd.choice(("ICAO_DOC_9303", "GOST_52535"))
                holder = f"{_latin(p.given, scheme)} {_latin(p.surname, scheme)}".upper()
            made = PaymentIn(
                pid,
                source,
                "automatic",
                at,
                cost - fee,
                order.currency,
                payer_name=holder,
                email=email,
                phone=p.phone if rnd.random() < 0.4 else None,
                reference=f"Заказ №{order.order_id}" if rnd.random() < 0.7 else None,
            )
        else:
            r = rnd.random()
            made = PaymentIn(
                pid,
                "card_transfer" if rnd.random() < 0.8 else "bank_transfer",
                "manual",
                at,
                cost,
                order.currency,
                payer_name=self.manager_name(p),
                email=p.email if r < 0.15 else None,
                phone=p.phone if 0.15 <= r < 0.3 else None,
                reference=f"заказ {order.order_id}" if rnd.random() < 0.08 else None,
            )
        self.payments.append(made)
        self.truth.orders_of[pid] = frozenset((order.order_id,) if truth is None else truth)
        self.truth.scenario[pid] = scenario
        self.truth.expected[pid] = VerdictKind.MATCHED
        return made

    def delay(self, how: str) -> timedelta:
        rnd = self.rnd
        if how == "manual":
            return timedelta(minutes=rnd.uniform(20, 60 * 40))
        if how == "paypal":
            return timedelta(minutes=rnd.lognormvariate(3.5, 1.2))
        return timedelta(minutes=min(60 * 30, rnd.lognormvariate(2.0, 1.4)))

    # --- scenarios --------------------------------------------------------------------------

    def client(self) -> Person:
        if self.people and self.rnd.random() < 0.12:
            return self.rnd.choice(self.people)  # a returning client
        return self.person()

    def scenario(self, at: datetime) -> None:
        rnd = self.rnd
        r = rnd.random()
        p = self.client()
        euro = rnd.random() < 0.07
        how = "paypal" if euro else ("manual" if rnd.random() < 0.2 else "automatic")
        if r < 0.08:  # never paid
            self.order(p, at, euro=euro, status=rnd.choice(["new", "in_work", "payment_waiting"]))
        elif r < 0.09:  # marked paid by hand, no money ever came
            order = self.order(p, at, status="payed", manual=True)
            self.truth.unpaid_orders.add(order.order_id)
        elif r < 0.13 and not euro:  # manual payment, then the automatic one too
            order = self.order(p, at, status="payed", manual=True)
            first = at + self.delay("manual")
            manual = self.payment(order, p, first, "manual", scenario="double_manual")
            auto = self.payment(
                order,
                p,
                first + timedelta(minutes=rnd.uniform(5, 60 * 30)),
                "automatic",
                scenario="double_automatic",
            )
            self.manual_pairs.append((manual.payment_id, order.order_id, auto.payment_id))
        elif r < 0.16:  # two instalments
            order = self.order(p, at, euro=euro, status="part_payed", manual=how == "manual")
            share = rnd.choice([0.5, 0.5, 0.3, 0.4])
            first = round(order.amount_minor * share)
            when = at + self.delay(how)
            self.payment(order, p, when, how, amount=first, scenario="instalment")
            later = when + timedelta(days=rnd.uniform(1, 9))
            self.payment(
                order, p, later, how, amount=order.amount_minor - first, scenario="instalment"
            )
        elif r < 0.185 and not euro:  # a parent pays once for two children
            parent = self.person()
            family = self.surname_of(parent)
            kids = [self.person(surname=family) for _ in range(2)]
            one = self.order(kids[0], at, contacts=parent)
            two = self.order(kids[1], at + timedelta(minutes=rnd.uniform(1, 30)), contacts=parent)
            total = one.amount_minor + two.amount_minor
            how = "automatic" if rnd.random() < 0.5 else "manual"
            made = self.payment(
                one,
                parent,
                at + self.delay("manual"),
                how,
                amount=total,
                scenario="siblings",
                truth=(one.order_id, two.order_id),
            )
            self.replace(made, payer_name=made.payer_name, email=parent.email)
        elif r < 0.195 and not euro:  # paid twice automatically
            order = self.order(p, at, status="payed")
            when = at + self.delay("automatic")
            self.payment(order, p, when, "automatic", scenario="paid_twice")
            second = self.payment(
                order,
                p,
                when + timedelta(minutes=rnd.uniform(1, 90)),
                "automatic",
                scenario="paid_twice",
            )
            self.truth.expected[second.payment_id] = VerdictKind.OVERPAID
        elif r < 0.21 and not euro:  # a wrong amount, the same email
            order = self.order(p, at)
            made = self.payment(
                order,
                p,
                at + self.delay("automatic"),
                "automatic",
                amount=round(order.amount_minor * rnd.choice([0.8, 0.7, 1.25])),
                scenario="wrong_amount",
            )
            self.replace(made, email=p.email)
            self.truth.expected[made.payment_id] = VerdictKind.AMOUNT_MISMATCH
        elif r < 0.23:  # the client ordered twice; the later order is marked false
            order = self.order(p, at, euro=euro, status="payed", manual=how == "manual")
            self.order(
                p,
                at + timedelta(minutes=rnd.uniform(2, 120)),
                euro=euro,
                amount=order.amount_minor,
                status="false",
            )
            self.payment(order, p, at + self.delay(how), how, scenario="duplicate_order")
        elif r < 0.235 and not euro:  # a parent pays under their own name, nothing else
            order = self.order(p, at, status="payed", manual=True)
            parent = self.person(surname=self.surname_of(p), female=True)
            made = self.payment(
                order, parent, at + self.delay("manual"), "manual", scenario="parent"
            )
            self.replace(made, payer_name=made.payer_name)
            self.truth.expected[made.payment_id] = VerdictKind.UNMATCHED_PAYMENT
        else:  # paid once
            order = self.order(p, at, euro=euro, status="payed", manual=how == "manual")
            self.payment(order, p, at + self.delay(how), how, scenario=f"paid_{how}")

    def surname_of(self, p: Person) -> str:
        """The masculine form of ``p``'s surname."""
        for male in SURNAMES:
            if _feminine(male) == p.surname or male == p.surname:
                return male
        return p.surname

    def replace(self, made: PaymentIn, **contacts: str | None) -> None:
        """The last payment again with only ``contacts`` (payer_name, email, phone) set."""
        assert self.payments[-1] is made
        self.payments[-1] = PaymentIn(
            made.payment_id,
            made.source,
            made.kind,
            made.paid_at,
            made.amount_minor,
            made.currency,
            payer_name=contacts.get("payer_name"),
            email=contacts.get("email"),
            phone=contacts.get("phone"),
        )

    def stranger(self, at: datetime) -> None:
        """A payment for no order of this school."""
        p = self.person()
        how = self.rnd.choice(["automatic", "paypal", "manual", "manual"])
        fake = OrderIn(
            "none",
            at,
            p.email,
            p.phone,
            None,
            None,
            self.rnd.choice(EUR if how == "paypal" else RUB),
            "EUR" if how == "paypal" else "RUB",
            "new",
        )
        made = self.payment(fake, p, at, how, scenario="no_order", truth=())
        self.replace(made, payer_name=made.payer_name, email=made.email, phone=made.phone)
        self.truth.expected[made.payment_id] = VerdictKind.UNMATCHED_PAYMENT


def generate(n: int, *, seed: int = 7, orders_per_day: int = 400) -> Dataset:
    """About ``n`` orders and exactly ``n`` payments, ``orders_per_day`` orders a day."""
    maker = _Maker(seed, orders_per_day, n)
    seconds = maker.span.total_seconds()
    while len(maker.orders) < n and len(maker.payments) < n - 1:
        maker.scenario(START + timedelta(seconds=maker.rnd.uniform(0, seconds)))
    while len(maker.payments) < n:
        maker.stranger(START + timedelta(seconds=maker.rnd.uniform(0, seconds)))
    paid_at = {p.payment_id: p.paid_at for p in maker.payments}
    now = max(paid_at.values()) + timedelta(hours=1)
    for manual, _order, _auto in maker.manual_pairs:
        if now - paid_at[manual] >= GRACE:
            maker.truth.expected[manual] = VerdictKind.DUPLICATE_MANUAL
    return Dataset(maker.orders, maker.payments, now, maker.truth)


LINKING = AUTOMATIC_KINDS | {VerdictKind.OVERPAID, VerdictKind.AMOUNT_MISMATCH}


@dataclass(frozen=True)
class Score:
    automatic: int  # payments in verdicts the service acts on by itself
    wrong: int  # ... tied to an order set that is not the truth
    pairs: int  # true (payment, order) pairs
    found: int  # ... that a verdict ties correctly

    @property
    def precision(self) -> float:
        return 1 - self.wrong / self.automatic if self.automatic else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.pairs if self.pairs else 1.0


def score(result: ReconcileResult, truth: Truth) -> Score:
    automatic = wrong = 0
    found: set[tuple[str, str]] = set()
    for verdict in result.verdicts:
        if verdict.kind not in LINKING:
            continue
        for payment_id in verdict.payment_ids:
            true_orders = truth.orders_of[payment_id]
            if verdict.kind in AUTOMATIC_KINDS:
                automatic += 1
                wrong += set(verdict.order_ids) != true_orders
            found.update((payment_id, o) for o in verdict.order_ids if o in true_orders)
    pairs = sum(len(orders) for orders in truth.orders_of.values())
    return Score(automatic, wrong, pairs, len(found))
