from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schoolsync.mappings.manual_payments import (
    ManualPaymentText,
    TransferMethod,
    Unreadable,
    parse_payment_message,
)

CARD = TransferMethod.CARD_TRANSFER
BANK = TransferMethod.BANK_TRANSFER


@pytest.mark.parametrize(
    ("text", "amount", "payer"),
    [
        ("2500 Демин Саша", "2500", "Демин Саша"),
        ("2 500 р. Саша Демина", "2500", "Саша Демина"),
        ("2500₽ Демин А. сбер", "2500", "Демин А."),
        ("1500,50 руб Иванова Юлия (тинькофф) заказ 12345", "1500.50", "Иванова Юлия"),
        ("Демин Саша 2500", "2500", "Демин Саша"),
        ("+2500 Демин Саша", "2500", "Демин Саша"),
        ("2.500 Демин", "2500", "Демин"),
        ("2500.00 RUB Ivanov Ivan", "2500", "Ivanov Ivan"),
        ("2\u00a0500 ₽ Демин Саша", "2500", "Демин Саша"),
        ("2500 рублей Демин Саша", "2500", "Демин Саша"),
        ("2500р Демин Саша", "2500", "Демин Саша"),
        ("2,5к Демин Саша на карту", "2500", "Демин Саша"),
        ("2.5 тыс Демин", "2500", "Демин"),
        ("15 000 Иванова Юлия Ивановна остаток", "15000", "Иванова Юлия Ивановна"),
        ("1 500 000 руб ООО Ромашка", "1500000", "ООО Ромашка"),
        ("2500 демин саша", "2500", "демин саша"),
        ("Демин саша 2500 за март", "2500", "Демин саша"),
        ("2500 от Деминой Саши, предоплата за курс", "2500", "Деминой Саши"),
        ("Саша Демина — 2 500 ₽", "2500", "Саша Демина"),
        ("Оплата 2 500 руб. от Демина Саши заказ №12345 сбер", "2500", "Демина Саши"),
        ("3000 руб Петрова-Водкина М.С. втб", "3000", "Петрова-Водкина М.С."),
        ("2500 (Демин Саша) сбп", "2500", "Демин Саша"),
        ("оплатила за английский Демин Саша 2500", "2500", "Демин Саша"),
        ("Английский 2500 Демин Саша", "2500", "Демин Саша"),
        ("2500 Демин Саша 12.03.2024", "2500", "Демин Саша"),
        ("2500 Демин Саша, 12:30", "2500", "Демин Саша"),
        ("10% скидка 2500 Демин", "2500", "Демин"),
        ("1.500,50 Демин Саша", "1500.50", "Демин Саша"),
        ("1,500 Демин Саша", "1500", "Демин Саша"),
        ("2500\nДемин Саша", "2500", "Демин Саша"),
        ("2500 Демин Саша 2500", "2500", "Демин Саша"),
        ("2500 Демин Саша карта *4417", "2500", "Демин Саша"),
    ],
)
def test_reads_amount_and_payer(text: str, amount: str, payer: str) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert result.amount == Decimal(amount)
    assert result.amount.as_tuple().exponent == -2  # kopecks exact
    assert result.payer == payer


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("2500 Демин Саша", "RUB"),
        ("2500₽ Демин Саша", "RUB"),
        ("2500.00 RUB Ivanov Ivan", "RUB"),
        ("$50 Smith John", "USD"),
        ("50 USD Smith John", "USD"),
        ("50 долларов Смит Джон", "USD"),
        ("€20 Müller Hans", "EUR"),
        ("20 EUR Müller Hans", "EUR"),
        ("20 евро Мюллер Ганс", "EUR"),
    ],
)
def test_currency(text: str, currency: str) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert result.currency == currency


def test_the_issue_examples_in_full() -> None:
    assert parse_payment_message(
        "1500,50 руб Иванова Юлия (тинькофф) заказ 12345"
    ) == ManualPaymentText(
        amount=Decimal("1500.50"),
        currency="RUB",
        payer="Иванова Юлия",
        method=CARD,
        bank="Т-Банк",
        order_number="12345",
        comment=None,
    )
    assert parse_payment_message("2500₽ Демин А. сбер") == ManualPaymentText(
        amount=Decimal("2500.00"), currency="RUB", payer="Демин А.", method=CARD, bank="Сбербанк"
    )
    assert parse_payment_message("2500 Демин Саша") == ManualPaymentText(
        amount=Decimal("2500.00"), currency="RUB", payer="Демин Саша"
    )


@pytest.mark.parametrize(
    ("text", "bank"),
    [
        ("2500 Демин сбер", "Сбербанк"),
        ("2500 Демин на сбербанк", "Сбербанк"),
        ("2500 Демин Сбера", "Сбербанк"),
        ("2500 Демин тинькофф", "Т-Банк"),
        ("2500 Демин тинек", "Т-Банк"),
        ("2500 Демин Т-Банк", "Т-Банк"),
        ("2500 Демин tinkoff", "Т-Банк"),
        ("2500 Демин альфа", "Альфа-Банк"),
        ("2500 Демин ВТБ", "ВТБ"),
        ("2500 Демин озон", "Озон Банк"),
        ("2500 Демин райф", "Райффайзенбанк"),
    ],
)
def test_bank_names(text: str, bank: str) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert (result.bank, result.method, result.payer, result.comment) == (bank, CARD, "Демин", None)


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("2500 Демин Саша", None),
        ("2500 Демин Саша перевод на карту", CARD),
        ("2500 Демин Саша сбп", CARD),
        ("2500 Демин Саша на р/с", BANK),
        ("2500 Демин Саша безнал", BANK),
        ("2500 Демин Саша платёжкой по счёту", BANK),
        ("2500 Демин Саша перевод на р/с тинькофф", BANK),
    ],
)
def test_method_hint(text: str, method: TransferMethod | None) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert result.method == method
    assert result.comment is None


