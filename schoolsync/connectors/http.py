"""The one place where HTTP outcomes become schoolsync errors, and where clients are built.

Every connector builds its ``httpx.Client`` with :func:`build_client` and sends through
:func:`send`, which turns transport failures and status codes into the error tree of
``core.errors``::

    timeout, connection error  -> UnavailableError (retryable)
    429                        -> RateLimitedError with retry_after from Retry-After
    5xx                        -> UnavailableError with retry_after from Retry-After, if any
    401, 403                   -> AuthError
    404                        -> NotFoundError
    400, 409, 422, other 4xx   -> RejectedError

A platform that answers 200 with a failure in the body (GetCourse's ``success: false``) checks the
body itself and raises through :func:`body_failure`. Messages name the platform, account, method,
path and status; never the query string, body or headers (they carry keys and personal data).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from schoolsync.core.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    SchoolsyncError,
    UnavailableError,
)

USER_AGENT = "schoolsync/0.1 (+https://github.com/schoolsync/schoolsync)"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def account_url(value: str, *, example: str, any_path: bool = False) -> str:
    """A platform's base URL from the config, without the trailing slash.

    https only (plain http and a path are allowed on loopback, for a sandbox; ``any_path``
    allows a path anywhere), never a query string or fragment (keys must not sit in a URL).
    Raises ``ValueError`` with a message for ``check-config``.
    """
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"must be a URL like {example}")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("must use https (plain http is allowed only for a local sandbox)")
    if (
        parts.query
        or parts.fragment
        or (parts.path.strip("/") and host not in LOOPBACK_HOSTS and not any_path)
    ):
        raise ValueError(f"must be the address only, like {example}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class Endpoint:
    """Who we talk to: used in every error and log line."""

    platform: str
    account: str


def build_client(
    base_url: str,
    *,
    timeout: float = 20.0,
    connect_timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client with our timeouts, user agent and the account's base URL."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        transport=transport,
        follow_redirects=False,
    )


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), if present."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _where(endpoint: Endpoint, request: httpx.Request) -> str:
    return f"{endpoint.platform} {request.method} {request.url.path}"


def error_for(endpoint: Endpoint, response: httpx.Response, detail: str = "") -> SchoolsyncError:
    """The schoolsync error for a non-2xx ``response``."""
    status = response.status_code
    where = _where(endpoint, response.request)
    context: dict[str, Any] = {
        "platform": endpoint.platform,
        "account": endpoint.account,
        "status": status,
        "request_id": response.headers.get("X-Request-Id"),
    }
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return RateLimitedError(
            f"{where} rate limited{suffix}", retry_after=retry_after(response), **context
        )
    if status >= 500:
        return UnavailableError(
            f"{where} failed on the platform's side{suffix}",
            retry_after=retry_after(response),
            **context,
        )
    if status in (401, 403):
        return AuthError(f"{where} refused our credentials{suffix}", **context)
    if status == 404:
        return NotFoundError(f"{where} not found{suffix}", **context)
    return RejectedError(f"{where} rejected the request{suffix}", **context)


def body_failure(endpoint: Endpoint, response: httpx.Response, detail: str) -> RejectedError:
    """A 2xx answer whose body says the operation failed."""
    return RejectedError(
        f"{_where(endpoint, response.request)} answered {response.status_code} but failed: {detail}",
        platform=endpoint.platform,
        account=endpoint.account,
        status=response.status_code,
    )


def send(
    client: httpx.Client,
    endpoint: Endpoint,
    request: httpx.Request,
    *,
    detail: Any = None,
) -> httpx.Response:
    """Send ``request``; return a 2xx response or raise the matching schoolsync error.

    ``detail`` is a callable ``(response) -> str`` that extracts a safe explanation from an error
    body (a platform's ``detail`` field); its result must not contain personal data.
    """
    try:
        response = client.send(request)
    except httpx.TimeoutException as exc:
        raise UnavailableError(
            f"{_where(endpoint, request)} timed out ({type(exc).__name__})",
            platform=endpoint.platform,
            account=endpoint.account,
        ) from exc
    except httpx.TransportError as exc:
        raise UnavailableError(
            f"{_where(endpoint, request)} unreachable ({type(exc).__name__})",
            platform=endpoint.platform,
            account=endpoint.account,
        ) from exc
    if response.is_success:
        return response
    text = ""
    if detail is not None:
        try:
            text = str(detail(response))[:300]
        except Exception:  # an unparseable error body must not hide the status
            text = ""
    raise error_for(endpoint, response, text)
