"""The rules of matching, as data: hard limits from config, evidence rules strictest first.

The school's ``rules.reconciliation`` block (every key optional)::

    rules:
      reconciliation:
        fee_percent: 5            # a payment may be this much below the order's cost (fees)
        tolerance_minor: 100      # ... and this many minor units off either way (fixed fees)
        window_days: 14           # a payment at most this long after its order
        early_hours: 24           # ... or this long before it (the order was created later)
        reference_window_days: 31 # a payment naming its order: this long (or window_days if longer)
        reference_min_digits: 4   # a number in a reference's text: this many digits, after a marker
        name_window_days: 3       # a match by name alone only this close to the order
        name_min_similarity: 0.8
        min_score: 0.45
        ambiguity_margin: 0.1     # two candidates closer than this: ambiguous, never a guess
        manual_grace_hours: 24    # the handbook's day before a manual double is removed
        match_by: [reference, email, phone, name]
        instalments: true         # several payments for one order
        several_orders: true      # one payment for several orders (siblings)

A candidate order must pass the hard limits (same currency, amount within the tolerance, paid
within the window); among those the strictest rule whose evidence is present names the match
and gives its base score (``RULES``). Candidates of a stricter rule win over those of a looser
one (an order number over an email, an email over a phone, any contact over a name); among
candidates of one rule the score decides, and two within ``ambiguity_margin`` are ambiguous.
The score adds small bonuses to the rule's base (exact amount, closeness in time, a second
contact, the name where names separate candidates) and takes penalties (paid before the
order, a different email or phone on both sides, an order that is ``false`` or ``cancelled``);
it is capped at 1 where a verdict reports it. Orders that are ``false`` or ``cancelled`` rank
after every live one.

An order number is the whole reference (a provider's order id, a number a person chose) or a
number of at least ``reference_min_digits`` digits after ``№``, ``N``, ``#``, ``заказ`` or
``order`` in its text (``contacts.reference_keys``: a year, a count of lessons, an amount are
not); it counts for an order created at most the wider of ``reference_window_days`` and
``window_days`` before the payment (``early_hours`` after). Evidence that points two ways goes
to a person, whichever side is stricter: an order number naming another order than the one the
amount fits (``amount_mismatch`` on the named order, the other as a candidate, or
``ambiguous``); an order number against the payer's email or phone found on another fitting
order and not on the named one (``ambiguous``); a manual payment next to an automatic one tied
to its order by looser evidence (``ambiguous``, not ``duplicate_manual``).

A name alone may give ``matched``, which the service acts on: managers' transfers mostly carry
nothing else, and a person confirming each is the work this engine is to save (on the
generator's data a sixth of what is acted on). It does so only where nothing speaks against
it: never for a payment whose email, phone or order number is found on any order, in the window
or not (a contact says who paid; a namesake's order must not compete with it), never for an
order whose email or phone differs from the payment's, only within ``name_window_days``, at
``name_min_similarity`` or more (0.8: the surname and the given name or its initial both agree;
a surname alone is 0.76), and ``ambiguity_margin`` ahead of every other order its name finds.
A stricter similarity buys little: the names wrongly matched are mostly exact namesakes
(similarity 1), see docs/PERFORMANCE.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RuleName = Literal["reference", "email", "phone", "name"]


class Evidence:
    """What a payment and an order have in common: bits of an ``int``, so that a pair can hold
    several (plain ints: a run combines millions of them, ``IntFlag`` costs ten times more)."""

    NONE: Final = 0
    REFERENCE: Final = 1  # the payment's reference names the order
    EMAIL: Final = 2
    PHONE: Final = 4
    NAME: Final = 8  # names similar enough (``name_min_similarity``)


CONTACT: Final = Evidence.REFERENCE | Evidence.EMAIL | Evidence.PHONE


@dataclass(frozen=True, slots=True)
class Rule:
    name: RuleName  # what a verdict's ``rule`` says; the ``match_by`` entry enabling it
    needs: int  # ``Evidence`` bits
    base: float  # score of a match by this rule before bonuses
    says: str  # the evidence, for people: "same email"


RULES: tuple[Rule, ...] = (
    Rule("reference", Evidence.REFERENCE, 0.85, "order number in the payment"),
    Rule("email", Evidence.EMAIL, 0.78, "same email"),
    Rule("phone", Evidence.PHONE, 0.74, "same phone"),
    Rule("name", Evidence.NAME, 0.3, "similar name"),
)
"""Strictest first: the first rule whose evidence a pair has names the match."""


def strictest_rule(evidence: int) -> Rule:
    """The strictest rule whose evidence ``evidence`` holds (enabled or not; ``name`` when it
    holds none)."""
    return next((rule for rule in RULES if rule.needs & evidence), RULES[-1])


def weakest_rule(evidences: Iterable[int]) -> Rule:
    """The rule of the weakest link of a group, each link by its strictest evidence."""
    return max((strictest_rule(evidence) for evidence in evidences), key=RULES.index)


INSTALMENT = "instalment"  # several payments together pay one order
SEVERAL_ORDERS = "several_orders"  # one payment pays several orders (siblings' lessons)

# Bonuses and penalties added to a rule's base score (see ``engine.score``).
EXACT_AMOUNT_BONUS = 0.05  # the cost to the minor unit, no fee taken
CLOSENESS_BONUS = 0.05  # x (1 - delay / window)
SECOND_CONTACT_BONUS = 0.05  # email and phone both agree
NAME_BONUS = 0.2  # x name similarity, where names were compared
CONTRADICTION_PENALTY = 0.1  # each of email and phone given on both sides and different
DEAD_ORDER_PENALTY = 0.2  # the order is false (a duplicate) or cancelled
DEAD_STATUSES = frozenset({"false", "cancelled"})


class ReconcileRules(BaseModel):
    """``rules.reconciliation`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fee_percent: Decimal = Field(default=Decimal(5), ge=0, le=50)
    tolerance_minor: int = Field(default=100, ge=0)
    window_days: float = Field(default=14, gt=0, le=366)
    early_hours: float = Field(default=24, ge=0, le=24 * 31)
    reference_window_days: float = Field(default=31, gt=0, le=366)
    reference_min_digits: int = Field(default=4, ge=1, le=20)
    name_window_days: float = Field(default=3, gt=0, le=366)
    name_min_similarity: float = Field(default=0.8, ge=0.5, le=1)
    min_score: float = Field(default=0.45, ge=0, le=1)
    ambiguity_margin: float = Field(default=0.1, ge=0, le=1)
    manual_grace_hours: float = Field(default=24, ge=0, le=24 * 31)
    match_by: tuple[RuleName, ...] = ("reference", "email", "phone", "name")
    instalments: bool = True
    max_instalments: int = Field(default=4, ge=2, le=12)
    several_orders: bool = True
    max_orders_per_payment: int = Field(default=3, ge=2, le=6)

    @model_validator(mode="after")
    def _windows(self) -> ReconcileRules:
        if self.name_window_days > self.window_days:
            raise ValueError("name_window_days must not exceed window_days")
        return self

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The enabled rules, strictest first."""
        return tuple(rule for rule in RULES if rule.name in self.match_by)

    @cached_property
    def fee_basis_points(self) -> int:
        return int(self.fee_percent * 100)

    def amount_fits(self, paid: int, cost: int) -> bool:
        """``paid`` (minor units) pays ``cost``: at most the fee below, the tolerance above."""
        tolerance = self.tolerance_minor
        return cost - cost * self.fee_basis_points // 10_000 - tolerance <= paid <= cost + tolerance
