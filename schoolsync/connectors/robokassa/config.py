"""The ``accounts.robokassa`` block of a school in ``schoolsync.yaml``.

Secrets are named, never written: the ``*_env`` fields hold the NAMES of the secrets the app
layer reads the shop's passwords from (``SCHOOLSYNC_SECRETS__<NAME>``).

    accounts:
      robokassa:
        merchant_login: my-school            # the shop's identifier (technical settings)
        password1_env: robokassa_pass1       # Password #1: signs payment links
        password2_env: robokassa_pass2       # Password #2: checks ResultURL notifications
        test_password1_env: robokassa_test1  # the test pair, used when IsTest=1
        test_password2_env: robokassa_test2
        hash: md5                            # the algorithm chosen in the technical settings

ResultURL in the shop's technical settings: ``https://<our host>/webhooks/robokassa``, method
POST (GET works too). Against the sandbox:
``base_url: http://127.0.0.1:8900/robokassa/Merchant/Index.aspx``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "robokassa"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

HashName = Literal["md5", "sha1", "sha256", "sha384", "sha512", "ripemd160"]
PAYMENT_PAGE = "https://auth.robokassa.ru/Merchant/Index.aspx"


class RobokassaAccount(BaseModel):
    """One Robokassa shop: its login, where its passwords are, its hash algorithm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Robokassa shop identifiers are Latin letters, digits, '-' and '_'
    merchant_login: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    password1_env: str = Field(pattern=_ENV_NAME)
    password2_env: str = Field(pattern=_ENV_NAME)
    test_password1_env: str | None = Field(default=None, pattern=_ENV_NAME)
    test_password2_env: str | None = Field(default=None, pattern=_ENV_NAME)
    hash: HashName = "md5"
    # the payment page; the sandbox's on loopback
    base_url: str = PAYMENT_PAGE

    @field_validator("base_url")
    @classmethod
    def _page_url(cls, value: str) -> str:
        return account_url(value, example=PAYMENT_PAGE, any_path=True)

    @model_validator(mode="after")
    def _test_pair(self) -> RobokassaAccount:
        if (self.test_password1_env is None) != (self.test_password2_env is None):
            raise ValueError(
                "test_password1_env and test_password2_env go together (Robokassa's test mode "
                "has its own pair of passwords)"
            )
        return self

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.merchant_login)
