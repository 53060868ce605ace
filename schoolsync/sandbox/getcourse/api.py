"""The public GetCourse endpoints: import (`/pl/api/users`, `/pl/api/deals`) and export
(`/pl/api/account/{users|deals|payments}`, `/pl/api/account/exports/{id}`).

GetCourse answers HTTP 200 with JSON even when it refuses: a wrong key is
`success: false, error_code: 901` «Неавторизованное API-обращение». Bodies are read as PHP reads
`$_POST`: only `application/x-www-form-urlencoded` (a JSON body carries no key), `+` is a space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.getcourse.exports import failure
from schoolsync.sandbox.getcourse.imports import (
    Outcome,
    Refused,
    decode_params,
    import_deal,
    import_user,
)
from schoolsync.sandbox.getcourse.model import Account
from schoolsync.sandbox.getcourse.sandbox import GetCourseSandbox

UNAUTHORIZED = "Неавторизованное API-обращение"
EXPORT_KINDS = ("users", "deals", "payments")

ImportAction = Callable[[Account, dict[str, Any]], Outcome]


async def form_fields(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type.lower():
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _refused_result(endpoint: str, message: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "success": False,
        "user_id": None,
        "user_status": None,
        "error_message": message,
        "error": True,
    }
    if endpoint == "/pl/api/deals":
        result.update(deal_id=None, deal_number=None, payment_link=None)
    return result


async def run_import(
    sandbox: GetCourseSandbox, request: Request, endpoint: str, action: ImportAction
) -> Response:
    if (refusal := await sandbox.faults.gate(endpoint)) is not None:
        return refusal
    fields = await form_fields(request)
    if not sandbox.key_ok(fields.get("key")):
        return JSONResponse(failure(UNAUTHORIZED, 901))
    name = fields.get("action", "")
    if name != "add":
        return JSONResponse(failure(f"Неизвестное действие: {name}") | {"action": name})
    try:
        params = decode_params(fields.get("params"))
    except Refused as exc:
        with sandbox.lock:
            sandbox.imports["refused"] += 1
        return JSONResponse(failure(str(exc)) | {"action": name})
    with sandbox.lock:
        try:
            outcome = action(sandbox.account, params)
        except Refused as exc:
            sandbox.imports["refused"] += 1
            outcome = Outcome(_refused_result(endpoint, str(exc)))
        else:
            sandbox.imports["ok"] += 1
        for deal, times in outcome.callbacks:
            sandbox.notify(deal, times)
    return JSONResponse({"success": True, "action": name, "result": outcome.result})


async def import_users(sandbox: GetCourseSandbox, request: Request) -> Response:
    return await run_import(sandbox, request, "/pl/api/users", import_user)


async def import_deals(sandbox: GetCourseSandbox, request: Request) -> Response:
    return await run_import(sandbox, request, "/pl/api/deals", import_deal)


async def _export_params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await form_fields(request))
    return params


async def start_export(sandbox: GetCourseSandbox, request: Request) -> Response:
    kind = str(request.path_params["kind"])
    if kind not in EXPORT_KINDS:
        return JSONResponse(failure(f"Неизвестный объект экспорта: {kind}"), status_code=404)
    if (refusal := await sandbox.faults.gate(f"/pl/api/account/{kind}")) is not None:
        return refusal
    params = await _export_params(request)
    if not sandbox.key_ok(params.get("key")):
        return JSONResponse(failure(UNAUTHORIZED, 901))
    with sandbox.lock:
        body = sandbox.exports.start(kind, params, sandbox.account)
    return JSONResponse(body)


async def poll_export(sandbox: GetCourseSandbox, request: Request) -> Response:
    endpoint = f"/pl/api/account/exports/{request.path_params['export_id']}"
    if (refusal := await sandbox.faults.gate(endpoint)) is not None:
        return refusal
    params = await _export_params(request)
    if not sandbox.key_ok(params.get("key")):
        return JSONResponse(failure(UNAUTHORIZED, 901))
    with sandbox.lock:
        body = sandbox.exports.poll(int(request.path_params["export_id"]))
    return JSONResponse(body)
