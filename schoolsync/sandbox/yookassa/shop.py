"""One running sandbox shop: payments, refunds, remembered Idempotence-Keys, counts, faults,
the request limit and the notifier. Everything that changes state holds ``lock``."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schoolsync.sandbox.yookassa.config import YooKassaSandboxConfig
from schoolsync.sandbox.yookassa.faults import Faults
from schoolsync.sandbox.yookassa.limits import RequestLimit
from schoolsync.sandbox.yookassa.notify import Notifier

_COUNTS = (
    "requests",
    "payments_created",
    "refunds_created",
    "idempotent_replays",
    "rate_limited",
    "errors",
    "faults",
)


@dataclass
class Record:
    """A payment with what orders it: creation time, then creation sequence."""

    seq: int
    created: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class Remembered:
    """The result of a POST under one Idempotence-Key."""

    fingerprint: str
    body: dict[str, Any]
    at: float


class YooKassaSandbox:
    def __init__(self, config: YooKassaSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.faults = Faults()
        self.limit = RequestLimit(config.rate_per_s)
        self.notifier = Notifier(
            timeout_s=config.webhook_timeout_s,
            retries=config.webhook_retries,
            retry_delay_s=config.webhook_retry_delay_s,
        )
        self.webhook_url = config.webhook_url
        self._load()

    def _load(self) -> None:
        self.payments: dict[str, Record] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, Remembered] = {}
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._seq = 0

    # -- access ---------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        """``Authorization: Basic base64(shopId:secretKey)`` with this shop's pair."""
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        shop, _, secret = decoded.partition(":")
        expected = f"{self.config.shop_id}:{self.config.secret_key}"
        return hmac.compare_digest(f"{shop}:{secret}".encode(), expected.encode())

    # -- idempotence ----------------------------------------------------------------------------
    def recall(self, key: str) -> Remembered | None:
        remembered = self.keys.get(key)
        if remembered is None:
            return None
        if time.monotonic() - remembered.at > self.config.idempotence_ttl_s:
            del self.keys[key]
            return None
        return remembered

    def remember(self, key: str, fingerprint: str, body: dict[str, Any]) -> None:
        self.keys[key] = Remembered(fingerprint, body, time.monotonic())

    # -- payments -------------------------------------------------------------------------------
    def add_payment(self, body: dict[str, Any], created: datetime) -> Record:
        """Call with ``lock`` held."""
        self._seq += 1
        record = Record(self._seq, created, body)
        self.payments[body["id"]] = record
        self.counts["payments_created"] += 1
        return record

    def newest_first(self) -> list[Record]:
        return sorted(self.payments.values(), key=lambda r: (r.created, r.seq), reverse=True)

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        """Send a notification (a copy of ``payload`` as it is now), if a URL is set."""
        if self.webhook_url:
            self.notifier.submit(self.webhook_url, event, _copy(payload))

    # -- bookkeeping ----------------------------------------------------------------------------
    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def state(self) -> dict[str, Any]:
        with self.lock:
            by_status: dict[str, int] = {}
            for record in self.payments.values():
                status = str(record.body["status"])
                by_status[status] = by_status.get(status, 0) + 1
            return {
                **self.counts,
                "shop_id": self.config.shop_id,
                "payments": len(self.payments),
                "payments_by_status": by_status,
                "refunds": len(self.refunds),
                "idempotence_keys": len(self.keys),
                "rate_per_s": self.limit.per_s,
                "webhook_set": bool(self.webhook_url),
                "notifications": self.notifier.snapshot(),
                "fault_rules": self.faults.rules(),
            }

    def reset(self) -> None:
        """Payments, refunds, keys, counts, faults, the limit and the notification log cleared;
        the webhook URL goes back to the configured one."""
        with self.lock:
            self._load()
            self.faults.clear()
            self.limit.reset()
            self.limit.configure(self.config.rate_per_s)
            self.notifier.reset()
            self.webhook_url = self.config.webhook_url


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def payment_now(record: Record) -> dict[str, Any]:
    return dict(_copy(record.body))
