"""W12 metrics: orders, first touch, conversion, money, refunds, sessions, NPS, CSAT, CSI, FCR.

Pure: the caller reads the store and hands facts in; nothing here does I/O. Every metric is a
:class:`Metric`: its value and the count it was computed from. A metric with nothing to compute
from has ``value = None`` ("no data"), never 0.

What the order mirror gives and how it is read (``orders`` keeps only the current status):

- *received*: orders created in the period; *taken into work*: of those, the ones whose status
  is no longer ``new``, or that have a manager;
- *time to first touch*: ``status_changed_at - created_at`` of received orders whose status was
  changed after they arrived (``status_origin`` set) and is no longer ``new``. The mirror keeps
  only the time of the *latest* change, so for an order that moved on further (paid, say) this
  is an upper bound of its first touch; for one still in its first status after ``new`` it is
  exact;
- *paid*: of the received orders, those marked paid on the platform or holding a matched payment
  in the ledger; *conversion* = paid / taken into work, per manager.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

NO_MANAGER = "—"  # orders nobody was assigned to
NEW = "new"
YES_WORDS = frozenset({"да", "yes", "y", "1", "true", "решён", "решен", "решено"})
NO_WORDS = frozenset({"нет", "no", "n", "0", "false", "не решён", "не решен", "не решено"})


@dataclass(frozen=True)
class Metric:
    """A value and the count it was computed from; ``value is None``: no data."""

    value: float | None
    count: int

    @property
    def has_data(self) -> bool:
        return self.value is not None

    def text(self, *, digits: int = 1, unit: str = "", none: str = "нет данных") -> str:
        if self.value is None:
            return none
        return f"{self.value:.{digits}f}{unit}"


NO_DATA = Metric(None, 0)


def _share(hits: int, total: int) -> Metric:
    """``hits / total`` in percent."""
    return Metric(100.0 * hits / total, total) if total else NO_DATA


# --- distributions -----------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> Metric:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks (the
    rank of ``q`` is ``q/100 * (n - 1)``, as numpy's default): [1..10] gives 5.5 at 50 and
    9.1 at 90.

    Raises:
        ValueError: ``q`` is outside 0..100.
    """
    if not 0 <= q <= 100:
        raise ValueError("q is a percentile between 0 and 100")
    data = sorted(values)
    if not data:
        return NO_DATA
    rank = q / 100 * (len(data) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return Metric(data[low] + (data[high] - data[low]) * (rank - low), len(data))


def median(values: Iterable[float]) -> Metric:
    data = list(values)
    return Metric(float(statistics.median(data)), len(data)) if data else NO_DATA


# --- satisfaction ------------------------------------------------------------------------------


def nps(scores: Iterable[int]) -> Metric:
    """Net Promoter Score on 0-10 answers: % promoters (9-10) minus % detractors (0-6).
    Answers outside 0..10 are not counted. [10, 9, 8, 7, 6, 0] gives 0.0."""
    valid = [s for s in scores if 0 <= s <= 10]
    if not valid:
        return NO_DATA
    promoters = sum(1 for s in valid if s >= 9)
    detractors = sum(1 for s in valid if s <= 6)
    return Metric(100.0 * (promoters - detractors) / len(valid), len(valid))


def csat(scores: Iterable[int]) -> Metric:
    """Customer satisfaction on 1-5 answers: the share of 4 and 5, in %. Answers outside 1..5
    are not counted. [5, 4, 3, 1] gives 50.0."""
    valid = [s for s in scores if 1 <= s <= 5]
    return _share(sum(1 for s in valid if s >= 4), len(valid))


@dataclass(frozen=True)
class Question:
    """A satisfaction question of the CSI: its weight and its answer scale."""

    weight: float = 1.0
    low: float = 1.0
    high: float = 5.0


def csi(responses: Iterable[Mapping[str, object]], questions: Mapping[str, Question]) -> Metric:
    """Customer Satisfaction Index: the weighted average, over the configured ``questions``, of
    each question's mean answer scaled to 0..1 on its own scale, in %. Answers outside a
    question's scale (and answers that are no number) are left out; a question nobody answered drops out of the weights. The
    count is the number of responses that answered at least one of the questions."""
    sums: dict[str, list[float]] = {name: [] for name in questions}
    answered = 0
    for response in responses:
        any_answer = False
        for name, question in questions.items():
            value = response.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue  # unanswered, or not a number
            if not question.low <= value <= question.high:
                continue
            span = question.high - question.low
            sums[name].append((value - question.low) / span if span else 1.0)
            any_answer = True
        answered += any_answer
    used = {n: statistics.fmean(v) for n, v in sums.items() if v and questions[n].weight > 0}
    weight = sum(questions[n].weight for n in used)
    if not used or weight <= 0:
        return NO_DATA
    return Metric(100.0 * sum(questions[n].weight * m for n, m in used.items()) / weight, answered)


def yes_no(answer: str | float | bool | None) -> bool | None:
    """A yes/no survey answer as a bool (1 and 0 too, as a form's checkbox column gives them);
    ``None`` for anything else (left out)."""
    if isinstance(answer, bool) or answer is None:
        return answer
    if isinstance(answer, int | float):
        return {1: True, 0: False}.get(int(answer)) if answer in (0, 1) else None
    folded = str(answer).strip().casefold().rstrip(".!")
    if folded in ("1", "1.0"):
        return True
    if folded in ("0", "0.0"):
        return False
    if folded in YES_WORDS:
        return True
    if folded in NO_WORDS:
        return False
    return None


def fcr(answers: Iterable[str | float | bool | None]) -> Metric:
    """First Contact Resolution: the share of answers saying the question was resolved at the
    first contact, in %, over the yes/no answers (see :func:`yes_no`)."""
    read = [a for a in (yes_no(x) for x in answers) if a is not None]
    return _share(sum(read), len(read))


# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFact:
    """What the mirror knows of one order (see the module docstring)."""

    number: str
    created_at: datetime
    status: str
    manager: str | None = None
    status_changed_at: datetime | None = None
    status_changed_after_arrival: bool = False
    paid: bool = False

    @property
    def taken(self) -> bool:
        return self.status != NEW or bool(self.manager)

    @property
    def first_touch_min(self) -> float | None:
        if (
            self.status == NEW
            or not self.status_changed_after_arrival
            or self.status_changed_at is None
        ):
            return None
        return max(0.0, (self.status_changed_at - self.created_at).total_seconds() / 60)


@dataclass(frozen=True)
class ManagerStats:
    received: int
    taken: int
    paid: int

    @property
    def conversion(self) -> Metric:
        """paid / taken into work, in %."""
        return _share(self.paid, self.taken)


@dataclass(frozen=True)
class OrderMetrics:
    received: int
    taken: int
    paid: int
    first_touch_median_min: Metric
    first_touch_p90_min: Metric
    by_manager: dict[str, ManagerStats] = field(default_factory=dict)

    @property
    def conversion(self) -> Metric:
        return _share(self.paid, self.taken)


def order_metrics(orders: Iterable[OrderFact]) -> OrderMetrics:
    """Received, taken into work and paid, in total and per manager (``NO_MANAGER`` for none),
    with the median and 90th percentile of the time to first touch in minutes."""
    counts: dict[str, list[int]] = {}
    touches: list[float] = []
    for order in orders:
        row = counts.setdefault(order.manager or NO_MANAGER, [0, 0, 0])
        row[0] += 1
        row[1] += order.taken
        row[2] += order.paid and order.taken
        touch = order.first_touch_min
        if touch is not None:
            touches.append(touch)
    by_manager = {m: ManagerStats(*row) for m, row in sorted(counts.items())}
    return OrderMetrics(
        received=sum(s.received for s in by_manager.values()),
        taken=sum(s.taken for s in by_manager.values()),
        paid=sum(s.paid for s in by_manager.values()),
        first_touch_median_min=median(touches),
        first_touch_p90_min=percentile(touches, 90),
        by_manager=by_manager,
    )


def orders_by_day(
    orders: Iterable[OrderFact], days: Sequence[str], tz: tzinfo
) -> list[OrderMetrics]:
    """:func:`order_metrics` per day (``days``: ISO dates in the zone ``tz``)."""
    grouped: dict[str, list[OrderFact]] = {day: [] for day in days}
    for order in orders:
        day = order.created_at.astimezone(tz).date().isoformat()
        if day in grouped:
            grouped[day].append(order)
    return [order_metrics(grouped[day]) for day in days]


# --- money -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoneyFact:
    """A payment (or a refund) that counts: its source, amount in minor units and currency."""

    source: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Total:
    amount_minor: int
    count: int


def money_by_source(items: Iterable[MoneyFact]) -> dict[tuple[str, str], Total]:
    """Sum and count per (source, currency), sorted by source."""
    sums: dict[tuple[str, str], list[int]] = {}
    for item in items:
        row = sums.setdefault((item.source, item.currency), [0, 0])
        row[0] += item.amount_minor
        row[1] += 1
    return {key: Total(*row) for key, row in sorted(sums.items())}


def money_by_currency(items: Iterable[MoneyFact]) -> dict[str, Total]:
    sums: dict[str, list[int]] = {}
    for item in items:
        row = sums.setdefault(item.currency, [0, 0])
        row[0] += item.amount_minor
        row[1] += 1
    return {key: Total(*row) for key, row in sorted(sums.items())}


# --- sessions ----------------------------------------------------------------------------------

HELD, RESCHEDULED, CANCELLED = "held", "rescheduled", "cancelled"


@dataclass(frozen=True)
class SessionMetrics:
    held: Metric
    rescheduled: Metric
    cancelled: Metric


def session_metrics(outcomes: Iterable[str] | None) -> SessionMetrics:
    """Lessons or sessions held, rescheduled and cancelled; ``None`` (no source provides them)
    gives "no data" for all three, an empty list gives zeros (a source said: none)."""
    if outcomes is None:
        return SessionMetrics(NO_DATA, NO_DATA, NO_DATA)
    seen = list(outcomes)

    def count(kind: str) -> Metric:
        return Metric(float(sum(1 for o in seen if o == kind)), len(seen))

    return SessionMetrics(count(HELD), count(RESCHEDULED), count(CANCELLED))
