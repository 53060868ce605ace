"""A manager's message about a transfer, read leniently: ``2500 Демин Саша`` and its cousins.

Managers write what they see on the receipt, in any order::

    2500 Демин Саша                          2 500 р. Саша Демина
    2500₽ Демин А. сбер                      1500,50 руб Иванова Юлия (тинькофф) заказ 12345
    Демин Саша 2500                          +2500 Демин Саша
    2.500 Демин                              2500.00 RUB Ivanov Ivan
    2,5к Демин Саша на карту                 $50 Smith John

What is read, and how (nothing is guessed: what is ambiguous is sent back as a question):

- **amount**: one number; spaces, dots or commas group thousands in threes (``2 500``,
  ``2.500``, ``1,500``), a comma or dot before one or two digits marks kopecks (``1500,50``);
  ``к``/``тыс``/``т.р.`` multiply by 1000. A currency sign or word next to it (``₽ р. руб
  рублей RUB``, ``$ USD``, ``€ EUR евро``) sets the currency, RUB otherwise. Dates
  (``12.03.2024``), times, percentages, phones, card and account numbers and order numbers
  are not amounts (a card number is kept as ``*1234``). Where several
  numbers remain, the single one with a currency mark wins; otherwise the message is refused.
- **payer**: the first run of name words (capitalised ones after a capitalised first word, up
  to three words plus initials like ``А.`` or ``А.С.``), as written; prepositions and payment
  words (``за``, ``оплата``, ``курс``, months …) are not names.
- **bank**: ``сбер``, ``тинькофф``/``т-банк``, ``альфа``, ``втб``, ``озон``, ``райф``,
  ``газпромбанк``, ``совкомбанк``, ``росбанк``, ``псб`` in any case and inflection.
- **method**: ``р/с``, ``безнал``, ``платёжка``, ``по счёту``, ``реквизиты`` mean a bank
  transfer; ``карта``, ``перевод``, ``сбп`` or a bank name mean a card transfer.
- **order number**: ``заказ 12345``, ``заказ №12345``, ``№12345``, ``#12345``.
- **phone** and **email**, when written, normalised (E.164, lower case).
- **comment**: the rest, with the words read above taken out.

``parse_payment_message`` never raises: what it cannot read comes back as ``Unreadable`` with a
short Russian reason for the bot's reply in the finance group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from schoolsync.core.domain import normalize_email, normalize_phone


class TransferMethod(StrEnum):
    CARD_TRANSFER = "card_transfer"
    BANK_TRANSFER = "bank_transfer"


@dataclass(frozen=True)
class ManualPaymentText:
    """What a manager's message says about one incoming transfer."""

    amount: Decimal  # > 0, two decimals (kopecks exact)
    currency: str  # ISO 4217: RUB, USD, EUR
    payer: str  # as written, spaces normalised: "Демин Саша", "Демин А."
    method: TransferMethod | None = None
    bank: str | None = None  # "Сбербанк", "Т-Банк", …
    order_number: str | None = None
    comment: str | None = None
    payer_phone: str | None = None  # E.164
    payer_email: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """Why the message could not be read, in Russian, to be sent back in the group."""

    reason_ru: str


MAX_AMOUNT: Final = Decimal("10000000")
MAX_LENGTH: Final = 500

