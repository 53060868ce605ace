"""Process settings from the environment (prefix ``SCHOOLSYNC_``, nesting with ``__``).

Secrets live here and only here (``SecretStr``, environment only); accounts, channels, mappings
and rules live in the YAML file named by ``SCHOOLSYNC_CONFIG`` (see ``core.config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BrokerSettings(BaseModel):
    """Dramatiq RedisBroker tuning.

    A crashed worker's messages come back only when another process notices its heartbeat is
    older than ``heartbeat_timeout_ms`` during a random maintenance pass (``maintenance_chance``
    per million broker calls). Dramatiq's defaults (60 s, 1,000) left a killed message away for
    more than 15 minutes; 30 s and 20,000 bring it back in about a minute while a live worker that
    is merely slow (it polls every second) keeps its messages.
    """

    namespace: str = "schoolsync"
    heartbeat_timeout_ms: int = Field(default=30_000, ge=5_000)
    maintenance_chance: int = Field(default=20_000, ge=1, le=1_000_000)


class JobSettings(BaseModel):
    """Retry and recovery policy for every job."""

    max_retries: int = Field(default=8, ge=0)
    min_backoff_ms: int = Field(default=5_000, ge=101)
    max_backoff_ms: int = Field(default=3_600_000, ge=1_000)
    time_limit_ms: int = Field(default=300_000, ge=1_000)
    max_crashes: int = Field(
        default=3, ge=1, description="starts without an end before a job is poison"
    )
    relay_every_s: int = Field(default=10, ge=1)
    enqueue_grace_s: int = Field(
        default=5, ge=1, description="age of a never-enqueued job before the relay sends it"
    )
    requeue_after_s: int = Field(
        default=600, ge=10, description="age after which a queued job is sent again"
    )


class WorkerSettings(BaseModel):
    processes: int = Field(default=2, ge=1)
    threads: int = Field(default=8, ge=1)
    shutdown_timeout_ms: int = Field(default=30_000, ge=1_000)


class AdminToken(BaseModel):
    """One admin API token: its name is what the audit trail records as who acted.

    ``viewer`` sees everything with personal data masked and can do nothing; ``operator`` also
    replays, resolves and ignores. Set as ``SCHOOLSYNC_ADMIN_TOKENS__<NAME>__TOKEN`` and
    ``SCHOOLSYNC_ADMIN_TOKENS__<NAME>__ROLE``.
    """

    token: SecretStr = Field(min_length=16)
    role: Literal["viewer", "operator"] = "viewer"


class Settings(BaseSettings):
    """Everything a process needs to start; nothing here is personal data."""

    model_config = SettingsConfigDict(
        env_prefix="SCHOOLSYNC_", env_nested_delimiter="__", extra="ignore"
    )

    config: Path = Path("schoolsync.yaml")
    data_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    generic_secret: SecretStr | None = None
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "named secrets that schoolsync.yaml refers to by name (key_env: getcourse_key -> "
            "SCHOOLSYNC_SECRETS__GETCOURSE_KEY)"
        ),
    )
    sandbox: bool | None = Field(
        default=None,
        description=(
            "serve the platform sandboxes and point schools without GetCourse/amoCRM accounts "
            "at them; default: on for `run` when no school configures a platform"
        ),
    )
    sandbox_port: int = Field(default=8100, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    telegram_poll_every_s: int = Field(
        default=5, ge=1, le=300, description="getUpdates interval for bots with `updates: poll`"
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "bearer token of the operator named 'admin' for /admin/api/* (the admin API is off "
            "without it and without admin_tokens)"
        ),
    )
    admin_tokens: dict[str, AdminToken] = Field(
        default_factory=dict,
        description=(
            "named admin tokens with their roles (viewer: masked, read only; operator: acts): "
            "SCHOOLSYNC_ADMIN_TOKENS__ANNA__TOKEN=..., SCHOOLSYNC_ADMIN_TOKENS__ANNA__ROLE=operator"
        ),
    )

    environment: str = Field(
        default="production",
        description="the environment tag of Sentry events (production, staging, ...)",
    )
    sentry_dsn: SecretStr | None = Field(
        default=None,
        description="Sentry DSN; Sentry is off without it (events are scrubbed of PII)",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    test_hooks: bool = Field(
        default=False,
        description="lets generic events of type test.* sleep, crash or fail; for the test suite only",
    )

    broker: BrokerSettings = BrokerSettings()
    jobs: JobSettings = JobSettings()
    worker: WorkerSettings = WorkerSettings()

    @field_validator(
        "generic_secret", "admin_token", "sentry_dsn", "database_url", "redis_url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``SCHOOLSYNC_GENERIC_SECRET=`` (an env file's empty line) means "not set": an empty
        webhook secret or admin token would otherwise let anyone sign or sign in."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _drop_empty_secrets(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if not (isinstance(v, str) and not v.strip())}
        return value

    def secret(self, name: str) -> str | None:
        """The value of a named secret (names are case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.secrets.items():
            if key.lower() == wanted:
                return value.get_secret_value()
        return None

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the SQLite file under ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'schoolsync.db'}"
