"""YooKassa API v3 client: payments (get, list), refunds (create, get), the shop (``/me``).

HTTP Basic auth with the shopId and the secret key; the header is built once and lives only in
the requests: never in an error, a log line or ``repr``. Every state-changing POST carries the
caller's deterministic ``Idempotence-Key`` (``[0-9A-Za-z+-_.]``, 1-64 characters): YooKassa
answers a repeat of the same request with the same key with the original result for 24 hours,
so a retried job never refunds twice (see :func:`idempotence_key` to derive one).

Outcomes, after ``connectors.http.error_for``::

    timeout, connection error            -> UnavailableError (the job retries, same key)
    202 processing, 500                  -> the SAME request (same key) again after the body's
                                            ``retry_after`` ms (default 1800), at most
                                            ``retries`` (3) times, as YooKassa's SDKs do; then
                                            UnavailableError. A ``retry_after`` longer than
                                            ``max_retry_wait_s`` is not slept through: the job
                                            retries later instead
    429 too_many_requests                -> RateLimitedError; pacer.penalize
    401 invalid_credentials, 403         -> AuthError
    404 not_found                        -> NotFoundError
    400 invalid_request (and other 4xx)  -> RejectedError with YooKassa's ``description`` and
                                            ``parameter``, masked (core.pii.mask_text)

YooKassa's error ``id`` (what its support asks for) becomes the error's ``request_id``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from schoolsync.connectors.http import Endpoint, body_failure, error_for
from schoolsync.connectors.yookassa.models import (
    ApiErrorBody,
    Me,
    Payment,
    PaymentList,
    Refund,
)
from schoolsync.core.errors import RateLimitedError, SchoolsyncError, UnavailableError
from schoolsync.core.pii import mask_text

IDEMPOTENCE_HEADER = "Idempotence-Key"
IDEMPOTENCE_KEY = re.compile(r"^[0-9A-Za-z+\-_.]{1,64}$")
DEFAULT_RETRY_AFTER_MS = 1800  # YooKassa's SDKs, when a 202 or 500 names none
DEFAULT_RATE_LIMIT_WAIT_S = 2.0  # a 429 with neither Retry-After nor retry_after
PAGE_SIZE = 100  # the most GET /payments gives per page
MAX_DETAIL = 300
MAX_REFUND_DESCRIPTION = 250

M = TypeVar("M", bound=BaseModel)


class Pacer(Protocol):
    """Rate budget shared by all workers (``connectors.pacing.Pacer``)."""

    def acquire(self, *, max_wait: float) -> object: ...

    def penalize(self, retry_after: float) -> object: ...


def idempotence_key(text: str) -> str:
    """``text`` if it is a valid ``Idempotence-Key``, else a key derived from it (``k`` + 63
    hex digits of its SHA-256): the same text always gives the same key."""
    if IDEMPOTENCE_KEY.match(text):
        return text
    return "k" + hashlib.sha256(text.encode()).hexdigest()[:63]


def amount_value(amount: Decimal) -> str:
    """``Decimal("2500")`` -> ``"2500.00"``: positive, at most two decimals, never rounded.

    Raises:
        ValueError: not a positive finite amount with at most two decimals.
    """
    if not amount.is_finite() or amount <= 0:
        raise ValueError("a YooKassa amount must be a positive number")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise ValueError("a YooKassa amount has at most two decimals (it is never rounded here)")
    return format(cents, "f")


def iso_utc(moment: datetime) -> str:
    """``2018-07-18T10:51:18.139Z``, as YooKassa's filters take it."""
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_body(response: httpx.Response) -> ApiErrorBody | None:
    try:
        return ApiErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None


def _detail(body: ApiErrorBody | None, secret: str) -> str:
    """``description (parameter: x; code: y)``, masked: a description may quote what we sent
    (and never shows our secret key, should YooKassa ever echo it)."""
    if body is None:
        return ""
    extra = "; ".join(
        f"{name}: {value}"
        for name, value in (("parameter", body.parameter), ("code", body.code))
        if value
    )
    text = body.description or ""
    if extra:
        text = f"{text} ({extra})" if text else extra
    return mask_text(text.replace(secret, "***"))[:MAX_DETAIL]


