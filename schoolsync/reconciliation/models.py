"""What the engine reads (orders, payments) and what it says about them (verdicts).

Frozen slotted dataclasses: a run reads hundreds of thousands of them, and they are built by
the caller from the ledger and the order mirror (or from CSV in offline mode). Amounts are
whole minor units (kopecks, cents) with an ISO 4217 currency; times are timezone-aware.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

PaymentKind = Literal["manual", "automatic"]


class VerdictKind(StrEnum):
    MATCHED = "matched"  # the payment pays these orders; safe to act on
    AMBIGUOUS = "ambiguous"  # several orders fit about as well: a person chooses
    UNMATCHED_PAYMENT = "unmatched_payment"  # no order fits
    UNPAID_ORDER = "unpaid_order"  # marked paid by hand, no money seen after the grace period
    DUPLICATE_MANUAL = "duplicate_manual"  # a manual payment also paid automatically: remove it
    AMOUNT_MISMATCH = "amount_mismatch"  # the order is clear, the amount is not its cost
    OVERPAID = "overpaid"  # the order was paid already by another payment


AUTOMATIC_KINDS = frozenset({VerdictKind.MATCHED, VerdictKind.DUPLICATE_MANUAL})
"""Verdicts the service may act on by itself (configurable per school); the rest go to a person."""


@dataclass(frozen=True, slots=True)
class OrderIn:
    order_id: str
    created_at: datetime
    email: str | None
    phone: str | None
    name: str | None
    product: str | None
    amount_minor: int
    currency: str
    status: str  # GetCourse status: new, payed, false, cancelled, ...
    paid_manually: bool = False  # a manager marked it paid by hand


@dataclass(frozen=True, slots=True)
class PaymentIn:
    payment_id: str
    source: str  # yookassa, robokassa, paypal, card_transfer, bank_transfer, getcourse
    kind: PaymentKind
    paid_at: datetime
    amount_minor: int
    currency: str
    payer_name: str | None = None
    email: str | None = None
    phone: str | None = None
    reference: str | None = None  # free text; an order number in it is strong evidence


@dataclass(frozen=True, slots=True)
class Verdict:
    """What is true of ``payment_ids`` and ``order_ids``.

    Every payment is in the ``payment_ids`` of exactly one verdict; a verdict names several
    payments only for an instalment (they pay one order together). ``order_ids`` is empty for
    ``ambiguous`` and ``unmatched_payment``; ``candidates`` lists the orders a person should
    compare (best first). ``rule`` names the evidence (see ``rules.RULES``), ``score`` its
    strength in [0, 1], ``explanation`` says why in a line for people (no personal data).
    """

    payment_ids: tuple[str, ...]
    order_ids: tuple[str, ...]
    kind: VerdictKind
    rule: str
    score: float
    explanation: str
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    verdicts: tuple[Verdict, ...]
    _by_payment: dict[str, Verdict] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for verdict in self.verdicts:
            for payment_id in verdict.payment_ids:
                self._by_payment[payment_id] = verdict

    def for_payment(self, payment_id: str) -> Verdict | None:
        return self._by_payment.get(payment_id)

    def counts(self) -> dict[VerdictKind, int]:
        """Verdicts by kind (an instalment verdict counts once)."""
        return dict(Counter(verdict.kind for verdict in self.verdicts))
