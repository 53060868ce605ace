"""The ``accounts.sheets`` block of a school in ``schoolsync.yaml``.

The key file is named, never inlined: ``key_file`` is the PATH of the service account's JSON key
(downloaded from the Cloud console, or from the sandbox's ``/sheets/_sandbox/key-file``); the
file itself is the secret and stays out of the YAML and out of every message.

    accounts:
      sheets:
        account: school_reports                 # our name for the service account
        key_file: /run/secrets/sheets-key.json
        per_minute: 60                          # Sheets' quota per user per project

Against the sandbox: ``base_url: http://127.0.0.1:8900/sheets`` and
``token_url: http://127.0.0.1:8900/sheets/token`` (or a key file downloaded from the sandbox,
whose ``token_uri`` already points there).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.connectors.http import Endpoint, account_url

PLATFORM = "sheets"


class SheetsAccount(BaseModel):
    """One service account: where Sheets is, where its key is, how fast it may call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    # https://sheets.googleapis.com, or the sandbox on loopback (a path such as /sheets allowed)
    base_url: str = "https://sheets.googleapis.com"
    key_file: Path
    # overrides the key file's token_uri (https://oauth2.googleapis.com/token)
    token_url: str | None = None
    per_minute: int = Field(default=60, ge=1, le=6000)
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return account_url(value, example="https://sheets.googleapis.com")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return account_url(value, example="https://oauth2.googleapis.com/token", any_path=True)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(platform=PLATFORM, account=self.account)

    @property
    def rate_per_s(self) -> float:
        """The pacer's rate: ``per_minute`` spread evenly over the minute."""
        return self.per_minute / 60.0
