"""``reconcile``: every payment gets exactly one verdict; orders marked paid with no money get one.

The order of decisions, strictest first:

1. each payment's candidates (``candidates.Index.assess``): the orders that fit (hard limits
   passed, scored by the strictest rule their evidence meets) and the near ones;
2. the best fit, unless its order number names another live order (the payment goes on as if
   it fitted none: step 4), the best is by order number and the payer's email or phone is on
   another fitting order but not on this one (``ambiguous``), another of the same rule is
   within ``ambiguity_margin`` (``ambiguous``, never a guess), the best is a false or
   cancelled order, or the amount (less a fee) also pays it together with other orders of the
   same contact;
3. per order, the payments that chose it: the first automatic one (else the first manual) is
   ``matched``; a manual one next to an automatic one is ``duplicate_manual`` once
   ``manual_grace_hours`` have passed since it (the handbook: check again a day later, remove
   the manual one) and only if the automatic one's evidence is at least as strict as its own
   (else ``ambiguous``: a person decides which is the double), ``matched`` with a note before,
   and ``overpaid`` when only a name ties it and the automatic payment was there first; any
   further payment is ``overpaid``; a tie by a contact between orders all but one of which are
   paid by other payments (of either kind) goes to that one (a returning client's second order
   of the same course);
4. payments with no fit: several paying one order together (``instalment``), one paying several
   orders of the same contact (``several_orders``), then ``amount_mismatch`` (the contact or the
   reference is clear, the amount is not; an order number wins over the order the amount
   fits, which is named as a candidate), else ``unmatched_payment``;
5. orders marked paid by hand that no verdict names, ``manual_grace_hours`` after they were
   created: ``unpaid_order``.

Deterministic: inputs are sorted by time and id first, every tie is broken by id, so the same
orders and payments in any order give the same verdicts in the same order. Pure: no I/O.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from operator import attrgetter
from typing import TypeVar

from schoolsync.reconciliation import explain
from schoolsync.reconciliation.candidates import HOUR, Assessment, Edge, Index, Order, Payment
from schoolsync.reconciliation.groups import instalments, orders_adding_up, strictest_only
from schoolsync.reconciliation.models import (
    OrderIn,
    PaymentIn,
    ReconcileResult,
    Verdict,
    VerdictKind,
)
from schoolsync.reconciliation.rules import (
    CONTACT,
    INSTALMENT,
    RULES,
    SEVERAL_ORDERS,
    Evidence,
    ReconcileRules,
    Rule,
    strictest_rule,
    weakest_rule,
)

MAX_SEVERAL_CANDIDATES = 8  # orders of one contact tried in combinations for one payment
PERSONAL = Evidence.EMAIL | Evidence.PHONE  # the payer's own contacts
_Record = TypeVar("_Record", Order, Payment)
_TIME, _ID = attrgetter("ts"), attrgetter("id")


def reconcile(
    orders: Iterable[OrderIn],
    payments: Iterable[PaymentIn],
    rules: ReconcileRules,
    now: datetime,
) -> ReconcileResult:
    """Verdicts for ``payments`` against ``orders`` as of ``now`` (timezone-aware).

    Raises ``ValueError`` for a naive datetime, a repeated id or a payment amount that is not
    positive.
    """
    if now.tzinfo is None:
        raise ValueError("now has no timezone")
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects and no cycles: collections only cost
    try:
        return _Run(orders, payments, rules, now.timestamp()).result()
    finally:
        if collecting:
            gc.enable()


class _Run:
    def __init__(
        self,
        orders: Iterable[OrderIn],
        payments: Iterable[PaymentIn],
        rules: ReconcileRules,
        now: float,
    ) -> None:
        self.orders = _by_time(list(map(Order, orders)))
        digits = rules.reference_min_digits
        self.payments = _by_time([Payment(p, reference_min_digits=digits) for p in payments])
        _unique("order", [o.id for o in self.orders])
        _unique("payment", [p.id for p in self.payments])
        self.rules = rules
        self.now = now
        self.grace = rules.manual_grace_hours * HOUR
        self.index = Index(self.orders, rules)
        self.by_payment: dict[int, Verdict] = {}  # first payment's index -> its verdict
        self.claims: dict[int, list[tuple[int, Edge]]] = {}  # order -> payments fitting it best
        self.paid: dict[int, int] = {}  # order -> the payment (index) that pays it
        self.named: set[int] = set()  # orders some verdict names or lists

    def result(self) -> ReconcileResult:
        assessments = [self.index.assess(payment) for payment in self.payments]
        chosen: dict[int, list[tuple[int, Edge]]] = {}
        rest: list[int] = []
        tied: list[tuple[int, list[Edge]]] = []
        margin = self.rules.ambiguity_margin
        for pi, assessment in enumerate(assessments):
            fits = assessment.fits
            if not fits or self._named_elsewhere(fits[0], assessment):
                rest.append(pi)
            elif against := self._contacts_against(fits):
                named = self.orders[fits[0].order].id
                others = explain.ids([self.orders[edge.order].id for edge in against])
                text = (
                    f"its order number names order {named}, its email or phone another order "
                    f"that fits ({others}); a person chooses"
                )
                self._ambiguous(pi, [fits[0], *against], text=text)
            elif len(fits) > 1 and _close(fits[0], fits[1], margin):
                tied.append((pi, [edge for edge in fits if _close(fits[0], edge, margin)]))
            elif self.orders[fits[0].order].dead:
                self._ambiguous(pi, fits, "fit, but are false or cancelled")
            elif together := self._also_together(pi, fits[0], assessment):
                self._ambiguous(pi, together, "fit alone or together")
            else:
                chosen.setdefault(fits[0].order, []).append((pi, fits[0]))
        self.claims = chosen
        for oi in sorted(chosen):
            self._settle(oi, chosen[oi])
        self._untie(tied)
        if self.rules.instalments:
            rest = self._instalments(rest, assessments)
        if self.rules.several_orders:
            rest = self._several_orders(rest, assessments)
        for pi in rest:
            self._leftover(pi, assessments[pi])
        verdicts = [self.by_payment[pi] for pi in sorted(self.by_payment)]
        verdicts.extend(self._unpaid_orders())
        return ReconcileResult(tuple(verdicts))

    # --- a payment that fits one order best ----------------------------------------------

    def _named_elsewhere(self, best: Edge, assessment: Assessment) -> bool:
        """The best fit is not by order number, and the payment's order number names another
        live order (whose cost it does not pay): not for the amount or a contact to overrule."""
        return best.rule is not RULES[0] and any(
            edge.evidence & Evidence.REFERENCE and not self.orders[edge.order].dead
            for edge in assessment.near
        )

    def _contacts_against(self, fits: list[Edge]) -> list[Edge]:
        """Where the best fit is by order number alone (none of the payer's email or phone is
        on that order), the other live orders that fit by the payer's email or phone."""
        best = fits[0]
        if best.rule is not RULES[0] or best.evidence & PERSONAL:
            return []
        return [e for e in fits[1:] if e.evidence & PERSONAL and not self.orders[e.order].dead]

    def _settle(self, oi: int, claims: list[tuple[int, Edge]]) -> None:
        """The payments whose best fit is order ``oi``, in time order."""
        automatic = [(pi, edge) for pi, edge in claims if not self.payments[pi].manual]
        manual = [(pi, edge) for pi, edge in claims if self.payments[pi].manual]
        first_pi, first_edge = (automatic or manual)[0]
        self.paid[oi] = first_pi
        self._verdict(
            first_pi, VerdictKind.MATCHED, first_edge, self._fit_text(first_pi, first_edge)
        )
        for pi, edge in (automatic or manual)[1:]:
            text = f"{self._fit_text(pi, edge)}; the order was paid already by payment {self.payments[first_pi].id}"
            self._verdict(pi, VerdictKind.OVERPAID, edge, text)
        if not automatic:
            return
        auto = self.payments[first_pi]
        assert first_edge.rule is not None
        for pi, edge in manual:
            payment = self.payments[pi]
            assert edge.rule is not None
            if edge.rule.name == "name" and auto.ts < payment.ts:
                # the order was paid when this transfer came, and only a name ties them
                text = (
                    f"{self._fit_text(pi, edge)}; the order was paid already by automatic "
                    f"payment {auto.id}, {_apart(payment.ts - auto.ts)} this one"
                )
                self._verdict(pi, VerdictKind.OVERPAID, edge, text)
            elif self.now >= payment.ts + self.grace and auto.ts <= self.now:
                if _looser(first_edge.rule, edge.rule):
                    # the automatic payment may be someone else's: a person decides
                    text = (
                        f"order {self.orders[oi].id} fits ({self._fit_text(pi, edge)}), and "
                        f"automatic payment {auto.id} is tied to it by looser evidence "
                        f"({first_edge.rule.says}): a person decides whether this manual "
                        "payment is a double"
                    )
                    self._ambiguous(pi, [edge], text=text)
                    continue
                text = (
                    f"order {self.orders[oi].id} was also paid automatically by payment {auto.id} "
                    f"({auto.source.source}, {_apart(auto.ts - payment.ts)} this one): "
                    f"remove this manual payment ({self._fit_text(pi, edge)})"
                )
                self._verdict(pi, VerdictKind.DUPLICATE_MANUAL, edge, text)
            else:
                then = (
                    "a person decides whether this manual one is a double"
                    if _looser(first_edge.rule, edge.rule)
                    else "this manual one is a duplicate"
                )
                text = (
                    f"{self._fit_text(pi, edge)}; automatic payment {auto.id} came for the same "
                    f"order too: {then} if both still stand "
                    f"{self.rules.manual_grace_hours:g} h after it"
                )
                self._verdict(pi, VerdictKind.MATCHED, edge, text)

    def _untie(self, tied: list[tuple[int, list[Edge]]]) -> None:
        """A payment tied by a contact between orders of which all but one are paid by other
        payments pays that one (a returning client's second order for the same course). Not by
        a name alone; an order paid by a payment of the other kind is taken too (a manual
        payment is not removed as a double on a tie). The rest stay ambiguous. Repeated while
        it settles anything, in time order."""
        progress = True
        while progress:
            progress, still = False, []
            for pi, edges in tied:
                free = [edge for edge in edges if edge.order not in self.paid]
                if len(free) == 1 and edges[0].rule is not None and edges[0].rule.name != "name":
                    claims = self.claims.setdefault(free[0].order, [])
                    claims.append((pi, free[0]))
                    claims.sort(key=lambda claim: claim[0])  # in time order, as chosen ones
                    self._settle(free[0].order, claims)
                    verdict = self.by_payment[pi]
                    self.by_payment[pi] = replace(
                        verdict,
                        explanation=f"{verdict.explanation}; the other orders that fit "
                        f"({explain.ids([self.orders[e.order].id for e in edges if e is not free[0]])}) "
                        "are paid by other payments",
                    )
                    progress = True
                else:
                    still.append((pi, edges))
            tied = still
        for pi, edges in tied:
            self._ambiguous(pi, edges, "fit about equally")

    def _also_together(self, pi: int, best: Edge, assessment: Assessment) -> list[Edge]:
        """Where ``best`` fits less a fee, the orders that with it would fit as one payment for
        several orders (a fee-reduced payment for 24,900 + 990 fits a 24,900 order alone)."""
        payment = self.payments[pi]
        if not self.rules.several_orders or payment.amount == self.orders[best.order].amount:
            return []
        others = self._several_options(payment, assessment, exclude=best.order)
        found = orders_adding_up(
            payment.amount,
            sorted(others)[:MAX_SEVERAL_CANDIDATES],
            self._cost,
            self.rules,
            sizes=range(1, self.rules.max_orders_per_payment),
            fixed=self.orders[best.order].amount,
        )
        listed = sorted({oi for group in found for oi in group})
        return [best, *(others[oi] for oi in listed)] if found else []

    def _cost(self, oi: int) -> int:
        return self.orders[oi].amount

    def _several_options(
        self, payment: Payment, assessment: Assessment, exclude: int | None = None
    ) -> dict[int, Edge]:
        """Live unpaid orders sharing a contact with ``payment`` that cost less than it."""
        options: dict[int, Edge] = {}
        for edge in assessment.near:
            order = self.orders[edge.order]
            if (
                edge.evidence & CONTACT
                and edge.order != exclude
                and edge.order not in self.paid
                and not order.dead
                and order.currency == payment.currency
                and order.amount < payment.amount
            ):
                options.setdefault(edge.order, edge)
        return options

    def _fit_text(self, pi: int, edge: Edge) -> str:
        payment, order = self.payments[pi], self.orders[edge.order]
        assert edge.rule is not None
        says = edge.rule.says
        if edge.rule.name == "name" and edge.name_similarity is not None:
            says = f"similar name ({edge.name_similarity:.2f})"
        elif edge.evidence & Evidence.EMAIL and edge.evidence & Evidence.PHONE:
            says = "same email and phone" if edge.rule.name != "reference" else says
        text = explain.evidence_and_amount(says, payment.amount, order.amount, order.currency)
        text = f"{text}, {explain.delay(edge.delay)}"
        if order.dead:
            text += f" (the order is {order.source.status})"
        return text

    # --- payments with no single fit ------------------------------------------------------

    def _instalments(self, rest: list[int], assessments: list[Assessment]) -> list[int]:
        """Two or more partial payments that add up to one unpaid order they point to (each by
        its strictest evidence), when no payment could belong to another such group."""
        parts: dict[int, list[tuple[int, Edge]]] = {}
        for pi in rest:
            payment = self.payments[pi]
            partial = strictest_only(
                edge
                for edge in assessments[pi].near
                if self._partial(payment, self.orders[edge.order])
            )
            for oi, edge in partial.items():
                parts.setdefault(oi, []).append((pi, edge))
        groups = instalments(
            {oi: claims for oi, claims in parts.items() if oi not in self.paid},
            lambda oi: self.orders[oi].amount,
            lambda pi: self.payments[pi].amount,
            self.rules,
        )
        done: set[int] = set()
        for oi, group in groups.items():
            self._instalment(oi, list(group))
            done.update(pi for pi, _ in group)
        return [pi for pi in rest if pi not in done]

    def _partial(self, payment: Payment, order: Order) -> bool:
        return (
            order.currency == payment.currency
            and payment.amount < order.amount
            and not order.dead
            and -self.index.early <= payment.ts - order.ts <= self.index.window
        )

    def _instalment(self, oi: int, group: list[tuple[int, Edge]]) -> None:
        order = self.orders[oi]
        payments = [self.payments[pi] for pi, _ in group]
        rule = weakest_rule(edge.evidence for _, edge in group)
        parts = " + ".join(explain.money(p.amount, p.currency) for p in payments)
        total = explain.money(sum(p.amount for p in payments), order.currency)
        text = (
            f"{len(payments)} payments together pay the order ({rule.says}): {parts} = {total}, "
            f"the order costs {explain.money(order.amount, order.currency)}; "
            f"the last {explain.delay(payments[-1].ts - order.ts)}"
        )
        self.paid[oi] = group[0][0]
        self.named.add(oi)
        self.by_payment[group[0][0]] = Verdict(
            payment_ids=tuple(p.id for p in payments),
            order_ids=(order.id,),
            kind=VerdictKind.MATCHED,
            rule=INSTALMENT,
            score=rule.base,
            explanation=text,
        )

    def _several_orders(self, rest: list[int], assessments: list[Assessment]) -> list[int]:
        """One payment of a contact that adds up to two or more of its unpaid orders."""
        left: list[int] = []
        for pi in rest:
            payment = self.payments[pi]
            orders = self._several_options(payment, assessments[pi])
            fitting = orders_adding_up(
                payment.amount,
                sorted(orders)[:MAX_SEVERAL_CANDIDATES],
                self._cost,
                self.rules,
                sizes=range(2, self.rules.max_orders_per_payment + 1),
            )
            if len(fitting) == 1:
                self._several(pi, fitting[0], [orders[oi] for oi in fitting[0]])
            elif fitting:
                listed = sorted({oi for group in fitting for oi in group})
                edges = [orders[oi] for oi in listed]
                self._ambiguous(pi, edges, "together fit in more than one way")
            else:
                left.append(pi)
        return left

    def _several(self, pi: int, group: tuple[int, ...], edges: list[Edge]) -> None:
        payment = self.payments[pi]
        rule = weakest_rule(edge.evidence for edge in edges)
        costs = " + ".join(explain.money(self.orders[oi].amount, payment.currency) for oi in group)
        text = (
            f"one payment for {len(group)} orders ({rule.says}): {costs}, paid "
            f"{explain.money(payment.amount, payment.currency)}, "
            f"{explain.delay(max(edge.delay for edge in edges))} (the latest)"
        )
        for oi in group:
            self.paid[oi] = pi
        self.named.update(group)
        self.by_payment[pi] = Verdict(
            payment_ids=(payment.id,),
            order_ids=tuple(self.orders[oi].id for oi in group),
            kind=VerdictKind.MATCHED,
            rule=SEVERAL_ORDERS,
            score=rule.base,
            explanation=text,
        )

    def _leftover(self, pi: int, assessment: Assessment) -> None:
        payment = self.payments[pi]
        contact = [edge for edge in assessment.near if edge.evidence & CONTACT]
        referenced = [edge for edge in contact if edge.evidence & Evidence.REFERENCE]
        options = referenced or (
            [edge for edge in contact if edge.order not in self.paid] or contact
        )
        fitting = [edge for edge in assessment.fits if edge.order not in {e.order for e in options}]
        if len(options) == 1:
            edge = options[0]
            order = self.orders[edge.order]
            rule = strictest_rule(edge.evidence)
            text = explain.mismatch(
                rule.says, payment.amount, order.amount, payment.currency, order.currency
            )
            if edge.order in self.paid:
                text += f"; the order is paid already by payment {self.payments[self.paid[edge.order]].id}"
            if fitting:  # the order number names this order, the amount fits another
                best = fitting[0]
                assert best.rule is not None
                text += f"; its amount fits order {self.orders[best.order].id} ({best.rule.says})"
                self.named.add(best.order)
            self.named.add(edge.order)
            self.by_payment[pi] = Verdict(
                payment_ids=(payment.id,),
                order_ids=(order.id,),
                kind=VerdictKind.AMOUNT_MISMATCH,
                rule=rule.name,
                score=rule.base,
                explanation=text,
                candidates=(order.id, self.orders[fitting[0].order].id) if fitting else (),
            )
        elif options:
            self._ambiguous(
                pi, [*options, *fitting], "share a contact with it, none has its amount"
            )
        else:
            hints = sorted(assessment.weak + assessment.near + assessment.far, key=self.index.rank)
            listed = list(dict.fromkeys(self.orders[edge.order].id for edge in hints))
            text = "no order fits its contacts, order number, name, amount and dates"
            if listed:
                text += f"; closest: {explain.ids(listed[:5])}"
            self.by_payment[pi] = Verdict(
                payment_ids=(payment.id,),
                order_ids=(),
                kind=VerdictKind.UNMATCHED_PAYMENT,
                rule="",
                score=0.0,
                explanation=text,
                candidates=tuple(listed[:5]),
            )

    # --- verdicts -------------------------------------------------------------------------

    def _verdict(self, pi: int, kind: VerdictKind, edge: Edge, text: str) -> None:
        assert edge.rule is not None
        self.named.add(edge.order)
        self.by_payment[pi] = Verdict(
            payment_ids=(self.payments[pi].id,),
            order_ids=(self.orders[edge.order].id,),
            kind=kind,
            rule=edge.rule.name,
            score=min(1.0, edge.score),
            explanation=text,
        )

    def _ambiguous(self, pi: int, edges: list[Edge], how: str = "", *, text: str = "") -> None:
        """The standard line says ``N orders <how> (<evidence>): <ids>``; ``text`` replaces it."""
        listed = list(dict.fromkeys(self.orders[edge.order].id for edge in edges))
        self.named.update(edge.order for edge in edges)
        best = edges[0]
        rule = best.rule or strictest_rule(best.evidence)
        self.by_payment[pi] = Verdict(
            payment_ids=(self.payments[pi].id,),
            order_ids=(),
            kind=VerdictKind.AMBIGUOUS,
            rule=rule.name,
            score=min(1.0, best.score),
            explanation=text
            or f"{len(listed)} orders {how} ({rule.says}): {explain.ids(listed)}; a person chooses",
            candidates=tuple(listed),
        )

    def _unpaid_orders(self) -> list[Verdict]:
        found = []
        for oi, order in enumerate(self.orders):
            if order.paid_manually and oi not in self.named and self.now - order.ts >= self.grace:
                found.append(
                    Verdict(
                        payment_ids=(),
                        order_ids=(order.id,),
                        kind=VerdictKind.UNPAID_ORDER,
                        rule="paid_manually",
                        score=0.0,
                        explanation=(
                            f"marked paid by hand, no payment for it seen in "
                            f"{_hours(self.now - order.ts)} since the order"
                        ),
                    )
                )
        return found


def _by_time(records: list[_Record]) -> list[_Record]:
    """Sorted by time, then id (two stable sorts: no key tuples for a million records)."""
    records.sort(key=_ID)
    records.sort(key=_TIME)
    return records


def _looser(one: Rule, other: Rule) -> bool:
    """``one`` is a looser rule than ``other`` (an email is looser than an order number)."""
    return RULES.index(one) > RULES.index(other)


def _close(best: Edge, other: Edge, margin: float) -> bool:
    """``other`` is as good as ``best``: the same rule, a score within the margin."""
    return other.rule is best.rule and best.score - other.score < margin


def _apart(seconds: float) -> str:
    return f"{_hours(abs(seconds))} {'after' if seconds >= 0 else 'before'}"


def _hours(seconds: float) -> str:
    hours = seconds / HOUR
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def _unique(what: str, ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        repeated = min(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f"{what} id {repeated!r} appears more than once")