_KOPECK: Final = Decimal("0.01")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SPACES: Final = {ord(c): " " for c in "\u00a0\u202f\u2009\u2007\t"}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+7|8|7)[\s\-(]*\d{3}|\(?9\d{2})[\s\-)]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?!\d)"
)
_CARD = re.compile(r"(?<![\d*])\d{4}(?:[ \-]?\d{4}){3}(\d{0,3})(?!\d)")
_ORDER = re.compile(
    r"(?:заказ\w*|зак\.|order)\s*(?:№|#|N|No\.?|номер)?\s*:?\s*(\d{1,12})(?!\d)"
    r"|[№#]\s*(\d{1,12})(?!\d)",
    re.IGNORECASE,
)
_NOT_ORDER_WORDS: Final = ("карт", "счет", "счёт", "договор", "телефон", "тел", "мерчант")
_AMOUNT = re.compile(
    r"""
    (?<![\w.,:/*+\-−№\#])(?<!№\ )(?<!\#\ )
    (?P<sign>[+\-−])?
    (?:(?P<pre>\$|€|₽|usd|eur|rub)\s?)?
    (?P<num>
        \d{1,3}(?:\ \d{3})+(?:[.,]\d{1,2})?     # 2 500   1 500,50
      | \d{1,3}(?:\.\d{3})+(?:,\d{1,2})?        # 2.500   1.500,50
      | \d{1,3}(?:,\d{3})+(?:\.\d{1,2})?        # 1,500   1,500.50
      | \d{1,9}(?:[.,]\d{1,2})?                 # 2500    1500,50   2500.00
    )
    (?P<mult>[кk](?!\w)|\s?(?:тыс(?:яч[аи]?)?\.?|т\.\s?р\.?|тр\.?)(?!\w))?
    (?P<post>\s?(?:
        ₽|руб(?:лей|ля|ль)?\.?|р\.?|rub\.?|rur
      | \$|usd|долл(?:аров|ара|ар)?\.?|dollars?
      | €|eur|евро|euros?
    ))?
    (?![\w%]|[.,:/]\d)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_DATE_OR_TIME = re.compile(r"\W*\d{1,2}[.:/]\d{2}(?:[.:/]\d{2,4})?\W*")
_CURRENCY_BY_START: Final = (
    (("₽", "р", "rub", "rur"), "RUB"),
    (("$", "usd", "долл", "dollar"), "USD"),
    (("€", "eur", "евро"), "EUR"),
)

_NAME_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_INITIALS = re.compile(r"(?:[^\W\d_]\.){1,3}")
_EDGE_PUNCTUATION: Final = "()[]{}«»\"'.,;:!?"

_BANKS: Final = (
    (re.compile(r"(?:сбер|sber)\w*"), "Сбербанк"),
    (re.compile(r"(?:тинь|тинек|тинкоф|tinkoff|т-?банк|t-?bank)\w*"), "Т-Банк"),
    (re.compile(r"(?:альфа|alfa)(?:-?банк\w*)?"), "Альфа-Банк"),
    (re.compile(r"(?:втб|vtb)\w*"), "ВТБ"),
    (re.compile(r"(?:озон|ozon)\w*"), "Озон Банк"),
    (re.compile(r"(?:райф|raif)\w*"), "Райффайзенбанк"),
    (re.compile(r"газпромбанк\w*|гпб"), "Газпромбанк"),
    (re.compile(r"совком\w*"), "Совкомбанк"),
    (re.compile(r"росбанк\w*"), "Росбанк"),
    (re.compile(r"псб"), "ПСБ"),
)
_BANK_TRANSFER_WORDS: Final = _words(
    "р/с рс р/сч расчетный расчётный расч/счет безнал безналом безналичный безналичными "
    "платежка платёжка платежкой платёжкой п/п реквизиты реквизитам счет счёт счету счёту"
)
_CARD_WORDS = re.compile(r"карт\w*|перевод\w*|сбп|c2c|с2с")
_PREPOSITIONS: Final = _words("на с со по через в во от из к ко и")
_NOT_NAMES: Final = _words(
    """
    за от по на в во с со к ко и или из до для через у о об это тоже еще ещё уже вот а но
    оплата оплату оплаты оплатил оплатила оплатили оплачено оплачен оплачена
    доплата доплату доплатил доплатила предоплата предоплату остаток полная полностью
    часть частично рассрочка рассрочку курс курса курсу курсы пакет пакета тариф тарифа
    сумма сумму перевел перевела перевели поступление поступило пришло пришла пришел пришёл
    получено получила получил приход платеж платёж платежа чек скрин клиент клиентка клиента
    ученик ученица ученика мама папа мамы папы месяц месяца месяцев занятие занятия урок
    урока уроков модуль модуля продление абонемент группа группы подарок возврат итого всего
    скидка скидкой скидки комиссия комиссии
    руб рублей рубля р плательщик плательщика имя фио банк банка наличные наличными нал кэш
    paypal пейпал заказ заказа заказу от из for from payment paid order card bank transfer
    май мая мае июнь июня июне июль июля июле март марта марте
    """
)
_MONTH_STARTS: Final = (
    "январ",
    "феврал",
    "апрел",
    "август",
    "сентябр",
    "октябр",
    "ноябр",
    "декабр",
)


@dataclass(frozen=True)
class _Amount:
    value: Decimal
    currency: str | None
    marked: bool
    shown: str
    span: tuple[int, int]
    odd: bool = False  # written in a way no amount is ("0,001")


@dataclass(frozen=True)
class _Token:
    raw: str
    core: str  # without brackets and punctuation at the edges
    folded: str


def parse_payment_message(
    text: str, *, max_amount: Decimal = MAX_AMOUNT
) -> ManualPaymentText | Unreadable:
    """The payment a manager's message describes, or why it could not be read."""
    text = " ".join(text.translate(_SPACES).replace("\r", "").replace("\n", " , ").split())
    text = text.strip(" ,")
    if not text:
        return Unreadable("Пустое сообщение")
    if len(text) > MAX_LENGTH:
        return Unreadable("Слишком длинное сообщение: напишите сумму и имя плательщика")

    email, text = _take(_EMAIL, text)
    text = _CARD.sub(lambda card: "*" + card.group(0)[-4:], text)  # never keep a card number
    phone, text = _take(_PHONE, text)
    order_number, text = _take_order(text)

    amount = _choose_amount(text, max_amount=max_amount)
    if isinstance(amount, Unreadable):
        return amount
    text = _cut(text, amount.span)

    tokens = [_token(raw) for raw in text.split()]
    run = _name_run(tokens)
    if run is None:
        return Unreadable("Не нашла имя плательщика")
    start, end = run
    payer = " ".join(_payer_word(tokens[i]) for i in range(start, end))

    bank = None
    bank_transfer = card_transfer = False
    spent = set(range(start, end))
    if start > 0 and tokens[start - 1].folded in _PREPOSITIONS:
        spent.add(start - 1)  # "от Деминой Саши"
    for index, token in enumerate(tokens):
        if index in spent:
            continue
        found = _bank(token.folded)
        is_bank_word = token.folded in _BANK_TRANSFER_WORDS
        is_card_word = _CARD_WORDS.fullmatch(token.folded) is not None
        if found or is_bank_word or is_card_word:
            bank = bank or found
            bank_transfer |= is_bank_word
            card_transfer |= is_card_word
            spent.add(index)
            if index > 0 and tokens[index - 1].folded in _PREPOSITIONS:
                spent.add(index - 1)
    method = (
        TransferMethod.BANK_TRANSFER
        if bank_transfer
        else TransferMethod.CARD_TRANSFER
        if card_transfer or bank
        else None
    )
    return ManualPaymentText(
        amount=amount.value,
        currency=amount.currency or "RUB",
        payer=payer,
        method=method,
        bank=bank,
        order_number=order_number,
        comment=_comment([t for i, t in enumerate(tokens) if i not in spent]),
        payer_phone=normalize_phone(phone) if phone else None,
        payer_email=normalize_email(email),
    )


def _cut(text: str, span: tuple[int, int]) -> str:
    """``text`` without ``span``; a lone comma marks the gap, so that words on both sides of
    an amount never join into one name."""
    return f"{text[: span[0]]} , {text[span[1] :]}"


def _take(pattern: re.Pattern[str], text: str) -> tuple[str | None, str]:
    match = pattern.search(text)
    if match is None:
        return None, text
    return match.group(0), _cut(text, match.span())


def _take_order(text: str) -> tuple[str | None, str]:
    """The order number and ``text`` without it; a bare ``№``/``#`` after «карта», «счёт»,
    «договор» or «телефон» numbers something else and stays in the text."""
    for match in _ORDER.finditer(text):
        if match.group(2):
            before = text[: match.start()].split()
            if before and before[-1].casefold().startswith(_NOT_ORDER_WORDS):
                continue
        return match.group(1) or match.group(2), _cut(text, match.span())
    return None, text


def _choose_amount(text: str, *, max_amount: Decimal) -> _Amount | Unreadable:
    found = [_amount(match) for match in _AMOUNT.finditer(text)]
    if not found:
        digits = next(
            (
                word
                for word in text.split()
                if any(c.isdigit() for c in word)
                and not word.startswith("*")  # a masked card
                and not _DATE_OR_TIME.fullmatch(word)
            ),
            None,
        )
        unclear = (digits or "").strip(_EDGE_PUNCTUATION)
        if unclear and len(unclear) <= 12:  # a long string of digits is an account, not an amount
            return Unreadable(f"Не поняла сумму: {unclear}")
        return Unreadable("Не нашла сумму")
    marked = [amount for amount in found if amount.marked]
    if len(marked) == 1:
        chosen = marked[0]
    elif len({(amount.value, amount.currency) for amount in found}) == 1:
        chosen = found[0]
    else:
        candidates = [amount.shown for amount in (marked or found)]
        if len(candidates) == 2:
            return Unreadable(f"Две суммы: {candidates[0]} и {candidates[1]} — какая?")
        listed = ", ".join(candidates[:-1])
        return Unreadable(f"Несколько сумм: {listed} и {candidates[-1]} — какая?")
    if chosen.odd:
        return Unreadable(f"Не поняла сумму: {chosen.shown}")
    if chosen.value <= 0:
        return Unreadable("Сумма должна быть больше нуля")
    if chosen.value > max_amount:
        return Unreadable(f"Слишком большая сумма: {chosen.shown}")
    return chosen


def _amount(match: re.Match[str]) -> _Amount:
    number = match["num"].replace(" ", "")
    parts = re.split(r"[.,]", number)
    odd = False
    if len(parts) > 1 and len(parts[-1]) <= 2:
        value = Decimal("".join(parts[:-1]) + "." + parts[-1])
    else:
        value = Decimal("".join(parts))
        # "2.500" groups thousands; "0,001" cannot (no number starts with a zero group)
        odd = len(parts) > 1 and parts[0].startswith("0")
    if match["mult"]:
        value *= 1000
    if match["sign"] in ("-", "−"):
        value = -value
    currencies = {_currency(match[group]) for group in ("pre", "post") if match[group]}
    currency = currencies.pop() if len(currencies) == 1 else None
    return _Amount(
        value=value.quantize(_KOPECK),
        currency=currency,
        marked=bool(match["pre"] or match["post"] or match["mult"]),
        shown=(match["sign"] or "") + match["num"],
        span=match.span(),
        odd=odd,
    )


def _currency(mark: str) -> str:
    folded = mark.strip().casefold()
    for starts, code in _CURRENCY_BY_START:
        if folded.startswith(starts):
            return code
    return "RUB"  # pragma: no cover - the pattern admits only the marks above


def _token(raw: str) -> _Token:
    core = raw.strip(_EDGE_PUNCTUATION)
    return _Token(raw=raw, core=core, folded=core.casefold())


def _payer_word(token: _Token) -> str:
    return token.raw.strip(",;:()[]{}«»\"'") if _is_initials(token) else token.core


def _is_initials(token: _Token) -> bool:
    """``А.``, ``А.С.``, or a single capital letter (``Демин А``)."""
    bare = token.raw.strip(",;:()[]{}«»\"'")
    return _INITIALS.fullmatch(bare) is not None or (len(bare) == 1 and bare.isupper())


def _is_name_word(token: _Token) -> bool:
    if not _NAME_WORD.fullmatch(token.core) or len(token.core) < 2:
        return False
    folded = token.folded
    if folded in _NOT_NAMES or folded in _BANK_TRANSFER_WORDS or folded.startswith(_MONTH_STARTS):
        return False
    return _bank(folded) is None and _CARD_WORDS.fullmatch(folded) is None


def _name_run(tokens: list[_Token]) -> tuple[int, int] | None:
    """``(start, end)`` of the payer's words in ``tokens``, or None when there are none.

    A run is up to three name words and initials, four tokens in all; after a capitalised first
    word a lowercase word is taken only as the second word (``Демин саша``), so that a comment
    after a full name (``Демин Саша английский``) stays a comment; a capitalised word ends a
    lowercase run (``за английский Демин Саша``). Of several runs the first
    capitalised one with two words or more wins, then the first capitalised one, then the first
    with two words or more, then the first.
    """
    runs: list[tuple[int, int, int, bool]] = []
    start = 0
    while start < len(tokens):
        found = _run_at(tokens, start)
        if found is None:
            start += 1
            continue
        end, words, capitalised = found
        runs.append((start, end, words, capitalised))
        start = end
    for wanted in (
        lambda words, capitalised: capitalised and words >= 2,
        lambda words, capitalised: capitalised,
        lambda words, capitalised: words >= 2,
        lambda words, capitalised: True,
    ):
        for start, end, words, capitalised in runs:
            if wanted(words, capitalised):
                return start, end
    return None


def _run_at(tokens: list[_Token], start: int) -> tuple[int, int, bool] | None:
    """``(end, name words, first word capitalised)`` of a run starting at ``start``, if any."""
    if not (_is_name_word(tokens[start]) or _is_initials(tokens[start])):
        return None
    end, words = start, 0
    first_upper = False
    while end < len(tokens) and end - start < 4:
        token = tokens[end]
        if end > start and token.raw.startswith(("(", "[", "«")):
            break
        if _is_name_word(token):
            upper = token.core[0].isupper()
            if words == 0:
                first_upper = upper
            elif words == 3 or (upper != first_upper and (upper or words >= 2)):
                break
            words += 1
        elif not _is_initials(token):
            break
        end += 1
        if token.raw.endswith((",", ";", ":", ")", "]", "»")):
            break
    return (end, words, first_upper) if words else None


def _bank(folded: str) -> str | None:
    for pattern, name in _BANKS:
        if pattern.fullmatch(folded):
            return name
    return None


def _comment(tokens: list[_Token]) -> str | None:
    dashes = "-—–"
    words = [token.raw for token in tokens if token.raw.strip(_EDGE_PUNCTUATION + dashes)]
    while words and words[-1].strip(_EDGE_PUNCTUATION).casefold() in _PREPOSITIONS:
        words.pop()
    text = " ".join(words).strip(" ,;:" + dashes)
    return text or None