class YooKassaClient:
    """One shop's API. Raises the errors in the module docstring.

    ``pacer`` (the shop's budget, if given) is asked before every request, retries included.
    ``sleep`` waits between the retries of a 202 or 500 (tests pass a fake).
    """

    def __init__(
        self,
        http: httpx.Client,
        endpoint: Endpoint,
        shop_id: str,
        secret_key: str,
        pacer: Pacer | None = None,
        *,
        pace_max_wait_s: float = 10.0,
        retries: int = 3,
        max_retry_wait_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not shop_id or ":" in shop_id:
            raise ValueError("a YooKassa shop id is required (and has no ':')")
        if not secret_key:
            raise ValueError("a YooKassa secret key is required")
        self.http = http
        self.endpoint = endpoint
        self.shop_id = shop_id
        credentials = base64.b64encode(f"{shop_id}:{secret_key}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        self._secret_key = secret_key
        self._pacer = pacer
        self._pace_max_wait_s = pace_max_wait_s
        self._retries = retries
        self._max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"YooKassaClient(shop={self.shop_id!r})"

    # --- payments -----------------------------------------------------------------------------

    def get_payment(self, payment_id: str) -> Payment:
        """The payment as YooKassa has it now. ``NotFoundError`` if this shop has no such id."""
        return self._parse(Payment, self._call("GET", f"/payments/{_segment(payment_id)}"))

    def list_payments(
        self,
        created_gte: datetime | None = None,
        status: str | None = None,
        *,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Payment]:
        """Payments newest first (YooKassa lists the last 3 years), page by page with
        ``next_cursor``; each page is fetched only when the one before is used up."""
        params: dict[str, str] = {"limit": str(max(1, min(PAGE_SIZE, page_size)))}
        if created_gte is not None:
            params["created_at.gte"] = iso_utc(created_gte)
        if status is not None:
            params["status"] = status
        seen: set[str] = set()
        while True:
            answer = self._call("GET", "/payments", params=params)
            page = self._parse(PaymentList, answer)
            yield from page.items
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in seen:
                raise body_failure(self.endpoint, answer[1], "next_cursor repeats an earlier one")
            seen.add(cursor)
            params = {**params, "cursor": cursor}

    # --- refunds ------------------------------------------------------------------------------

    def create_refund(
        self,
        payment_id: str,
        amount: Decimal,
        currency: str,
        key: str,
        description: str | None = None,
    ) -> Refund:
        """Refund ``amount`` of a payment, once per ``key`` (the same key and body again give
        the first refund back).

        Raises:
            ValueError: ``key`` is not an Idempotence-Key (see :func:`idempotence_key`), the
                amount is not positive with at most two decimals, the currency is not three
                capital letters, or the description is over 250 characters.
        """
        if not IDEMPOTENCE_KEY.match(key):
            raise ValueError("an Idempotence-Key is 1-64 characters of 0-9 A-Z a-z + - _ .")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValueError("currency must be an ISO 4217 code such as RUB")
        if description is not None and len(description) > MAX_REFUND_DESCRIPTION:
            raise ValueError("a refund description is at most 250 characters")
        body: dict[str, Any] = {
            "payment_id": payment_id,
            "amount": {"value": amount_value(amount), "currency": currency},
        }
        if description:
            body["description"] = description
        return self._parse(Refund, self._call("POST", "/refunds", json=body, key=key))

    def get_refund(self, refund_id: str) -> Refund:
        return self._parse(Refund, self._call("GET", f"/refunds/{_segment(refund_id)}"))

    def get_me(self) -> Me:
        """The shop behind the credentials (``schoolsync check``)."""
        return self._parse(Me, self._call("GET", "/me"))

    # --- one request, with YooKassa's own retries ---------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        key: str | None = None,
    ) -> tuple[Any, httpx.Response]:
        """Send; repeat the same request on 202/500 as YooKassa asks. The parsed JSON body."""
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if key is not None:
            headers[IDEMPOTENCE_HEADER] = key
        attempt = 0
        while True:
            if self._pacer is not None:
                self._pacer.acquire(max_wait=self._pace_max_wait_s)
            request = self.http.build_request(
                method, path, params=params, json=json, headers=headers
            )
            response = self._send(request)
            if response.is_success and response.status_code != 202:
                try:
                    return response.json(), response
                except ValueError:
                    raise body_failure(self.endpoint, response, "the answer is not JSON") from None
            body = _error_body(response)
            if response.status_code in (202, 500):
                wait_ms = body.retry_after if body and body.retry_after else DEFAULT_RETRY_AFTER_MS
                wait_s = max(0.0, wait_ms / 1000)
                if attempt < self._retries and wait_s <= self._max_retry_wait_s:
                    attempt += 1
                    self._sleep(wait_s)
                    continue
                raise self._unfinished(response, body, wait_s, attempt)
            raise self._error(response, body)

    def _send(self, request: httpx.Request) -> httpx.Response:
        """Transport failures as ``connectors.http.send`` reports them; statuses are left to
        ``_call``, which must read a 202's or a 500's ``retry_after`` before anything else."""
        try:
            return self.http.send(request)
        except httpx.TimeoutException as exc:
            raise self._unavailable(request, f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise self._unavailable(request, f"unreachable ({type(exc).__name__})") from None

    def _unavailable(self, request: httpx.Request, what: str) -> UnavailableError:
        return UnavailableError(
            f"{self.endpoint.platform} {request.method} {request.url.path} {what}",
            platform=self.endpoint.platform,
            account=self.endpoint.account,
        )

    def _unfinished(
        self, response: httpx.Response, body: ApiErrorBody | None, wait_s: float, attempt: int
    ) -> UnavailableError:
        request = response.request
        if response.status_code == 500:
            message = error_for(self.endpoint, response, _detail(body, self._secret_key)).message
        else:
            message = (
                f"{self.endpoint.platform} {request.method} {request.url.path} still processing "
                "(202)"
            )
        error = UnavailableError(
            f"{message}; gave up after {attempt} repeats",
            retry_after=wait_s,
            platform=self.endpoint.platform,
            account=self.endpoint.account,
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        )
        _with_error_id(error, body)
        return error

    def _error(self, response: httpx.Response, body: ApiErrorBody | None) -> SchoolsyncError:
        error = error_for(self.endpoint, response, _detail(body, self._secret_key))
        _with_error_id(error, body)
        if isinstance(error, RateLimitedError):
            if error.retry_after is None:
                error.retry_after = (
                    max(0.0, body.retry_after / 1000)
                    if body is not None and body.retry_after
                    else DEFAULT_RATE_LIMIT_WAIT_S
                )
            if self._pacer is not None:
                self._pacer.penalize(error.retry_after)
        return error

    def _parse(self, model: type[M], answer: tuple[Any, httpx.Response]) -> M:
        data, response = answer
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}"
                for e in exc.errors()[:5]
            )
            raise body_failure(
                self.endpoint, response, f"{model.__name__} not understood: {problems}"
            ) from None


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an id is required")
    return quote(value, safe="")


def _with_error_id(error: SchoolsyncError, body: ApiErrorBody | None) -> None:
    if error.request_id is None and body is not None and body.id:
        error.request_id = body.id[:64]
