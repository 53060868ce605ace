"""The token endpoint and ``spreadsheets.values``: what a client of Google would call.

Order of checks for the values methods: bearer token (401), injected faults, quota (429),
scopes (403), spreadsheet (404), sharing (403), then the method's own parameters and range
(400). A request refused by the quota is not counted against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.sheets import values
from schoolsync.sandbox.sheets.auth import GRANT_TYPE, verify_assertion
from schoolsync.sandbox.sheets.book import Spreadsheet
from schoolsync.sandbox.sheets.errors import GoogleError, OAuthError, injected, invalid
from schoolsync.sandbox.sheets.quota import Kind
from schoolsync.sandbox.sheets.state import SheetsSandbox

Operation = Callable[[Spreadsheet, Any], dict[str, Any]]
_LOOPBACK = {"localhost": "127.0.0.1", "::1": "127.0.0.1"}


def token_url(request: Request) -> str:
    """This sandbox's token endpoint as the caller reaches it (``aud`` must name it)."""
    return str(request.url_for("token"))


def _same_endpoint(a: str, b: str) -> bool:
    """Loopback aliases (``localhost``, ``127.0.0.1``) name the same sandbox."""

    def norm(url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = _LOOPBACK.get(host, host) + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    try:
        return norm(a) == norm(b)
    except ValueError:  # a port that is not a number
        return False


async def token(sb: SheetsSandbox, request: Request) -> Response:
    """``POST /token`` with a form ``grant_type`` + ``assertion``."""
    plan = sb.faults.plan("token")
    if plan.kind == "error":
        sb.count("faults")
        return JSONResponse({"error": "internal_failure"}, status_code=plan.status)
    if plan.kind == "timeout" and not plan.apply:
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return JSONResponse({"error": "deadline_exceeded"}, status_code=504)
    here = token_url(request)
    try:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "Invalid content type; expected a form body")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        grant_type = form.get("grant_type", "")
        if grant_type != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form.get("assertion", "")
        if not assertion:
            raise OAuthError("invalid_request", "Missing required parameter: assertion")
        account, scopes = verify_assertion(
            assertion, sb.accounts, lambda aud: _same_endpoint(aud, here)
        )
    except OAuthError as error:
        sb.count("token_refusals")
        return error.response()
    answer = sb.tokens.issue(account.email, scopes)
    sb.count("tokens_issued")
    if plan.kind == "timeout":
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return JSONResponse({"error": "deadline_exceeded"}, status_code=504)
    return JSONResponse(answer, headers={"Cache-Control": "no-cache, no-store, max-age=0"})


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid("Invalid JSON payload received. Unexpected token.") from None


async def _run(
    sb: SheetsSandbox,
    request: Request,
    method: str,
    kind: Kind,
    operation: Operation,
) -> Response:
    """Auth, faults, quota, access, then ``operation`` on the spreadsheet under the lock."""
    sb.count("requests")
    try:
        grant = sb.authenticate(request.headers.get("authorization"))
    except GoogleError as error:
        sb.count("errors")
        return error.response()
    plan = sb.faults.plan(method)
    if plan.kind == "error":
        sb.count("faults")
        return injected(plan.status).response()
    if plan.kind == "timeout" and not plan.apply:
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return injected(504).response()
    try:
        sb.quotas.admit(grant.email, kind, sb.config.project_number)
    except GoogleError as error:
        sb.count("rate_limited")
        return error.response()
    try:
        payload = await _json(request) if request.method != "GET" else None
        with sb.lock:
            book = sb.open(str(request.path_params["id"]), grant, kind)
            response: Response = JSONResponse(operation(book, payload))
            sb.counts[f"{kind}s"] += 1
    except GoogleError as error:
        sb.count("errors")
        response = error.response()
    if plan.kind == "timeout":
        sb.count("faults")
        await anyio.sleep(plan.timeout_s)
        return injected(504).response()
    return response


async def values_range(sb: SheetsSandbox, request: Request) -> Response:
    """``GET|PUT /v4/spreadsheets/{id}/values/{range}`` and ``POST .../{range}:append``."""
    text = str(request.path_params["range"])
    params = request.query_params
    if request.method == "GET":
        return await _run(
            sb, request, "values.get", "read", lambda book, _: values.get(book, text, params)
        )
    if request.method == "PUT":
        return await _run(
            sb,
            request,
            "values.update",
            "write",
            lambda book, body: values.update(book, text, params, body),
        )
    if text.endswith(":append"):
        text = text.removesuffix(":append")
        return await _run(
            sb,
            request,
            "values.append",
            "write",
            lambda book, body: values.append(book, text, params, body),
        )
    return GoogleError(404, "Method not found.").response()


async def values_batch_update(sb: SheetsSandbox, request: Request) -> Response:
    """``POST /v4/spreadsheets/{id}/values:batchUpdate``."""
    return await _run(
        sb,
        request,
        "values.batchUpdate",
        "write",
        lambda book, body: values.batch_update(book, body),
    )
