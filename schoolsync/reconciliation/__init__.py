"""The pure payment-matching engine (W7): every payment paired with its order, or said why not.

    from schoolsync.reconciliation import OrderIn, PaymentIn, ReconcileRules, reconcile

    result = reconcile(orders, payments, ReconcileRules.model_validate(block), now)
    for verdict in result.verdicts: ...

``models`` (inputs, verdicts), ``rules`` (config and the rules as data), ``names`` (people's
names), ``candidates`` (indexes), ``groups`` (instalments, siblings), ``engine`` (decisions),
``explain`` (the lines for people), ``offline`` (CSV in and out). No I/O here.
"""

from schoolsync.reconciliation.engine import reconcile
from schoolsync.reconciliation.models import (
    AUTOMATIC_KINDS,
    OrderIn,
    PaymentIn,
    ReconcileResult,
    Verdict,
    VerdictKind,
)
from schoolsync.reconciliation.rules import ReconcileRules

__all__ = [
    "AUTOMATIC_KINDS",
    "OrderIn",
    "PaymentIn",
    "ReconcileResult",
    "ReconcileRules",
    "Verdict",
    "VerdictKind",
    "reconcile",
]
