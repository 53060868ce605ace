"""What the sandbox PayPal app looks like: its credentials, webhook and signing certificate."""

from __future__ import annotations

from dataclasses import dataclass

CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-5c4b1a2e"


@dataclass
class PayPalSandboxConfig:
    """Settings of one fake PayPal REST app.

    ``client_id``/``client_secret`` are the sandbox's own, public credentials. Events go to
    ``webhook_url`` (when set) for the webhook ``webhook_id``, signed with the sandbox's key;
    ``cert_url`` is what ``PAYPAL-CERT-URL`` says: a PayPal-style https URL whose content is the
    certificate served at ``/_sandbox/cert.pem`` (seed it into the receiver's cache; nothing
    is served at that host). Deliveries are tried ``webhook_retries + 1`` times.
    ``cert_pem_path``: write the certificate there at start, for ``schoolsync run``.
    """

    client_id: str = "sandbox-paypal-client-id"
    client_secret: str = "sandbox-paypal-client-secret"  # noqa: S105 - the sandbox's own
    app_id: str = "APP-80W284485P519543T"
    webhook_id: str = "1JE4291016473214C"
    webhook_url: str | None = None
    cert_url: str = CERT_URL
    token_lifetime_s: int = 32400
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_retry_delay_s: float = 0.05
    fee_percent: str = "3.49"
    fee_fixed: str = "0.49"
    cert_pem_path: str | None = None
