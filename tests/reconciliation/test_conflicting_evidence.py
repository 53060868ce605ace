"""Evidence that points two ways goes to a person: the review's findings, one ledger each."""

from __future__ import annotations

from schoolsync.reconciliation.models import VerdictKind
from schoolsync.reconciliation.rules import ReconcileRules
from tests.reconciliation.test_engine import DAY, HOUR, T0, manual, order, payment, run, verdict

# --- a manual payment removed as a double only on evidence at least as strong ------------------


def test_a_transfer_naming_another_order_is_not_a_double_of_the_one_its_amount_fits() -> None:
    orders = [
        order("1001", email="a@x.ru", amount=250_000),
        order("1002", email="a@x.ru", amount=490_000, at=T0 + HOUR),
    ]
    payments = [
        manual(
            "m1", "Демин Саша", email="a@x.ru", reference="Оплата заказа 1002", at=T0 + 2 * HOUR
        ),
        payment("a1", email="a@x.ru", reference="Заказ №1001", at=T0 + 26 * HOUR),
    ]
    result = run(orders, payments, now=T0 + 3 * DAY)
    assert (verdict(result, "a1").kind, verdict(result, "a1").order_ids) == (
        VerdictKind.MATCHED,
        ("1001",),
    )
    transfer = verdict(result, "m1")
    assert (transfer.kind, transfer.order_ids) == (VerdictKind.AMOUNT_MISMATCH, ("1002",))
    assert transfer.candidates == ("1002", "1001")
    assert "1001" in transfer.explanation


def test_an_order_number_beats_a_fit_by_email_to_another_order() -> None:
    orders = [
        order("1001", email="a@x.ru", amount=250_000),
        order("1002", email="a@x.ru", amount=490_000, at=T0 + HOUR),
    ]
    payments = [payment("p1", email="a@x.ru", reference="Оплата заказа №1002")]
    found = verdict(run(orders, payments), "p1")
    assert (found.kind, found.order_ids, found.rule) == (
        VerdictKind.AMOUNT_MISMATCH,
        ("1002",),
        "reference",
    )


def test_a_transfer_by_number_is_not_removed_for_an_automatic_payment_tied_by_name() -> None:
    orders = [order("1001", name="Александр Демин")]
    payments = [
        manual("m1", "Демин Саша", reference="1001", at=T0 + 2 * HOUR),
        payment("a1", name="ALEKSANDR DEMIN", at=T0 + 20 * HOUR),
    ]
    result = run(orders, payments, now=T0 + 3 * DAY)
    assert verdict(result, "a1").kind is VerdictKind.MATCHED
    transfer = verdict(result, "m1")
    assert (transfer.kind, transfer.candidates) == (VerdictKind.AMBIGUOUS, ("1001",))
    assert "a1" in transfer.explanation and "a person" in transfer.explanation
    within_grace = verdict(run(orders, payments, now=T0 + 21 * HOUR), "m1")
    assert within_grace.kind is VerdictKind.MATCHED
    assert "a person decides" in within_grace.explanation


def test_an_order_paid_by_a_transfer_is_not_free_for_a_tied_card_payment() -> None:
    orders = [
        order("1001", email="a@x.ru"),
        order("1002", email="a@x.ru", at=T0 + HOUR),
    ]
    payments = [
        manual("m1", "Демин Саша", reference="1001", at=T0 + 2 * HOUR),
        payment("a0", email="a@x.ru", reference="Заказ №1002", at=T0 + 3 * HOUR),
        payment("a1", email="a@x.ru", at=T0 + 30 * HOUR),
    ]
    result = run(orders, payments, now=T0 + 4 * DAY)
    assert (verdict(result, "m1").kind, verdict(result, "m1").order_ids) == (
        VerdictKind.MATCHED,
        ("1001",),
    )
    assert verdict(result, "a0").order_ids == ("1002",)
    tied = verdict(result, "a1")
    assert (tied.kind, set(tied.candidates)) == (VerdictKind.AMBIGUOUS, {"1001", "1002"})


def test_the_handbooks_double_by_the_same_order_number_is_still_removed() -> None:
    orders = [order("1001", email="a@x.ru", status="payed", manual=True)]
    payments = [
        manual("m1", "Демин Саша", reference="заказ 1001", at=T0 + 2 * HOUR),
        payment("a1", email="a@x.ru", reference="1001", at=T0 + 26 * HOUR),
    ]
    result = run(orders, payments, now=T0 + 3 * DAY)
    assert verdict(result, "m1").kind is VerdictKind.DUPLICATE_MANUAL


