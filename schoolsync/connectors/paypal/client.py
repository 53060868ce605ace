"""PayPal REST client: captures, refunds, orders, v1 sales and PayPal's own webhook-signature
check.

Every call carries ``Authorization: Bearer`` from :class:`~.auth.PayPalTokens`. Answers become
errors through ``connectors.http``; the PayPal-specific part::

    timeout, connection error, 5xx   -> UnavailableError
    429 RATE_LIMIT_REACHED           -> RateLimitedError (Retry-After when sent)
    401 (expired or revoked token)   -> the token is dropped and the request sent again ONCE
                                        with a fresh one; a second 401 -> AuthError
    403 NOT_AUTHORIZED               -> AuthError
    404 RESOURCE_NOT_FOUND           -> NotFoundError
    400 INVALID_REQUEST, 422         -> RejectedError

An id that is not 1-64 letters, digits and '-' is a ``ValueError`` before any request (it
could reach another path). Messages carry PayPal's error ``name``, ``message`` and
``debug_id`` (which PayPal support asks for), masked; never a body or a token. Error bodies
are ``{"name", "message", "debug_id", "details": [{"issue", "description"}]}``
(developer.paypal.com/api/rest/responses); the v1 API's have no ``details``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from schoolsync.connectors.http import Endpoint, body_failure, send
from schoolsync.connectors.paypal.auth import PayPalTokens
from schoolsync.connectors.paypal.models import (
    Capture,
    ErrorBody,
    Order,
    Refund,
    Sale,
    VerifyResponse,
)
from schoolsync.connectors.paypal.verify import Transmission
from schoolsync.core.errors import AuthError, MalformedInputError
from schoolsync.core.pii import mask_text

VERIFY_PATH = "/v1/notifications/verify-webhook-signature"
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

M = TypeVar("M", bound=BaseModel)


def _paypal_detail(response: httpx.Response) -> str:
    body = ErrorBody.model_validate_json(response.content)
    issues = ", ".join(d.issue for d in body.details if d.issue)
    text = body.name
    if body.message:
        text += f": {body.message}"
    if issues:
        text += f" ({issues})"
    if body.debug_id:
        text += f" debug_id={body.debug_id}"
    return mask_text(text)[:300]


def _resource_id(value: str) -> str:
    if not _RESOURCE_ID.match(value):
        raise ValueError("a PayPal id is 1-64 letters, digits and '-'")
    return value


class PayPalClient:
    """One PayPal REST app. Raises the errors in the module docstring."""

    def __init__(
        self, http: httpx.Client, endpoint: Endpoint, tokens: PayPalTokens, *, webhook_id: str
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self.webhook_id = webhook_id
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"PayPalClient(account={self.endpoint.account!r})"

    def get_capture(self, capture_id: str) -> Capture:
        """``GET /v2/payments/captures/{id}``: status, amount, fee, custom and invoice ids."""
        path = f"/v2/payments/captures/{_resource_id(capture_id)}"
        return self._parse(Capture, self._call("GET", path), "capture")

    def get_refund(self, refund_id: str) -> Refund:
        """``GET /v2/payments/refunds/{id}``: status, amount and the capture it refunds (its
        ``up`` link)."""
        path = f"/v2/payments/refunds/{_resource_id(refund_id)}"
        return self._parse(Refund, self._call("GET", path), "refund")

    def get_order(self, order_id: str) -> Order:
        """``GET /v2/checkout/orders/{id}``: the payer, purchase units and their captures."""
        path = f"/v2/checkout/orders/{_resource_id(order_id)}"
        return self._parse(Order, self._call("GET", path), "order")

    def get_sale(self, sale_id: str) -> Sale:
        """``GET /v1/payments/sale/{id}`` (the older v1 payments API): state, amount, fee,
        custom field and invoice number."""
        path = f"/v1/payments/sale/{_resource_id(sale_id)}"
        return self._parse(Sale, self._call("GET", path), "sale")

    def verify_webhook_signature_online(self, headers: Mapping[str, str], event: bytes) -> bool:
        """Ask PayPal whether a delivery is genuine (``verify-webhook-signature``).

        The event is embedded exactly as received (its raw bytes), never re-serialized: PayPal
        checks the CRC of those bytes. True for ``SUCCESS``, False for ``FAILURE``.

        Raises:
            VerificationError: a signature header is missing.
            MalformedInputError: ``event`` is not a JSON object.
            AuthError, RejectedError, RetryableError: PayPal refused or failed the call.
        """
        transmission = Transmission.from_headers(headers)
        try:
            document = json.loads(event)
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict):
            raise MalformedInputError("paypal webhook body is not a JSON object", platform="paypal")
        fields = {
            "auth_algo": transmission.auth_algo,
            "cert_url": transmission.cert_url,
            "transmission_id": transmission.transmission_id,
            "transmission_sig": transmission.transmission_sig,
            "transmission_time": transmission.transmission_time,
            "webhook_id": self.webhook_id,
        }
        head = json.dumps(fields, ensure_ascii=True)[:-1].encode("ascii")
        content = head + b', "webhook_event": ' + event + b"}"
        answer = self._call(
            "POST", VERIFY_PATH, content=content, headers={"Content-Type": "application/json"}
        )
        status = self._parse(VerifyResponse, answer, "verify-webhook-signature")
        return status.verification_status == "SUCCESS"

    # --- one request ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Response]:
        """Authorize and send; on a 401 once more with a fresh token. The parsed JSON body."""
        retried = False
        while True:
            token = self._tokens.token()
            request = self.http.build_request(
                method,
                path,
                content=content,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                    **(headers or {}),
                },
            )
            try:
                response = send(self.http, self.endpoint, request, detail=_paypal_detail)
            except AuthError as exc:
                if exc.status == 401 and not retried:
                    self._tokens.invalidate(token)
                    retried = True
                    continue
                raise
            try:
                return response.json(), response
            except ValueError:
                raise body_failure(self.endpoint, response, "the answer is not JSON") from None

    def _parse(self, model: type[M], answer: tuple[Any, httpx.Response], what: str) -> M:
        data, response = answer
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:5]
            )
            raise body_failure(
                self.endpoint, response, f"{what} answer not understood: {problems}"
            ) from None
