"""The accounts.yookassa block: secrets by name, the base URL, networks and proxies."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint
from schoolsync.connectors.yookassa.config import YOOKASSA_NETWORKS, YooKassaAccount

NETWORKS_FILE = Path(__file__).parents[2] / "fixtures" / "yookassa" / "trusted_networks.txt"


def test_defaults() -> None:
    account = YooKassaAccount(shop_id="100500", secret_key_env="yookassa_key")
    assert account.base_url == "https://api.yookassa.ru/v3"
    assert account.trusted_networks == list(YOOKASSA_NETWORKS)
    assert account.trusted_proxies == []
    assert account.rate_per_s == 5.0
    assert account.endpoint == Endpoint("yookassa", "100500")


def test_default_networks_are_the_published_list() -> None:
    published = [
        line.strip()
        for line in NETWORKS_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {ipaddress.ip_network(n) for n in published} == {
        ipaddress.ip_network(n) for n in YOOKASSA_NETWORKS
    }
    kinds = {type(n) for n in YooKassaAccount(shop_id="1", secret_key_env="K").networks}
    assert kinds == {ipaddress.IPv4Network, ipaddress.IPv6Network}


def test_networks_and_proxies_are_normalised() -> None:
    account = YooKassaAccount(
        shop_id="1",
        secret_key_env="K",
        trusted_networks=["127.0.0.1", " 2a02:5180::/32 "],
        trusted_proxies=["10.0.0.0/8"],
    )
    assert account.trusted_networks == ["127.0.0.1/32", "2a02:5180::/32"]
    assert account.proxies == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("bad", ["77.75.153.7/25", "not-an-ip", "300.1.1.1"])
def test_bad_networks_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not an IP network"):
        YooKassaAccount(shop_id="1", secret_key_env="K", trusted_networks=[bad])
    with pytest.raises(ValidationError, match="is not an IP network"):
        YooKassaAccount(shop_id="1", secret_key_env="K", trusted_proxies=[bad])


def test_an_empty_network_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one network"):
        YooKassaAccount(shop_id="1", secret_key_env="K", trusted_networks=[])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.yookassa.ru/v3/", "https://api.yookassa.ru/v3"),
        ("http://127.0.0.1:8100/yookassa/v3", "http://127.0.0.1:8100/yookassa/v3"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    assert YooKassaAccount(shop_id="1", secret_key_env="K", base_url=url).base_url == expected


@pytest.mark.parametrize(
    "url", ["http://api.yookassa.ru/v3", "https://api.yookassa.ru/v3?key=x", "api.yookassa.ru"]
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        YooKassaAccount(shop_id="1", secret_key_env="K", base_url=url)


def test_secrets_are_env_names_not_values() -> None:
    with pytest.raises(ValidationError):
        YooKassaAccount(shop_id="1", secret_key_env="live_abc:def")
    with pytest.raises(ValidationError):
        YooKassaAccount(shop_id="1", secret_key_env="K", secret_key="live_x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        YooKassaAccount(shop_id="100:500", secret_key_env="K")
