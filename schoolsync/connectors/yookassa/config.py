"""The ``accounts.yookassa`` block of a school in ``schoolsync.yaml``.

The secret key is named, never written: ``secret_key_env`` holds the NAME of the secret the app
layer reads it from (``SCHOOLSYNC_SECRETS__<NAME>`` in the environment).

    accounts:
      yookassa:
        shop_id: "100500"                      # the shopId: Basic auth user name
        secret_key_env: yookassa_key           # SCHOOLSYNC_SECRETS__YOOKASSA_KEY=live_... (or test_...)
        trusted_proxies: [10.0.0.0/8]          # our reverse proxies, whose X-Forwarded-For counts

Notifications carry no signature: they are believed only when they come from YooKassa's
networks (``trusted_networks``, by default the list in YooKassa's own SDKs: yookassa-sdk-python
``security_helper.py``, yookassa-sdk-php ``SecurityHelper.php``), and the app re-fetches the
payment before acting on it. Behind a reverse proxy the TCP peer is the proxy: list it in
``trusted_proxies`` and its ``X-Forwarded-For`` is used instead (see ``webhooks``).

YooKassa publishes no rate limit (only that 429 ``too_many_requests`` exists); ``rate_per_s``
is our own guess and a 429 is honoured whatever it says.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "yookassa"
DEFAULT_BASE_URL = "https://api.yookassa.ru/v3"
# verbatim from YooKassa's SDKs (tests/fixtures/yookassa/trusted_networks.txt)
YOOKASSA_NETWORKS: tuple[str, ...] = (
    "77.75.153.0/25",
    "77.75.156.11/32",
    "77.75.156.35/32",
    "77.75.154.128/25",
    "185.71.76.0/27",
    "185.71.77.0/27",
    "2a02:5180:0:1509::/64",
    "2a02:5180:0:2655::/64",
    "2a02:5180:0:1533::/64",
    "2a02:5180:0:2669::/64",
)
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks; ``ValueError`` naming the bad one.

    Host bits must be zero (``77.75.153.0/25``, not ``77.75.153.7/25``): a typo must not widen
    or shift what is trusted.
    """
    networks: list[IPNetwork] = []
    for value in values:
        text = value.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP network (write 77.75.153.0/25, 77.75.156.11 or "
                "2a02:5180:0:1509::/64; host bits must be zero)"
            ) from None
    return tuple(networks)


class YooKassaAccount(BaseModel):
    """One shop: its id, where its secret key is, which addresses may notify us."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shop_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    secret_key_env: str = Field(pattern=_ENV_NAME)
    # https://api.yookassa.ru/v3, an egress proxy, or the sandbox (http://127.0.0.1:8100/yookassa/v3)
    base_url: str = DEFAULT_BASE_URL
    # YooKassa answers 500 when it cannot answer within 30 s, so wait a little longer than that
    timeout_s: float = Field(default=40.0, gt=0, le=300)
    trusted_networks: list[str] = Field(default_factory=lambda: list(YOOKASSA_NETWORKS))
    trusted_proxies: list[str] = Field(default_factory=list)
    rate_per_s: float = Field(default=5.0, gt=0, le=100)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return account_url(value, example=DEFAULT_BASE_URL, any_path=True)

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one network is needed (the default is YooKassa's list)")
        return [str(network) for network in parse_networks(value)]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        return [str(network) for network in parse_networks(value)]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.shop_id)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_networks)

    @property
    def proxies(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)
