"""The ``accounts.smtp`` block of a school in ``schoolsync.yaml``: where e-mail goes out.

    accounts:
      smtp:
        host: smtp.example.org
        port: 587
        from: "Школа <noreply@example.org>"
        username: noreply@example.org
        password_env: smtp_password        # SCHOOLSYNC_SECRETS__SMTP_PASSWORD
        starttls: true

The password is named, never inlined. Against the sandbox: ``host: 127.0.0.1``, the sandbox's
port, ``starttls: false`` and no username.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PLATFORM = "smtp"


class SmtpAccount(BaseModel):
    """One outgoing mail server and the sender address used on it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(alias="from", min_length=3)
    username: str | None = None
    password_env: str | None = None
    starttls: bool = True
    timeout_s: float = Field(default=20.0, gt=0, le=120)

    @property
    def account(self) -> str:
        """Our name of the account in errors and logs: the server, never the user."""
        return f"{self.host}:{self.port}"
