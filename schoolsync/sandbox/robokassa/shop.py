"""One running sandbox shop: invoices opened on the payment page, payments, ResultURL calls."""

from __future__ import annotations

import threading
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from schoolsync.sandbox.robokassa.config import RobokassaSandboxConfig
from schoolsync.sandbox.robokassa.signing import ALGORITHMS


class RobokassaSandbox:
    def __init__(self, config: RobokassaSandboxConfig) -> None:
        if config.hash.lower() not in ALGORITHMS:
            raise ValueError(f"hash must be one of {', '.join(ALGORITHMS)}")
        self.config = config
        self.lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        # what the payment page accepted, by InvId (the last one wins)
        self.invoices: dict[str, dict[str, Any]] = {}
        # every payment made through /_sandbox/pay, with its ResultURL attempts
        self.payments: list[dict[str, Any]] = []
        self.page_errors: list[dict[str, Any]] = []
        self.counts = {
            "page_views": 0,
            "page_errors": 0,
            "paid": 0,
            "delivered": 0,
            "failed": 0,
            "attempts": 0,
        }

    @property
    def algorithm(self) -> str:
        return self.config.hash.lower()

    def password1(self, is_test: bool) -> str | None:
        return self.config.test_password1 if is_test else self.config.password1

    def password2(self, is_test: bool) -> str | None:
        return self.config.test_password2 if is_test else self.config.password2

    def fee(self, out_sum: Decimal) -> Decimal:
        percent = Decimal(self.config.fee_percent)
        return (out_sum * percent / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.counts,
                "merchant_login": self.config.merchant_login,
                "hash": self.algorithm,
                "result_url": self.config.result_url,
                "invoices": list(self.invoices.values()),
                "payments": [dict(p) for p in self.payments],
                "page_errors": list(self.page_errors),
            }

    def reset(self) -> None:
        with self.lock:
            self._clear()
