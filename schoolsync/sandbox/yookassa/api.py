"""The ``/v3`` methods as a client of YooKassa calls them.

Order of checks: Basic auth (401), injected faults, the request limit (429), then the method's
own: for a POST the JSON content type (415), the ``Idempotence-Key`` (400 when missing or not
1-64 characters of ``0-9 A-Z a-z + - _ .``), the JSON body (400), then the key's memory: the same
key with the same body (and path) within 24 hours answers the first result again without doing
anything; the same key with another body is 400 ``Idempotence key duplicated`` (parameter
``Idempotence-Key``). Only successful results are remembered. Then the method itself (400, 404).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.yookassa import payments
from schoolsync.sandbox.yookassa.errors import DUPLICATED_KEY, ApiError, invalid, processing
from schoolsync.sandbox.yookassa.shop import YooKassaSandbox

IDEMPOTENCE_KEY = re.compile(r"[0-9A-Za-z+\-_.]{1,64}")

Write = Callable[[YooKassaSandbox, dict[str, Any]], dict[str, Any]]
Perform = Callable[[], Awaitable[Response]]


async def _json_body(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415)
    key = request.headers.get("idempotence-key")
    if not key:
        raise invalid("Idempotence-Key header is missing", "Idempotence-Key")
    if not IDEMPOTENCE_KEY.fullmatch(key):
        raise invalid(
            "Idempotence-Key must be 1-64 characters of 0-9 a-z A-Z + - _ .", "Idempotence-Key"
        )
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise invalid("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def _fingerprint(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps([path, body], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _write(sb: YooKassaSandbox, request: Request, operation: Write) -> Response:
    body = await _json_body(request)
    key = request.headers["idempotence-key"]
    fingerprint = _fingerprint(request.url.path, body)
    with sb.lock:
        remembered = sb.recall(key)
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                raise invalid(DUPLICATED_KEY, "Idempotence-Key")
            sb.counts["idempotent_replays"] += 1
            return JSONResponse(remembered.body)
        result = operation(sb, body)
        sb.remember(key, fingerprint, result)
    return JSONResponse(result)


def _reader(sb: YooKassaSandbox, read: Callable[[], dict[str, Any]]) -> Perform:
    async def perform() -> Response:
        with sb.lock:
            return JSONResponse(read())

    return perform


def _writer(sb: YooKassaSandbox, request: Request, operation: Write) -> Perform:
    async def perform() -> Response:
        return await _write(sb, request, operation)

    return perform


async def _run(sb: YooKassaSandbox, request: Request, route: str, perform: Perform) -> Response:
    """Auth, faults, limit, then ``perform``; refusals in YooKassa's shape."""
    sb.count("requests")
    if not sb.authorized(request.headers.get("authorization")):
        sb.count("errors")
        return ApiError(401).response()
    plan = sb.faults.plan(request.method, route)
    if plan.kind == "error":
        sb.count("faults")
        return ApiError(plan.status).response()
    if plan.kind == "timeout" and not plan.apply:
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return ApiError(500).response()
    wait_ms = sb.limit.admit()
    if wait_ms:
        sb.count("rate_limited")
        return ApiError(429, retry_after_ms=wait_ms).response()
    try:
        response = await perform()
    except ApiError as error:
        sb.count("errors")
        response = error.response()
    if plan.kind == "processing":
        sb.count("faults")
        return processing(plan.retry_after_ms)
    if plan.kind == "timeout":
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return ApiError(500).response()
    return response


async def payments_collection(sb: YooKassaSandbox, request: Request) -> Response:
    """``POST /v3/payments`` and ``GET /v3/payments``."""
    if request.method == "POST":
        perform = _writer(sb, request, payments.create_payment)
    else:
        perform = _reader(sb, lambda: payments.list_payments(sb, request.query_params))
    return await _run(sb, request, "/v3/payments", perform)


async def payment_item(sb: YooKassaSandbox, request: Request) -> Response:
    """``GET /v3/payments/{payment_id}``."""
    payment_id = str(request.path_params["id"])
    perform = _reader(sb, lambda: payments.get_payment(sb, payment_id))
    return await _run(sb, request, "/v3/payments/{id}", perform)


async def refunds_collection(sb: YooKassaSandbox, request: Request) -> Response:
    """``POST /v3/refunds``."""
    return await _run(sb, request, "/v3/refunds", _writer(sb, request, payments.create_refund))


async def refund_item(sb: YooKassaSandbox, request: Request) -> Response:
    """``GET /v3/refunds/{refund_id}``."""
    refund_id = str(request.path_params["id"])
    perform = _reader(sb, lambda: payments.get_refund(sb, refund_id))
    return await _run(sb, request, "/v3/refunds/{id}", perform)


async def me(sb: YooKassaSandbox, request: Request) -> Response:
    """``GET /v3/me``."""
    return await _run(sb, request, "/v3/me", _reader(sb, lambda: payments.me(sb)))
