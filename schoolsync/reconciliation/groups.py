"""Group rules: several payments for one order (instalments), one payment for several orders
(siblings' lessons). Searches over the few candidates one contact has; pure functions, the
engine records what they find.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations

from schoolsync.reconciliation.candidates import Edge
from schoolsync.reconciliation.rules import RULES, ReconcileRules, strictest_rule

Claim = tuple[int, Edge]  # a payment (index) and its edge to an order


def strictest_only(edges: Iterable[Edge]) -> dict[int, Edge]:
    """By order, the edges of the strictest evidence present (an order number over an email,
    an email over a name, ...)."""
    ranked = sorted(
        edges, key=lambda edge: (RULES.index(strictest_rule(edge.evidence)), edge.order)
    )
    if not ranked:
        return {}
    level = strictest_rule(ranked[0].evidence)
    return {edge.order: edge for edge in ranked if strictest_rule(edge.evidence) is level}


def instalments(
    parts: dict[int, list[Claim]],
    cost_of: Callable[[int], int],
    amount_of: Callable[[int], int],
    rules: ReconcileRules,
) -> dict[int, tuple[Claim, ...]]:
    """Order -> the payments that together pay it, from ``parts`` (order -> the payments that
    point to it with a part of its cost). An order is paid by the one largest group that adds
    up; a payment that would belong to two orders' groups belongs to none."""
    groups: dict[int, tuple[Claim, ...]] = {}
    for oi in sorted(parts):
        claims = parts[oi]
        if 2 <= len(claims) <= rules.max_instalments:
            group = _largest_adding_up(cost_of(oi), claims, amount_of, rules)
            if group is not None:
                groups[oi] = group
    uses = Counter(pi for group in groups.values() for pi, _ in group)
    return {oi: group for oi, group in groups.items() if all(uses[pi] == 1 for pi, _ in group)}


def _largest_adding_up(
    cost: int, claims: list[Claim], amount_of: Callable[[int], int], rules: ReconcileRules
) -> tuple[Claim, ...] | None:
    for size in range(len(claims), 1, -1):
        fitting = [
            group
            for group in combinations(claims, size)
            if rules.amount_fits(sum(amount_of(pi) for pi, _ in group), cost)
        ]
        if fitting:
            return fitting[0] if len(fitting) == 1 else None
    return None


def orders_adding_up(
    paid: int,
    options: Sequence[int],
    cost_of: Callable[[int], int],
    rules: ReconcileRules,
    *,
    sizes: range,
    fixed: int = 0,
) -> list[tuple[int, ...]]:
    """Every combination of ``options`` (orders) of a size in ``sizes`` whose costs, plus
    ``fixed``, are paid by ``paid``."""
    return [
        group
        for size in sizes
        for group in combinations(options, size)
        if rules.amount_fits(paid, fixed + sum(cost_of(oi) for oi in group))
    ]
