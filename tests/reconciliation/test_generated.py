"""The issue's figures on generated data with known truth (the 100k run is ``bench/reconcile.py``)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from schoolsync.reconciliation.engine import reconcile
from schoolsync.reconciliation.models import ReconcileResult, VerdictKind
from schoolsync.reconciliation.rules import ReconcileRules
from tests.reconciliation.generate import Dataset, generate, score


@pytest.fixture(scope="module")
def data() -> Dataset:
    return generate(10_000, seed=7)


@pytest.fixture(scope="module")
def result(data: Dataset) -> ReconcileResult:
    return reconcile(data.orders, data.payments, ReconcileRules(), data.now)


def test_ten_thousand_by_ten_thousand_meets_the_issue(
    data: Dataset, result: ReconcileResult
) -> None:
    assert (len(data.orders), len(data.payments)) == (10_000, 10_000)
    figures = score(result, data.truth)
    assert figures.automatic > 8_500
    assert figures.precision >= 0.999, figures
    assert figures.recall >= 0.97, figures


def test_every_payment_has_exactly_one_verdict(data: Dataset, result: ReconcileResult) -> None:
    seen = Counter(p for verdict in result.verdicts for p in verdict.payment_ids)
    assert set(seen) == {p.payment_id for p in data.payments}
    assert set(seen.values()) == {1}
    orders = {o.order_id for o in data.orders}
    for verdict in result.verdicts:
        assert set(verdict.order_ids) <= orders and set(verdict.candidates) <= orders
        assert verdict.payment_ids or verdict.kind is VerdictKind.UNPAID_ORDER
        assert verdict.explanation and 0 <= verdict.score <= 1


def test_every_verdict_kind_occurs_and_mostly_as_expected(
    data: Dataset, result: ReconcileResult
) -> None:
    kinds = Counter(verdict.kind for verdict in result.verdicts)
    assert set(kinds) == set(VerdictKind)
    agree = sum(
        result.for_payment(p).kind is kind  # type: ignore[union-attr]
        for p, kind in data.truth.expected.items()
    )
    assert agree / len(data.truth.expected) > 0.96
    unpaid = {o for v in result.verdicts if v.kind is VerdictKind.UNPAID_ORDER for o in v.order_ids}
    maybe_paid = {
        o for v in result.verdicts if v.kind is VerdictKind.AMBIGUOUS for o in v.candidates
    }
    assert data.truth.unpaid_orders <= unpaid | maybe_paid  # a candidate is not "no money"
    assert len(data.truth.unpaid_orders & unpaid) > 0.9 * len(data.truth.unpaid_orders)


def test_shuffled_generated_input_gives_the_same_verdicts() -> None:
    data = generate(3_000, seed=11)
    first = reconcile(data.orders, data.payments, ReconcileRules(), data.now)
    rnd = random.Random(3)
    orders, payments = list(data.orders), list(data.payments)
    rnd.shuffle(orders)
    rnd.shuffle(payments)
    assert reconcile(orders, payments, ReconcileRules(), data.now).verdicts == first.verdicts


def test_the_generator_is_deterministic() -> None:
    one, two = generate(500, seed=3), generate(500, seed=3)
    assert one.orders == two.orders and one.payments == two.payments
    assert one.truth.orders_of == two.truth.orders_of
    assert generate(500, seed=4).payments != one.payments
