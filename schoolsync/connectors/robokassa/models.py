"""What a verified ResultURL notification says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class RobokassaResult:
    """A ResultURL notification whose signature checked out: the money has arrived.

    ``out_sum`` is what the shop receives before Robokassa's fee, in the shop's currency (RUB
    for robokassa.ru); ``out_sum_raw`` the string that was signed. ``shp`` holds the shop's own
    parameters by name without the prefix (``Shp_order=12`` -> ``{"order": "12"}``). ``is_test``:
    paid in test mode (checked with the test password), which is no real money.
    """

    out_sum: Decimal
    out_sum_raw: str
    inv_id: int
    is_test: bool = False
    shp: Mapping[str, str] = field(default_factory=dict)
    email: str | None = field(default=None, repr=False)
    fee: Decimal | None = None
    inc_sum: Decimal | None = None
    payment_method: str | None = None
    inc_curr_label: str | None = None
