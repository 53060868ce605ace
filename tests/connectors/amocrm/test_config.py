"""The accounts.amocrm block: one way to authenticate, an account URL, secret names only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schoolsync.connectors.amocrm.config import AmoCrmAccount

OAUTH = {
    "account": "main",
    "base_url": "https://school.amocrm.ru",
    "client_id": "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
    "redirect_uri": "https://sync.school.ru/amocrm/oauth",
    "client_secret_env": "SCHOOLSYNC_AMOCRM__CLIENT_SECRET",
}


def errors(**block: object) -> str:
    with pytest.raises(ValidationError) as caught:
        AmoCrmAccount.model_validate(block)
    return str(caught.value)


def test_oauth_account() -> None:
    account = AmoCrmAccount.model_validate({**OAUTH, "base_url": "https://school.amocrm.ru/"})

    assert account.auth == "oauth"
    assert account.base_url == "https://school.amocrm.ru"
    assert account.subdomain == "school"
    assert account.rate_per_s == 7
    assert account.timeout_s == 20


def test_long_lived_token_account() -> None:
    account = AmoCrmAccount.model_validate(
        {
            "account": "main",
            "base_url": "https://school.kommo.com",
            "long_lived_token_env": "AMO_TOKEN",
        }
    )

    assert account.auth == "long_lived"


def test_partial_oauth_names_what_is_missing() -> None:
    message = errors(account="main", base_url="https://school.amocrm.ru", client_id="x")

    assert "missing: redirect_uri, client_secret_env" in message


def test_both_ways_at_once_is_refused() -> None:
    assert "not both" in errors(**OAUTH, long_lived_token_env="AMO_TOKEN")


def test_neither_way_is_refused() -> None:
    assert "long_lived_token_env" in errors(account="main", base_url="https://school.amocrm.ru")


def test_a_secret_value_in_the_file_is_refused() -> None:
    assert "client_secret" in errors(**OAUTH, client_secret="s3cr3t")


def test_secret_names_must_be_environment_variable_names() -> None:
    assert "client_secret_env" in errors(**{**OAUTH, "client_secret_env": "not a name!"})


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://school.amocrm.ru", "https"),
        ("https://www.amocrm.ru", "www."),
        ("https://school.amocrm.ru/api/v4", "address only"),
        ("school.amocrm.ru", "URL like"),
    ],
)
def test_base_url_must_be_the_accounts_own_https_address(url: str, problem: str) -> None:
    assert problem in errors(**{**OAUTH, "base_url": url})


def test_a_local_sandbox_may_use_http_and_a_path() -> None:
    account = AmoCrmAccount.model_validate({**OAUTH, "base_url": "http://127.0.0.1:8765/amocrm/"})

    assert account.base_url == "http://127.0.0.1:8765/amocrm"
    assert account.subdomain is None


def test_rate_must_be_positive() -> None:
    assert "rate_per_s" in errors(**OAUTH, rate_per_s=0)
