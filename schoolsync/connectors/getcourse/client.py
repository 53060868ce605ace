"""GetCourse import API: ``POST /pl/api/users`` and ``/pl/api/deals`` with ``action=add``.

The request is a form: ``action=add&key={key}&params={base64(json)}`` (official PHP SDK,
``Core::sendRequest``). GetCourse answers HTTP 200 for nearly everything, failures included, so
every answer is read twice: the envelope (``success``, ``error_code``, ``error_message``) and,
for imports, the ``result`` (``success``, ``error``, ``error_message``)::

    HTTP status, timeout, connection       -> connectors.http.send (the usual table)
    200, empty body                        -> RejectedError (how GetCourse refuses an import
                                              the account's plan does not include)
    200, not JSON                          -> RejectedError (usually a wrong base_url)
    error_code 901 / "Неавторизованное"    -> AuthError (wrong key or wrong account domain)
    "Действие запрещено"                   -> AuthError (a read-only key used to import)
    error_code 903 / "Слишком много        -> RateLimitedError, retry after minutes
      запросов"                               (rate_limited_retry_after_s, default 600 s)
    error_code 905 / "Уже запущен один     -> RateLimitedError, retry after busy_retry_after_s
      экспорт"
    any other success:false, result.error  -> RejectedError with GetCourse's message

Error codes are third-party observations (github.com/zenland-dev/n8n-nodes-getcourse,
``helpers/errors.ts``); messages are matched as well, so a code we do not know still fails
safely. Messages are masked (``core.pii``) and never contain the key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import httpx

from schoolsync.connectors.getcourse.models import DealImport, ImportResult, UserImport, truthy
from schoolsync.connectors.http import Endpoint, body_failure, send
from schoolsync.core.errors import AuthError, RateLimitedError, SchoolsyncError
from schoolsync.core.pii import mask_text

DEFAULT_RATE_LIMITED_S = 600.0
DEFAULT_BUSY_S = 60.0
MAX_DETAIL = 300

AUTH_MARKERS = ("неавторизованное", "access denied", "действие запрещено")
RATE_MARKERS = ("слишком много запросов", "too many requests")
BUSY_MARKERS = ("уже запущен", "already running")


class Pacer(Protocol):
    """Per-account request pacing shared by all workers (``connectors.pacing.Pacer``).

    ``acquire`` waits at most ``max_wait`` seconds for a slot or raises ``RateLimitedError``;
    ``penalize`` shrinks the budget after the platform said 429.
    """

    def acquire(self, *, max_wait: float) -> object: ...

    def penalize(self, retry_after: float) -> object: ...


class GetCourseApi:
    """What the import and export clients share: pacing, sending, reading the envelope."""

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        key: str,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 5.0,
        rate_limited_retry_after_s: float = DEFAULT_RATE_LIMITED_S,
        busy_retry_after_s: float = DEFAULT_BUSY_S,
    ) -> None:
        if not key:
            raise ValueError("a GetCourse API key is required")
        self.http = http
        self.endpoint = endpoint
        self._key = key
        self._pacer = pacer
        self._pace_max_wait_s = pace_max_wait_s
        self.rate_limited_retry_after_s = rate_limited_retry_after_s
        self.busy_retry_after_s = busy_retry_after_s

    @property
    def key(self) -> str:
        return self._key

    def safe(self, text: str) -> str:
        """``text`` fit for an error message: no key, personal data masked, bounded."""
        return mask_text(text.replace(self._key, "***"))[:MAX_DETAIL]

    def call(self, request: httpx.Request) -> tuple[httpx.Response, dict[str, Any]]:
        """Pace, send and decode; raises for transport/status errors and unreadable bodies."""
        if self._pacer is not None:
            self._pacer.acquire(max_wait=self._pace_max_wait_s)
        try:
            response = send(self.http, self.endpoint, request, detail=self._detail)
        except RateLimitedError as exc:
            if self._pacer is not None:
                self._pacer.penalize(exc.retry_after or self.busy_retry_after_s)
            raise
        if not response.content.strip():
            raise body_failure(
                self.endpoint,
                response,
                "empty answer (GetCourse answers so when the account's plan does not include "
                "this API or the key may not write)",
            )
        try:
            envelope = response.json()
        except ValueError:
            raise body_failure(
                self.endpoint,
                response,
                "answer is not JSON (is base_url the domain the account really serves?)",
            ) from None
        if not isinstance(envelope, dict):
            raise body_failure(self.endpoint, response, "answer is not a JSON object")
        return response, envelope

    def check(self, response: httpx.Response, envelope: Mapping[str, Any]) -> None:
        """Raise the matching error unless the envelope says ``success``."""
        if truthy(envelope.get("success")):
            return
        raise self.failure(response, error_text(envelope) or "success is false", envelope)

    def failure(
        self, response: httpx.Response, text: str, envelope: Mapping[str, Any] | None = None
    ) -> SchoolsyncError:
        """The error for a failure GetCourse reported in a 2xx body."""
        kind = failure_kind(error_code(envelope or {}), text)
        base = body_failure(self.endpoint, response, self.safe(text))
        context: dict[str, Any] = {
            "platform": base.platform,
            "account": base.account,
            "status": base.status,
        }
        if kind == "auth":
            return AuthError(base.message, **context)
        if kind == "rate":
            return RateLimitedError(
                base.message, retry_after=self.rate_limited_retry_after_s, **context
            )
        if kind == "busy":
            return RateLimitedError(base.message, retry_after=self.busy_retry_after_s, **context)
        return base

    def _detail(self, response: httpx.Response) -> str:
        try:
            document = response.json()
        except ValueError:
            return ""
        return self.safe(error_text(document)) if isinstance(document, dict) else ""


def error_text(envelope: Mapping[str, Any]) -> str:
    """Everything GetCourse called an error message (``error`` is a string in some answers)."""
    parts = [envelope.get("error"), envelope.get("error_message")]
    texts = [part.strip() for part in parts if isinstance(part, str) and part.strip()]
    return "; ".join(dict.fromkeys(texts))


def failure_kind(code: int | None, text: str) -> Literal["auth", "rate", "busy"] | None:
    """What a failure GetCourse reported means, by its code or, failing that, its message."""
    folded = text.casefold()
    if code == 901 or any(marker in folded for marker in AUTH_MARKERS):
        return "auth"
    if code == 903 or any(marker in folded for marker in RATE_MARKERS):
        return "rate"
    if code == 905 or any(marker in folded for marker in BUSY_MARKERS):
        return "busy"
    return None


def error_code(envelope: Mapping[str, Any]) -> int | None:
    value = envelope.get("error_code")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class GetCourseClient:
    """Import users and orders into one GetCourse account.

    The import API has no idempotency key: a retried ``add_deal`` must carry the same
    ``deal.deal_number`` with ``system.refresh_if_exists`` so that it updates instead of
    creating a second order. Raises the errors in the module docstring.
    """

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        key: str,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 5.0,
    ) -> None:
        self._api = GetCourseApi(http, endpoint, key, pacer, pace_max_wait_s=pace_max_wait_s)

    def add_user(self, params: UserImport | Mapping[str, Any]) -> ImportResult:
        """Create (or with ``refresh_if_exists`` update) a user; ``params`` as in the template."""
        document = params.wire() if isinstance(params, UserImport) else dict(params)
        return self._import("/pl/api/users", document)

    def add_deal(self, params: DealImport) -> ImportResult:
        """Create or update an order and its buyer; returns GetCourse's ids and payment link."""
        return self._import("/pl/api/deals", params.wire())

    def _import(self, path: str, params: dict[str, Any]) -> ImportResult:
        encoded = base64.b64encode(json.dumps(params, ensure_ascii=False).encode()).decode()
        request = self._api.http.build_request(
            "POST",
            path,
            data={"action": "add", "key": self._api.key, "params": encoded},
            headers={"Accept": "application/json"},
        )
        response, envelope = self._api.call(request)
        self._api.check(response, envelope)
        result = envelope.get("result")
        if not isinstance(result, dict):
            raise body_failure(self._api.endpoint, response, "answer has no result")
        failed = truthy(result.get("error")) or (
            "success" in result and not truthy(result.get("success"))
        )
        if failed:
            message = result.get("error_message")
            text = message if isinstance(message, str) and message.strip() else "import failed"
            raise self._api.failure(response, text)
        return ImportResult.from_result(result)