# --- a number in a reference is an order number only when it says so ---------------------------


def test_a_year_in_the_reference_is_not_an_order_number() -> None:
    orders = [
        order("2026", at=T0 - 40 * DAY),
        order("1001", email="a@x.ru", at=T0 + HOUR),
    ]
    payments = [payment("p1", email="a@x.ru", reference="Оплата за март 2026", at=T0 + 2 * HOUR)]
    found = verdict(run(orders, payments), "p1")
    assert (found.kind, found.order_ids, found.rule) == (VerdictKind.MATCHED, ("1001",), "email")


def test_a_count_of_lessons_is_not_an_order_number() -> None:
    orders = [order("2", at=T0 - 40 * DAY), order("1001", email="a@x.ru", at=T0 + HOUR)]
    payments = [payment("p1", email="a@x.ru", reference="за 2 урока", at=T0 + 2 * HOUR)]
    assert verdict(run(orders, payments), "p1").order_ids == ("1001",)


def test_an_order_number_holds_only_within_the_reference_window() -> None:
    orders = [order("4100123", at=T0 - 40 * DAY)]
    payments = [payment("p1", reference="Заказ №4100123")]
    found = verdict(run(orders, payments), "p1")
    assert (found.kind, found.candidates) == (VerdictKind.UNMATCHED_PAYMENT, ("4100123",))
    wide = ReconcileRules(reference_window_days=60)
    assert verdict(run(orders, payments, rules=wide), "p1").kind is VerdictKind.MATCHED
    recent = [order("4100123", at=T0 - 20 * DAY)]
    assert verdict(run(recent, payments), "p1").kind is VerdictKind.MATCHED


def test_an_order_number_against_the_payers_email_on_another_order_is_ambiguous() -> None:
    orders = [
        order("1001", email="a@x.ru"),
        order("1002", email="b@x.ru", at=T0 + HOUR),
    ]
    result = run(orders, [payment("p1", email="a@x.ru", reference="Оплата заказа №1002")])
    found = verdict(result, "p1")
    assert (found.kind, found.candidates) == (VerdictKind.AMBIGUOUS, ("1002", "1001"))


# --- a name never overrides a contact -----------------------------------------------------------


def test_a_payers_email_known_on_an_older_order_keeps_a_namesake_out() -> None:
    orders = [
        order("1001", email="c@x.ru", name="Иван Петров", at=T0 - 20 * DAY),
        order("1002", email="n@x.ru", name="Иван Петров"),
    ]
    robokassa = payment("p1", source="robokassa", email="c@x.ru", name="IVAN PETROV")
    found = verdict(run(orders, [robokassa]), "p1")
    assert (found.kind, found.candidates) == (VerdictKind.UNMATCHED_PAYMENT, ("1001",))


def test_a_name_match_is_refused_where_the_order_has_another_email_or_phone() -> None:
    orders = [order("1002", email="n@x.ru", phone="+79230000000", name="Иван Петров")]
    by_email = payment("p1", source="robokassa", email="c@x.ru", name="IVAN PETROV")
    by_phone = manual("p2", "Петров Иван", phone="+79231112233")
    result = run(orders, [by_email, by_phone])
    assert verdict(result, "p1").kind is VerdictKind.UNMATCHED_PAYMENT
    assert verdict(result, "p2").kind is VerdictKind.UNMATCHED_PAYMENT
    # the same name with no contact of its own, or one the order does not contradict, still fits
    result = run(
        [order("1002", email="n@x.ru", name="Иван Петров")],
        [manual("p3", "Петров Иван", phone="+79231112233")],
    )
    assert verdict(result, "p3").kind is VerdictKind.MATCHED


def test_a_contact_whose_rule_is_switched_off_neither_blocks_nor_refuses_a_name() -> None:
    orders = [
        order("1001", email="c@x.ru", name="Иван Петров", at=T0 - 20 * DAY),
        order("1002", email="n@x.ru", name="Иван Петров"),
    ]
    rules = ReconcileRules(match_by=("reference", "phone", "name"))
    found = verdict(run(orders, [manual("p1", "Петров Иван", email="c@x.ru")], rules=rules), "p1")
    assert (found.kind, found.order_ids, found.rule) == (VerdictKind.MATCHED, ("1002",), "name")