@pytest.mark.parametrize(
    ("text", "order_number"),
    [
        ("2500 Демин Саша заказ 12345", "12345"),
        ("2500 Демин Саша заказ №12345", "12345"),
        ("2500 Демин Саша по заказу № 12345", "12345"),
        ("2500 Демин Саша №12345", "12345"),
        ("2500 Демин Саша #12345", "12345"),
        ("#12345 2500 Демин Саша", "12345"),
        ("2500 Демин Саша карта №4417", None),
    ],
)
def test_order_number_is_not_an_amount(text: str, order_number: str | None) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert (result.amount, result.order_number) == (Decimal("2500"), order_number)


def test_comment_is_the_rest() -> None:
    result = parse_payment_message("2500 Демин Саша за март, остаток по рассрочке")
    assert isinstance(result, ManualPaymentText)
    assert result.comment == "за март, остаток по рассрочке"
    result = parse_payment_message("Английский 2500 Демин Саша")
    assert isinstance(result, ManualPaymentText)
    assert result.comment == "Английский"


def test_phone_and_email_are_taken_out_and_normalised() -> None:
    result = parse_payment_message("Демин Саша 8 (923) 123-45-67 2500 руб Sasha@Mail.ru")
    assert isinstance(result, ManualPaymentText)
    assert result.amount == Decimal("2500")
    assert result.payer == "Демин Саша"
    assert result.payer_phone == "+79231234567"
    assert result.payer_email == "sasha@mail.ru"
    assert result.comment is None


@pytest.mark.parametrize(
    ("text", "phone", "comment"),
    [
        ("2500 Демин 9231234567", "+79231234567", None),
        ("2500 Демин +7 (923) 123-45-67", "+79231234567", None),
        ("2500 Демин 4276 1234 5678 9012", None, "*9012"),  # a card number is never kept
        ("2500 Демин 4276123456789012", None, "*9012"),
        ("2500 Демин 40817810255001234567", None, "40817810255001234567"),  # an account
    ],
)
def test_long_numbers_are_not_amounts(text: str, phone: str | None, comment: str | None) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), result
    assert (result.amount, result.payer) == (Decimal("2500"), "Демин")
    assert (result.payer_phone, result.comment) == (phone, comment)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Пустое сообщение"),
        ("   \n ", "Пустое сообщение"),
        ("Демин Саша", "Не нашла сумму"),
        ("привет, как дела?", "Не нашла сумму"),
        ("Демин Саша 12.03.2024", "Не нашла сумму"),
        ("2500", "Не нашла имя плательщика"),
        ("2500 ₽", "Не нашла имя плательщика"),
        ("2500 за курс", "Не нашла имя плательщика"),
        ("2500 сбер перевод", "Не нашла имя плательщика"),
        ("2500 3000 Демин Саша", "Две суммы: 2500 и 3000 — какая?"),
        ("2500 руб 3000 руб Демин", "Две суммы: 2500 и 3000 — какая?"),
        ("2500 1500 800 Демин", "Несколько сумм: 2500, 1500 и 800 — какая?"),
        ("2500 Демин Саша 12.03", "Две суммы: 2500 и 12.03 — какая?"),
        ("0 Демин Саша", "Сумма должна быть больше нуля"),
        ("-2500 Демин Саша", "Сумма должна быть больше нуля"),
        ("2500,555 Демин", "Не поняла сумму: 2500,555"),
        ("0,001 руб Демин Саша", "Не поняла сумму: 0,001"),
        ("Демин 8 923 123 45 67", "Не нашла сумму"),  # a phone is not echoed back
        ("Демин 40817810255001234567", "Не нашла сумму"),
        ("50 000 000 Демин Саша", "Слишком большая сумма: 50 000 000"),
        (
            "2500 Демин " + "очень " * 100,
            "Слишком длинное сообщение: напишите сумму и имя плательщика",
        ),
    ],
)
def test_unreadable_says_what_it_could_not_read(text: str, reason: str) -> None:
    assert parse_payment_message(text) == Unreadable(reason)


_NAMES = st.sampled_from(["Демин Саша", "Иванова Юлия", "Петрова-Водкина М.С.", "Ivanov Ivan"])


def _written(amount: Decimal, style: int) -> str:
    whole, _, kopecks = f"{amount:.2f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", " ")
    return [
        f"{whole},{kopecks}",
        f"{whole}.{kopecks}",
        f"{grouped},{kopecks} руб.",
        f"{grouped} ₽" if kopecks == "00" else f"{grouped},{kopecks} ₽",
    ][style]


@settings(max_examples=300, deadline=None)
@given(
    cents=st.integers(min_value=1, max_value=999_999_99),
    style=st.integers(min_value=0, max_value=3),
    name=_NAMES,
    amount_first=st.booleans(),
)
def test_amount_and_name_in_any_order_round_trip(
    cents: int, style: int, name: str, amount_first: bool
) -> None:
    amount = Decimal(cents) / 100
    written = _written(amount, style)
    text = f"{written} {name}" if amount_first else f"{name} {written}"
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText), (text, result)
    assert (result.amount, result.payer) == (amount, name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_never_raises(text: str) -> None:
    result = parse_payment_message(text)
    assert isinstance(result, ManualPaymentText | Unreadable)
    if isinstance(result, ManualPaymentText):
        assert result.amount > 0
        assert result.payer
