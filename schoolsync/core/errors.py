"""Every error schoolsync raises on purpose, and what happens because of it.

The class decides the policy; callers never look at messages or status codes::

    SchoolsyncError
    ├── RetryableError            try again later (job retried with backoff, honouring retry_after)
    │   ├── RateLimitedError      the platform said 429 / too many requests
    │   ├── UnavailableError      5xx, timeout, connection refused
    │   └── StoreUnavailableError our own database or Redis cannot be reached
    ├── PermanentError            retrying cannot help: fail fast, keep for replay after a fix
    │   ├── AuthError             401/403, expired or revoked credentials
    │   ├── RejectedError         400/422: the platform refused what we sent
    │   ├── NotFoundError         404: the thing we point at does not exist
    │   ├── UnmappableError       a status, product or field our mapping does not know
    │   ├── MalformedInputError   inbound data we cannot parse (kept as rejected)
    │   └── ConfigError           the configuration is wrong or incomplete
    └── VerificationError         forged or unverifiable input: bad signature, untrusted source

Errors carry what an operator needs (platform, account, request id, status) and never a body,
a query string or a token: those carry personal data and secrets.
"""

from __future__ import annotations


class SchoolsyncError(Exception):
    """Base of every deliberate schoolsync error."""

    def __init__(
        self,
        message: str,
        *,
        platform: str | None = None,
        account: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.account = account
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("request_id", self.request_id),
                ("platform", self.platform),
                ("account", self.account),
                ("status", self.status),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message


class RetryableError(SchoolsyncError):
    """A transient failure; ``retry_after`` (seconds) is the earliest sensible retry, if known."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: object
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """The platform asked us to slow down."""


class UnavailableError(RetryableError):
    """The platform is down, slow or unreachable."""


class StoreUnavailableError(RetryableError):
    """Our own state store or broker cannot be reached."""


class PermanentError(SchoolsyncError):
    """Retrying the same input cannot succeed; a person or a config change must act first."""


class AuthError(PermanentError):
    """Credentials were refused."""


class RejectedError(PermanentError):
    """The platform refused the request as invalid."""


class NotFoundError(PermanentError):
    """The referenced object does not exist on the platform."""


class UnmappableError(PermanentError):
    """Input names something the mapping does not know (status, product, field)."""


class MalformedInputError(PermanentError):
    """Inbound data is not in the expected format."""


class ConfigError(PermanentError):
    """The configuration is missing something or contradicts itself."""


class VerificationError(SchoolsyncError):
    """Inbound data failed verification (signature, source address): treat as forged."""


class ForbiddenSourceError(VerificationError):
    """Inbound data came from an address the platform does not send from (answered 403)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether a job that raised ``exc`` should be tried again.

    Our own errors decide by class; anything unexpected (a bug, a library error) is retried a
    bounded number of times, because most unexpected errors in a sync service are transient.
    """
    if isinstance(exc, RetryableError):
        return True
    return not isinstance(exc, PermanentError | VerificationError)
