"""W12 metrics on known fixtures: known numbers, and "no data" (None), never 0, when empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schoolsync.reconciliation.metrics import (
    NO_DATA,
    NO_MANAGER,
    Metric,
    MoneyFact,
    OrderFact,
    Question,
    csat,
    csi,
    fcr,
    median,
    money_by_source,
    nps,
    order_metrics,
    percentile,
    session_metrics,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_nps_of_the_handbooks_answers_is_zero() -> None:
    # 2 promoters (10, 9), 2 detractors (6, 0) of 6
    assert nps([10, 9, 8, 7, 6, 0]) == Metric(0.0, 6)
    assert nps([10, 10, 9, 0]).value == pytest.approx(50.0)
    assert nps([11, -1]) == NO_DATA  # outside 0..10: not counted


def test_csat_is_the_share_of_fours_and_fives() -> None:
    assert csat([5, 4, 3, 1]) == Metric(50.0, 4)
    assert csat([0, 6]) == NO_DATA


@pytest.mark.parametrize("metric", [nps, csat, fcr, median])
def test_no_input_is_no_data_not_zero(metric: object) -> None:
    found = metric([])  # type: ignore[operator]
    assert found.value is None and found.count == 0 and not found.has_data
    assert found.text() == "нет данных"


def test_median_and_p90_on_a_known_list() -> None:
    values = [float(n) for n in range(1, 11)]
    assert median(values) == Metric(5.5, 10)
    assert percentile(values, 90).value == pytest.approx(9.1)
    assert percentile(values, 50).value == pytest.approx(5.5)
    assert percentile([7.0], 90) == Metric(7.0, 1)
    assert percentile([], 90) == NO_DATA
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_csi_is_the_weighted_average_of_the_questions_on_their_scales() -> None:
    questions = {"quality": Question(weight=2, low=1, high=5), "score": Question(low=0, high=10)}
    responses = [
        {"quality": 5, "score": 10},  # 1.0 and 1.0
        {"quality": 1, "score": 5},  # 0.0 and 0.5
        {"quality": "не помню"},  # no number: left out
        {"other": 3},
    ]
    # quality mean 0.5 (weight 2), score mean 0.75 (weight 1): (1.0 + 0.75) / 3
    assert csi(responses, questions).value == pytest.approx(100 * 1.75 / 3)
    assert csi(responses, questions).count == 2
    assert csi([{"other": 3}], questions) == NO_DATA


def test_fcr_reads_yes_and_no_answers() -> None:
    assert fcr(["Да", "нет", "да.", True, "не знаю", None]) == Metric(75.0, 4)


def test_orders_conversion_and_first_touch_per_manager() -> None:
    def order(
        n: int, manager: str | None, status: str, touch_min: int | None, paid: bool
    ) -> OrderFact:
        return OrderFact(
            number=str(n),
            created_at=T0,
            status=status,
            manager=manager,
            status_changed_at=T0 + timedelta(minutes=touch_min) if touch_min is not None else T0,
            status_changed_after_arrival=touch_min is not None,
            paid=paid,
        )

    found = order_metrics(
        [
            order(1, "anna@school.ru", "in_work", 10, False),
            order(2, "anna@school.ru", "payed", 20, True),
            order(3, "anna@school.ru", "new", None, False),  # a manager set: taken into work
            order(4, "boris@school.ru", "payed", 30, True),
            order(5, None, "new", None, False),  # nobody touched it
            order(6, None, "payed", None, True),  # arrived paid: no first touch to measure
        ]
    )

    assert (found.received, found.taken, found.paid) == (6, 5, 3)
    anna = found.by_manager["anna@school.ru"]
    assert (anna.received, anna.taken, anna.paid) == (3, 3, 1)
    assert anna.conversion.value == pytest.approx(100 / 3)
    assert found.by_manager["boris@school.ru"].conversion == Metric(100.0, 1)
    nobody = found.by_manager[NO_MANAGER]
    assert (nobody.received, nobody.taken, nobody.paid) == (2, 1, 1)
    assert found.first_touch_median_min == Metric(20.0, 3)
    assert found.first_touch_p90_min.value == pytest.approx(28.0)
    assert order_metrics([]).conversion == NO_DATA


def test_money_is_summed_per_source_and_currency() -> None:
    found = money_by_source(
        [
            MoneyFact("yookassa", 150000, "RUB"),
            MoneyFact("yookassa", 50000, "RUB"),
            MoneyFact("paypal", 3000, "USD"),
        ]
    )
    assert [(k, v.amount_minor, v.count) for k, v in found.items()] == [
        (("paypal", "USD"), 3000, 1),
        (("yookassa", "RUB"), 200000, 2),
    ]


def test_sessions_without_a_source_are_no_data() -> None:
    assert session_metrics(None).held == NO_DATA
    counted = session_metrics(["held", "held", "cancelled"])
    assert counted.held == Metric(2.0, 3) and counted.rescheduled == Metric(0.0, 3)


def test_fcr_reads_a_checkbox_column_of_ones_and_zeros() -> None:
    from schoolsync.reconciliation.metrics import fcr

    # a form's checkbox column, as the report reads it (numbers) or as text
    assert fcr([1.0, 0.0, 1.0, 1.0]).value == 75.0
    assert fcr(["1", "0"]).value == 50.0
    assert fcr([2.0, None]).value is None  # not a yes/no answer: left out, no data
