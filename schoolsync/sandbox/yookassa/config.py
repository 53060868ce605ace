"""What the sandbox shop looks like: its credentials, where it notifies, how fast it answers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

SHOP_ID = "100500"
SECRET_KEY = "test_sandbox_secret"  # noqa: S105 - the sandbox's own, public key


@dataclass
class YooKassaSandboxConfig:
    """Settings of one fake shop.

    ``shop_id`` and ``secret_key`` are the Basic auth pair every ``/v3`` request must carry.
    ``webhook_url`` is where notifications go (the HTTP notifications setting of the shop's
    cabinet); ``POST /_sandbox/webhook`` changes it at run time. A delivery counts when the
    receiver answers 200; it is tried ``webhook_retries + 1`` times in all. ``rate_per_s``
    requests per second are answered, more get 429 (YooKassa publishes no number).
    ``fee_percent`` is YooKassa's commission, taken from ``income_amount``.
    """

    shop_id: str = SHOP_ID
    secret_key: str = SECRET_KEY
    gateway_id: str = "100700"
    test: bool = True
    webhook_url: str | None = None
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 3
    webhook_retry_delay_s: float = 0.05
    rate_per_s: int = 50
    fee_percent: Decimal = Decimal("3.5")
    idempotence_ttl_s: float = 24 * 3600.0
