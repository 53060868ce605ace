"""One running sandbox PayPal app: its key, tokens, orders, captures, refunds, v1 sales and
events."""

from __future__ import annotations

import secrets
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from schoolsync.sandbox.paypal import keys
from schoolsync.sandbox.paypal.config import PayPalSandboxConfig

_COUNTS = (
    "requests",
    "tokens_issued",
    "token_refusals",
    "captures",
    "refunds",
    "sales",
    "events",
    "deliveries",
    "delivered",
    "failed",
    "attempts",
    "verifications",
    "verified",
)


class PayPalSandbox:
    def __init__(self, config: PayPalSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        # made once: a reset keeps the certificate, so seeded caches stay valid
        self.signing = keys.generate()
        if config.cert_pem_path:
            target = Path(config.cert_pem_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.signing.pem)
        self._clear()

    def _clear(self) -> None:
        self.tokens: dict[str, float] = {}  # access token -> time.monotonic() it expires
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.sales: dict[str, dict[str, Any]] = {}  # v1
        # every event made, oldest first: {"id", "event_type", "body", "headers", "deliveries"}
        self.events: list[dict[str, Any]] = []
        self.counts = dict.fromkeys(_COUNTS, 0)

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self) -> dict[str, Any]:
        token = "A21AA" + secrets.token_urlsafe(60)
        with self.lock:
            now = time.monotonic()
            self.tokens = {t: at for t, at in self.tokens.items() if at > now}
            self.tokens[token] = now + self.config.token_lifetime_s
            self.counts["tokens_issued"] += 1
        return {
            "scope": "https://uri.paypal.com/services/payments/payment "
            "https://uri.paypal.com/services/payments/refund "
            "https://uri.paypal.com/services/applications/webhooks",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": self.config.app_id,
            "expires_in": self.config.token_lifetime_s,
            "nonce": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}{secrets.token_hex(8)}",
        }

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and expires > time.monotonic()

    def revoke_tokens(self) -> int:
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
        return count

    # -- money -------------------------------------------------------------------------------
    def fee(self, amount: Decimal) -> Decimal:
        percent = Decimal(self.config.fee_percent) / 100
        fixed = Decimal(self.config.fee_fixed)
        return (amount * percent + fixed).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    # -- bookkeeping -------------------------------------------------------------------------
    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self.lock:
            for item in self.events:
                if item["id"] == event_id:
                    return item
        return None

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.counts,
                "webhook_id": self.config.webhook_id,
                "webhook_url": self.config.webhook_url,
                "cert_url": self.config.cert_url,
                "active_tokens": sum(1 for at in self.tokens.values() if at > time.monotonic()),
                "captures_by_status": _by_status(self.captures.values()),
                "events_by_type": _by_type(self.events),
            }

    def reset(self) -> None:
        """Forget tokens, orders, captures, refunds, sales, events and counts; the key stays."""
        with self.lock:
            self._clear()


def _by_status(items: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        found[item["status"]] = found.get(item["status"], 0) + 1
    return found


def _by_type(events: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in events:
        found[item["event_type"]] = found.get(item["event_type"], 0) + 1
    return found
