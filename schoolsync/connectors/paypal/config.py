"""The ``accounts.paypal`` block of a school in ``schoolsync.yaml``.

The client secret is named, never written: ``client_secret_env`` holds the NAME of the secret
(``SCHOOLSYNC_SECRETS__<NAME>``).

    accounts:
      paypal:
        client_id: AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS
        client_secret_env: paypal_secret       # SCHOOLSYNC_SECRETS__PAYPAL_SECRET=<from the app>
        webhook_id: 4JH86294D6297924G          # the id of our webhook subscription
        verify: offline                        # or online (PayPal's verify-webhook-signature)
        # cert_cache_dir: paypal-certs         # under the data directory unless absolute

``base_url`` is https://api-m.paypal.com (live) or https://api-m.sandbox.paypal.com (PayPal's
sandbox); our own sandbox on loopback (``http://127.0.0.1:8900/paypal``) is allowed too.
``cert_hosts`` are the host-name suffixes a ``PAYPAL-CERT-URL`` must end with before its
certificate is fetched or used; a cache directory can be seeded with certificates in advance.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "paypal"
LIVE_URL = "https://api-m.paypal.com"
SANDBOX_URL = "https://api-m.sandbox.paypal.com"
DEFAULT_CERT_DIR = "paypal-certs"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SUFFIX = re.compile(r"^\.[a-z0-9-]+(?:\.[a-z0-9-]+)+$")


class PayPalAccount(BaseModel):
    """One PayPal REST app: its credentials, its webhook and how webhooks are verified."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # our name for the app, in errors and logs
    account: str = Field(default="paypal", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    client_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")
    client_secret_env: str = Field(pattern=_ENV_NAME)
    webhook_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    base_url: str = LIVE_URL
    verify: Literal["offline", "online"] = "offline"
    # where signing certificates are kept by sha256(cert url); None: <data dir>/paypal-certs
    cert_cache_dir: Path | None = None
    cert_hosts: list[str] = Field(default_factory=lambda: [".paypal.com"], min_length=1)
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return account_url(value, example=LIVE_URL)

    @field_validator("cert_hosts")
    @classmethod
    def _suffixes(cls, value: list[str]) -> list[str]:
        cleaned = [suffix.strip().lower() for suffix in value]
        for suffix in cleaned:
            if not _SUFFIX.match(suffix):
                raise ValueError(
                    f"{suffix!r} must be a host-name suffix starting with a dot, like .paypal.com"
                )
        return cleaned

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.account)

    def cert_dir(self, data_dir: Path) -> Path:
        """The certificate cache: ``cert_cache_dir`` (relative to ``data_dir`` unless
        absolute), or ``data_dir/paypal-certs``."""
        if self.cert_cache_dir is None:
            return data_dir / DEFAULT_CERT_DIR
        return (
            self.cert_cache_dir
            if self.cert_cache_dir.is_absolute()
            else data_dir / self.cert_cache_dir
        )
