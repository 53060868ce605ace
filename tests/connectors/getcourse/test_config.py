from __future__ import annotations

import pytest
from pydantic import ValidationError

from schoolsync.connectors.getcourse.config import GetCourseAccount

NAMES = {"key_env": "GC_KEY", "callback_secret_env": "GC_CALLBACK"}


def test_defaults_to_the_account_subdomain_and_moscow_time() -> None:
    account = GetCourseAccount(account="myschool", **NAMES)
    assert account.base_url == "https://myschool.getcourse.ru"
    assert str(account.tz) == "Europe/Moscow"
    assert (account.export_budget, account.export_window_s) == (100, 7200)
    assert account.endpoint.account == "myschool"


def test_custom_domain_and_local_sandbox() -> None:
    custom = GetCourseAccount(account="myschool", base_url="https://learn.school.ru/", **NAMES)
    assert custom.base_url == "https://learn.school.ru"
    sandbox = GetCourseAccount(account="x", base_url="http://127.0.0.1:8765/gc", **NAMES)
    assert sandbox.base_url == "http://127.0.0.1:8765/gc"


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "http://myschool.getcourse.ru"},  # the key would travel in clear text
        {"base_url": "https://myschool.getcourse.ru/?key=abc"},
        {"timezone": "Moscow"},
        {"key_env": "not a name"},
        {"export_budget": 0},
        {"api_key": "literal-secret"},  # secrets are never read from the YAML
    ],
)
def test_refuses_bad_settings(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GetCourseAccount.model_validate({"account": "myschool", **NAMES, **changes})
