"""The ``accounts.getcourse`` block of a school in ``schoolsync.yaml``.

Secrets are named, never written: ``key_env`` and ``callback_secret_env`` hold the NAMES of the
environment variables the app layer reads the API key and the callback secret from.

    accounts:
      getcourse:
        account: myschool
        base_url: https://myschool.getcourse.ru    # optional; a custom domain if the account
                                                   # force-redirects to one
        key_env: SCHOOLSYNC_GETCOURSE_MYSCHOOL_KEY
        callback_secret_env: SCHOOLSYNC_GETCOURSE_MYSCHOOL_CALLBACK
        timezone: Europe/Moscow                    # the account's own zone
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "getcourse"


class GetCourseAccount(BaseModel):
    """One GetCourse account (school) and how hard we may use its export API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    base_url: str = Field(
        default="",
        description="https://{account}.getcourse.ru when empty; a custom domain or the sandbox URL",
    )
    key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    callback_secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timezone: str = Field(
        default="Europe/Moscow",
        description="the account's time zone: callback and export times are local to it",
    )
    export_budget: int = Field(default=100, ge=1, description="export API requests per window")
    export_window_s: int = Field(default=7200, ge=60)
    timeout_s: float = Field(default=30, gt=0, le=600)
    export_every_s: int = Field(
        default=1800,
        ge=5,
        description="how often the catch-up export looks for orders whose callback never came",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Moscow)"
            ) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not value:
            return value
        return account_url(value, example="https://myschool.getcourse.ru", any_path=True)

    @model_validator(mode="after")
    def _default_base_url(self) -> GetCourseAccount:
        if not self.base_url:
            object.__setattr__(self, "base_url", f"https://{self.account}.getcourse.ru")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.account)
