"""Which orders a payment could pay, found through indexes, never by comparing all pairs.

Orders are indexed by id (for references), email, phone and surname: each surname form's
orders sorted by time, so a payment reads only those inside its date window, and each key
(``names.index_keys``: a form and its one-letter deletions) leads to the forms it finds. A
payment's candidates are the orders that share evidence with it; each becomes an ``Edge``:
``fits`` when it passes the hard limits (currency, amount, date window) and so could be the
order it pays, ``near`` otherwise (the same person, another amount: an instalment, a payment
for several orders, a wrong amount). Fits rank by their rule, strictest first, then by score.
Each rule has its date window: ``window_days`` for contacts, the wider reference window for an
order number, ``name_window_days`` for a name; a contact's order outside its window is kept
only as a hint for a person (``far``). Names are looked up (in the name index, built on first
need) only for a payment none of whose contacts (order number, email, phone) is found on any
order, in the window or not, whatever the amount: a contact says who paid, and a namesake's
order must not compete with it; and an order whose email or phone differs from the payment's
is not its order by name. Names are also compared to separate several fits of one rule.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from schoolsync.reconciliation import names
from schoolsync.reconciliation.contacts import email_key, phone_key, reference_keys
from schoolsync.reconciliation.models import OrderIn, PaymentIn
from schoolsync.reconciliation.rules import (
    CLOSENESS_BONUS,
    CONTRADICTION_PENALTY,
    DEAD_ORDER_PENALTY,
    DEAD_STATUSES,
    EXACT_AMOUNT_BONUS,
    NAME_BONUS,
    RULES,
    SECOND_CONTACT_BONUS,
    Evidence,
    ReconcileRules,
    Rule,
)

HOUR = 3600.0
DAY = 24 * HOUR
_LEVEL = {rule.name: level for level, rule in enumerate(RULES)}


class Order:
    """An order as the engine reads it (``OrderIn`` normalised once)."""

    __slots__ = (
        "amount",
        "currency",
        "dead",
        "email",
        "id",
        "name",
        "paid_manually",
        "phone",
        "source",
        "ts",
    )

    def __init__(self, order: OrderIn) -> None:
        if order.created_at.tzinfo is None:
            raise ValueError(f"order {order.order_id}: created_at has no timezone")
        self.source = order
        self.id = order.order_id
        self.ts = order.created_at.timestamp()
        self.amount = order.amount_minor
        self.currency = order.currency.upper()
        self.email = email_key(order.email)
        self.phone = phone_key(order.phone)
        self.name = order.name
        self.dead = order.status.lower() in DEAD_STATUSES
        self.paid_manually = order.paid_manually


class Payment:
    """A payment as the engine reads it (``PaymentIn`` normalised once)."""

    __slots__ = (
        "amount",
        "currency",
        "email",
        "id",
        "manual",
        "name",
        "own_email",
        "phone",
        "references",
        "source",
        "ts",
    )

    def __init__(self, payment: PaymentIn, *, reference_min_digits: int) -> None:
        if payment.paid_at.tzinfo is None:
            raise ValueError(f"payment {payment.payment_id}: paid_at has no timezone")
        if payment.amount_minor <= 0:
            raise ValueError(f"payment {payment.payment_id}: the amount must be positive")
        self.source = payment
        self.id = payment.payment_id
        self.ts = payment.paid_at.timestamp()
        self.amount = payment.amount_minor
        self.currency = payment.currency.upper()
        self.email = email_key(payment.email)
        # PayPal's payer email is the PayPal login, often not the one the client gave the school
        self.own_email = self.email if payment.source != "paypal" else None
        self.phone = phone_key(payment.phone)
        self.name = payment.payer_name
        self.references = reference_keys(payment.reference, min_digits=reference_min_digits)
        self.manual = payment.kind == "manual"


@dataclass(slots=True)
class Edge:
    """What ties one payment to one order."""

    order: int  # index into the engine's sorted orders
    evidence: int  # ``Evidence`` bits
    delay: float  # seconds from the order to the payment (negative: paid before it)
    rule: Rule | None = None  # set for a fitting edge: the strictest rule it satisfies
    score: float = 0.0
    name_similarity: float | None = None  # where names were compared


@dataclass(slots=True)
class Assessment:
    """A payment's candidates: ``fits`` best first (all at or above the minimum score),
    ``weak`` fitting ones under it, ``near`` the same person with another amount or currency,
    ``far`` orders of its contacts outside their date window (hints for a person only)."""

    fits: list[Edge] = field(default_factory=list)
    weak: list[Edge] = field(default_factory=list)
    near: list[Edge] = field(default_factory=list)
    far: list[Edge] = field(default_factory=list)


class Index:
    def __init__(self, orders: list[Order], rules: ReconcileRules) -> None:
        self.orders = orders
        self.rules = rules
        self.enabled = rules.rules
        self.name_rule = next((r for r in self.enabled if r.needs == Evidence.NAME), None)
        # the strictest enabled rule for each combination of evidence bits
        self.rule_for = [
            next((r for r in self.enabled if r.needs & bits), None) for bits in range(16)
        ]
        self.contacts = sum(r.needs for r in self.enabled if r.needs != Evidence.NAME)
        self.window = rules.window_days * DAY
        self.reference_window = max(rules.reference_window_days * DAY, self.window)
        self.name_window = rules.name_window_days * DAY
        self.early = rules.early_hours * HOUR
        self.by_id: dict[str, int] = {}
        self.by_email: dict[str, list[int]] = {}
        self.by_phone: dict[str, list[int]] = {}
        for i, order in enumerate(orders):
            self.by_id[order.id] = i
            if order.email is not None:
                self.by_email.setdefault(order.email, []).append(i)
            if order.phone is not None:
                self.by_phone.setdefault(order.phone, []).append(i)
        self._by_name: (
            tuple[dict[str, tuple[list[float], list[int]]], dict[str, list[str]]] | None
        ) = None

    def assess(self, payment: Payment) -> Assessment:
        evidence: dict[int, int] = {}
        for reference in payment.references:
            found = self.by_id.get(reference)
            if found is not None:
                evidence[found] = Evidence.REFERENCE
        if payment.email is not None:
            for i in self.by_email.get(payment.email, ()):
                evidence[i] = evidence.get(i, 0) | Evidence.EMAIL
        if payment.phone is not None:
            for i in self.by_phone.get(payment.phone, ()):
                evidence[i] = evidence.get(i, 0) | Evidence.PHONE
        result = Assessment()
        handled = {
            i for i in sorted(evidence) if self._contact_edge(payment, i, evidence[i], result)
        }
        fits = result.fits
        payer = None
        if (
            self.name_rule is not None
            and payment.name
            and not result.near
            and not any(bits & self.contacts for bits in evidence.values())
        ):
            payer = names.parse_name(payment.name)
            if payer is not None:
                self._name_edges(payment, payer, handled, result)
        if len(fits) < 2:
            self._keep_scoring(result)
            return result
        fits.sort(key=self.rank)
        top = [edge for edge in fits if edge.rule is fits[0].rule]
        if len(top) > 1 and payer is None and self.name_rule is not None:
            payer = names.parse_name(payment.name)
        if len(top) > 1 and payer is not None and payer.has_surname:
            named = [names.parse_name(self.orders[edge.order].name) for edge in top]
            if all(name is not None and name.has_surname for name in named):
                for edge in top:  # names separate candidates of one rule
                    if edge.name_similarity is None:
                        edge.name_similarity = self._similarity(payer, edge.order)
                        edge.score = self._score(payment, edge)
                fits.sort(key=self.rank)
        self._keep_scoring(result)
        return result

    def _keep_scoring(self, result: Assessment) -> None:
        """Fits under the minimum score become ``weak`` (hints for a person)."""
        minimum = self.rules.min_score
        if any(edge.score < minimum for edge in result.fits):
            result.weak = [edge for edge in result.fits if edge.score < minimum]
            result.fits = [edge for edge in result.fits if edge.score >= minimum]

    def _contact_edge(self, payment: Payment, i: int, evidence: int, result: Assessment) -> bool:
        """Adds the edge to ``fits`` or ``near``; ``False`` when it is neither (out of the
        window: then to ``far``; or only a disabled rule would take it)."""
        order = self.orders[i]
        delay = payment.ts - order.ts
        window = self.reference_window if evidence & Evidence.REFERENCE else self.window
        if not -self.early <= delay <= window:
            result.far.append(Edge(i, evidence, delay))
            return False
        edge = Edge(i, evidence, delay)
        if payment.currency == order.currency and self.rules.amount_fits(
            payment.amount, order.amount
        ):
            edge.rule = self.rule_for[evidence]
            if edge.rule is None:
                return False
            edge.score = self._score(payment, edge)
            result.fits.append(edge)
        else:
            result.near.append(edge)
        return True

    def _name_edges(
        self,
        payment: Payment,
        payer: names.PersonName,
        seen: set[int],
        result: Assessment,
    ) -> None:
        assert self.name_rule is not None
        minimum = self.rules.name_min_similarity
        near = self._named(payer, payment.ts - self.name_window, payment.ts + self.early)
        for i in sorted(near - seen):
            order = self.orders[i]
            if (
                order.currency == payment.currency
                and self.rules.amount_fits(payment.amount, order.amount)
                and not self._contradicts(payment, order)
            ):
                similarity = self._similarity(payer, i)
                if similarity >= minimum:
                    delay = payment.ts - order.ts
                    edge = Edge(i, Evidence.NAME, delay, self.name_rule, 0.0, similarity)
                    edge.score = self._score(payment, edge)
                    result.fits.append(edge)
        if result.fits or not self.rules.instalments:
            return
        # no fit: perhaps a part of an instalment, within the whole window
        for i in sorted(
            self._named(payer, payment.ts - self.window, payment.ts + self.early) - seen
        ):
            order = self.orders[i]
            if (
                order.currency == payment.currency
                and payment.amount < order.amount
                and not self._contradicts(payment, order)
            ):
                similarity = self._similarity(payer, i)
                if similarity >= minimum:
                    delay = payment.ts - order.ts
                    result.near.append(Edge(i, Evidence.NAME, delay, name_similarity=similarity))

    def _contradicts(self, payment: Payment, order: Order) -> bool:
        """The order has an email or a phone, the payment another one (each where its rule is
        enabled): not the payer's order, whatever the name says."""
        return bool(
            self.contacts & Evidence.EMAIL
            and payment.own_email is not None
            and order.email not in (None, payment.own_email)
        ) or bool(
            self.contacts & Evidence.PHONE
            and payment.phone is not None
            and order.phone not in (None, payment.phone)
        )

    def _named(self, name: names.PersonName, low: float, high: float) -> set[int]:
        """Orders created between ``low`` and ``high`` whose surname shares a key with one of
        ``name``'s."""
        by_form, forms_by_key = self._name_index()
        forms: set[str] = set()
        for key in name.keys:
            found = forms_by_key.get(key)
            if found is not None:
                forms.update(found)
        orders: set[int] = set()
        for form in forms:
            times, indexes = by_form[form]
            orders.update(indexes[bisect_left(times, low) : bisect_right(times, high)])
        return orders

    def _name_index(
        self,
    ) -> tuple[dict[str, tuple[list[float], list[int]]], dict[str, list[str]]]:
        """Surname form -> its orders (times and indexes, by time); key -> the forms it finds."""
        if self._by_name is None:
            by_form: dict[str, tuple[list[float], list[int]]] = {}
            for i, order in enumerate(self.orders):  # sorted by time: each list is too
                parsed = names.parse_name(order.name)
                if parsed is not None:
                    for form in parsed.forms:
                        bucket = by_form.get(form)
                        if bucket is None:
                            by_form[form] = ([order.ts], [i])
                        else:
                            bucket[0].append(order.ts)
                            bucket[1].append(i)
            forms_by_key: dict[str, list[str]] = {}
            for form in sorted(by_form):
                for key in names.index_keys(form):
                    forms_by_key.setdefault(key, []).append(form)
            self._by_name = (by_form, forms_by_key)
        return self._by_name

    def _similarity(self, payer: names.PersonName, i: int) -> float:
        named = names.parse_name(self.orders[i].name)
        return names.similarity(payer, named) if named is not None else 0.0

    def _score(self, payment: Payment, edge: Edge) -> float:
        order = self.orders[edge.order]
        assert edge.rule is not None
        score = edge.rule.base
        if payment.amount == order.amount:
            score += EXACT_AMOUNT_BONUS
        window = self.name_window if edge.rule.needs == Evidence.NAME else self.window
        if edge.delay >= 0:
            score += CLOSENESS_BONUS * max(0.0, 1 - edge.delay / window)
        elif self.early:  # paid before the order existed: possible, less likely
            score -= CLOSENESS_BONUS * min(1.0, -edge.delay / self.early)
        if edge.evidence & Evidence.EMAIL and edge.evidence & Evidence.PHONE:
            score += SECOND_CONTACT_BONUS
        if payment.own_email is not None and order.email not in (None, payment.own_email):
            score -= CONTRADICTION_PENALTY
        if payment.phone is not None and order.phone not in (None, payment.phone):
            score -= CONTRADICTION_PENALTY
        if edge.name_similarity is not None:
            score += NAME_BONUS * edge.name_similarity
        if order.dead:
            score -= DEAD_ORDER_PENALTY
        return round(score, 6)

    def rank(self, edge: Edge) -> tuple[bool, int, float, float, float, str]:
        """Live orders before false or cancelled ones, then the strictest rule, the best score,
        the closest in time, the oldest, by id."""
        order = self.orders[edge.order]
        level = _LEVEL[edge.rule.name] if edge.rule is not None else len(RULES)
        return (order.dead, level, -edge.score, abs(edge.delay), order.ts, order.id)
