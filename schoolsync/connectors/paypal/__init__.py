"""PayPal REST: OAuth2 client credentials, v2 captures, refunds and orders, v1 sales, and
webhooks verified offline (RSA-SHA256 against the certificate at ``PAYPAL-CERT-URL``, cached)
or online (PayPal's verify-webhook-signature). The signature covers only a CRC-32 of the body:
what an event names is re-fetched before it counts (``sync_jobs.services.provider_payments``).
Facts and their sources are in the module docstrings and in ``tests/fixtures/paypal/README.md``.
"""

from schoolsync.connectors.paypal.auth import PayPalTokens
from schoolsync.connectors.paypal.certs import CertStore, cache_name, parse_pem
from schoolsync.connectors.paypal.client import PayPalClient
from schoolsync.connectors.paypal.config import PayPalAccount
from schoolsync.connectors.paypal.models import (
    Amount,
    Capture,
    Order,
    Payer,
    Refund,
    Sale,
    WebhookEvent,
)
from schoolsync.connectors.paypal.verify import (
    AUTH_ALGO,
    Transmission,
    check_certificate,
    crc32,
    signed_message,
    verify_offline,
)
from schoolsync.connectors.paypal.webhooks import (
    CAPTURE_COMPLETED,
    CAPTURE_REFUNDED,
    SALE_COMPLETED,
    OnlineVerifier,
    PayPalRoute,
    PayPalWebhook,
    event_resource,
    parse_event,
)

__all__ = [
    "AUTH_ALGO",
    "CAPTURE_COMPLETED",
    "CAPTURE_REFUNDED",
    "SALE_COMPLETED",
    "Amount",
    "Capture",
    "CertStore",
    "OnlineVerifier",
    "Order",
    "PayPalAccount",
    "PayPalClient",
    "PayPalRoute",
    "PayPalTokens",
    "PayPalWebhook",
    "Payer",
    "Refund",
    "Sale",
    "Transmission",
    "WebhookEvent",
    "cache_name",
    "check_certificate",
    "crc32",
    "event_resource",
    "parse_event",
    "parse_pem",
    "signed_message",
    "verify_offline",
]
