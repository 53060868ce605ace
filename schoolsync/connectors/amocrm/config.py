"""The ``accounts.amocrm`` block of a school's configuration.

Secrets are never in the file: ``client_secret_env``, ``long_lived_token_env`` and
``webhook_secret_env`` name environment variables, whose values the app layer reads.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schoolsync.connectors.http import LOOPBACK_HOSTS, account_url

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AmoCrmAccount(BaseModel):
    """One amoCRM account: where it is, how we authenticate, how fast we may call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,119}$")  # our name for it
    # https://{subdomain}.amocrm.ru (or .kommo.com); a sandbox on loopback may add a path
    base_url: str
    client_id: str | None = None
    redirect_uri: str | None = None
    client_secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    long_lived_token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    webhook_secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    rate_per_s: float = Field(default=7.0, gt=0, le=50)
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    # leads per /leads/complex request; amoCRM takes at most 50 (1 is only for comparison)
    batch_size: int = Field(default=50, ge=1, le=50)

    @field_validator("base_url")
    @classmethod
    def _account_url(cls, value: str) -> str:
        url = account_url(value, example="https://yourschool.amocrm.ru")
        if (urlsplit(url).hostname or "").startswith("www."):
            raise ValueError("must be the account's own domain, not www. (amoCRM requires it)")
        return url

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> AmoCrmAccount:
        oauth = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "client_secret_env": self.client_secret_env,
        }
        given = [name for name, value in oauth.items() if value]
        if self.long_lived_token_env and given:
            raise ValueError(
                "set either OAuth (client_id, redirect_uri, client_secret_env) or "
                "long_lived_token_env, not both"
            )
        if not self.long_lived_token_env and len(given) < len(oauth):
            missing = ", ".join(name for name in oauth if name not in given)
            raise ValueError(
                f"OAuth needs client_id, redirect_uri and client_secret_env (missing: {missing}); "
                "or set long_lived_token_env for a private integration"
            )
        return self

    @property
    def auth(self) -> Literal["oauth", "long_lived"]:
        return "long_lived" if self.long_lived_token_env else "oauth"

    @property
    def subdomain(self) -> str | None:
        """``school`` for ``https://school.amocrm.ru``; ``None`` for a sandbox on loopback."""
        host = urlsplit(self.base_url).hostname or ""
        if host in LOOPBACK_HOSTS or "." not in host:
            return None
        return host.split(".", 1)[0]
