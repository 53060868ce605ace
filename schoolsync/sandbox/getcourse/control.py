"""The control API under `/_sandbox/` (no key): what a test does in place of a school's staff
and buyers, and what it reads back to check what happened."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.getcourse.config import SandboxOffer
from schoolsync.sandbox.getcourse.faults import FaultError
from schoolsync.sandbox.getcourse.imports import Refused, parse_moment, parse_money
from schoolsync.sandbox.getcourse.model import DEAL_STATUSES, Account, Deal, User, now_moscow
from schoolsync.sandbox.getcourse.people import make_person
from schoolsync.sandbox.getcourse.sandbox import GetCourseSandbox

MAX_BATCH = 100_000


class BadRequest(ValueError):
    pass


def problem(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def order_json(account: Account, deal: Deal) -> dict[str, Any]:
    user = account.users[deal.user_id]
    return {
        "id": deal.id,
        "number": deal.number,
        "status": deal.status,
        "status_title": DEAL_STATUSES[deal.status],
        "cost": f"{deal.cost:.2f}",
        "payed": f"{deal.payed:.2f}",
        "left": f"{deal.left:.2f}",
        "currency": deal.currency,
        "offer": {"id": deal.offer.offer_id, "code": deal.offer.code, "title": deal.offer.title},
        "quantity": deal.quantity,
        "manager_email": deal.manager_email,
        "payment_link": deal.payment_link,
        "created_at": _iso(deal.created_at),
        "status_changed_at": _iso(deal.status_changed_at),
        "payed_at": _iso(deal.payed_at),
        "finished_at": _iso(deal.finished_at),
        "user": {
            "id": user.id,
            "email": user.email,
            "phone": user.phone,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "city": user.city,
        },
        "utm": dict(deal.utm),
        "addfields": dict(deal.addfields),
        "payments": [
            {
                "id": p.id,
                "amount": f"{p.amount:.2f}",
                "status": p.status,
                "payment_type": p.payment_type,
            }
            for p in account.payments
            if p.deal_id == deal.id
        ],
    }


def _offer(account: Account, wanted: Any) -> SandboxOffer | None:
    if wanted in (None, ""):
        return None
    offer = account.offer_by_title(str(wanted)) or account.offer_by_code(str(wanted))
    if offer is None:
        raise BadRequest(f"no product titled or coded {wanted!r}")
    return offer


def _batch_settings(body: dict[str, Any]) -> dict[str, Any]:
    count = body.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BATCH:
        raise BadRequest(f"count must be an integer from 1 to {MAX_BATCH}")
    status = str(body.get("status") or "new")
    if status not in DEAL_STATUSES:
        raise BadRequest(f"unknown status {status!r}; known: {', '.join(DEAL_STATUSES)}")
    try:
        repeat = float(body.get("repeat_users_rate") or 0.0)
        spread_days = float(body.get("spread_days") or 0.0)
    except (TypeError, ValueError) as exc:
        raise BadRequest("repeat_users_rate and spread_days must be numbers") from exc
    if not 0.0 <= repeat <= 1.0:
        raise BadRequest("repeat_users_rate must be between 0 and 1")
    try:
        created_at = parse_moment(body.get("created_at"), "created_at")
    except Refused as exc:
        raise BadRequest("created_at must look like 2024-05-01 12:30:00") from exc
    if spread_days < 0:
        raise BadRequest("spread_days must not be negative")
    return {
        "count": count,
        "status": status,
        "repeat": repeat,
        "created_at": created_at,
        "spread_days": spread_days,
        "seed": body.get("seed"),
    }


def create_orders(sandbox: GetCourseSandbox, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Make `count` orders as buyers would; call with `sandbox.lock` held."""
    settings = _batch_settings(body)
    account = sandbox.account
    offer = _offer(account, body.get("product"))
    managers = sandbox.config.managers
    rng = sandbox.people
    if settings["seed"] is not None:
        rng = random.Random(int(settings["seed"]))  # noqa: S311 - made-up test data
    fixed_user = account.find_user(str(body["email"])) if body.get("email") else None
    made: list[User] = []
    created: list[dict[str, Any]] = []
    now = now_moscow()
    for _ in range(settings["count"]):
        user = fixed_user
        if user is None and made and rng.random() < settings["repeat"]:
            user = rng.choice(made)
        if user is None:
            sandbox.serial += 1
            person = make_person(rng, sandbox.serial)
            user = account.add_user(
                email=str(body.get("email") or person.email),
                phone=str(body.get("phone") or person.phone),
                first_name=person.first_name,
                last_name=person.last_name,
                city=person.city,
                country="Россия",
            )
            made.append(user)
            if body.get("email"):
                fixed_user = user
        at = settings["created_at"] or now
        if settings["spread_days"]:
            at = at - timedelta(seconds=int(rng.random() * settings["spread_days"] * 86_400))
        chosen = offer or rng.choice(sandbox.config.products)
        deal = account.add_deal(
            user=user,
            offer=chosen,
            cost=chosen.price,
            status="new",
            created_at=at,
            manager_email=rng.choice(managers) if managers else "",
        )
        fired = 1 + account.set_status(deal, settings["status"], at=at)
        sandbox.notify(deal, fired)
        created.append(
            {
                "id": deal.id,
                "number": deal.number,
                "user_id": user.id,
                "email": user.email,
                "status": deal.status,
            }
        )
    return created


async def post_orders(sandbox: GetCourseSandbox, request: Request) -> Response:
    try:
        body = await json_body(request)
        with sandbox.lock:
            started = time.perf_counter()
            created = create_orders(sandbox, body)
            elapsed = time.perf_counter() - started
    except BadRequest as exc:
        return problem(str(exc))
    return JSONResponse(
        {"created": len(created), "seconds": round(elapsed, 4), "orders": created}, 201
    )


async def get_orders(sandbox: GetCourseSandbox, request: Request) -> Response:
    status = request.query_params.get("status")
    with sandbox.lock:
        account = sandbox.account
        orders = [order_json(account, d) for d in account.deals if status in (None, d.status)]
    return JSONResponse({"orders": orders})


async def get_order(sandbox: GetCourseSandbox, request: Request) -> Response:
    with sandbox.lock:
        deal = sandbox.account.deals_by_number.get(str(request.path_params["number"]))
        if deal is None:
            return problem("no such order", 404)
        return JSONResponse(order_json(sandbox.account, deal))


async def post_order_status(sandbox: GetCourseSandbox, request: Request) -> Response:
    try:
        body = await json_body(request)
        status = str(body.get("status") or "")
        if status not in DEAL_STATUSES:
            raise BadRequest(f"unknown status {status!r}; known: {', '.join(DEAL_STATUSES)}")
        amount = parse_money(body.get("amount"), "amount")
    except (BadRequest, Refused) as exc:
        return problem(str(exc))
    with sandbox.lock:
        account = sandbox.account
        deal = account.deals_by_number.get(str(request.path_params["number"]))
        if deal is None:
            return problem("no such order", 404)
        payment_type = str(body.get("payment_type") or "tinkoff")
        fired = account.set_status(deal, status, amount=amount, payment_type=payment_type)
        sandbox.notify(deal, fired)
        return JSONResponse({"order": order_json(account, deal), "callbacks": fired})


async def get_state(sandbox: GetCourseSandbox, request: Request) -> Response:
    return JSONResponse(sandbox.state())


async def post_faults(sandbox: GetCourseSandbox, request: Request) -> Response:
    try:
        body = await json_body(request)
        with sandbox.lock:
            settings = sandbox.faults.configure(body)
    except (BadRequest, FaultError) as exc:
        return problem(str(exc))
    return JSONResponse(vars(settings))


async def delete_faults(sandbox: GetCourseSandbox, request: Request) -> Response:
    with sandbox.lock:
        sandbox.faults.clear()
    return JSONResponse(vars(sandbox.faults.settings))


async def post_reset(sandbox: GetCourseSandbox, request: Request) -> Response:
    sandbox.reset()
    return JSONResponse(sandbox.state())


async def post_callback(sandbox: GetCourseSandbox, request: Request) -> Response:
    """Set the process URL template (and method) while running: `{"url": …, "method": …}`."""
    try:
        body = await json_body(request)
    except BadRequest as exc:
        return problem(str(exc))
    method = str(body.get("method") or sandbox.callback_method).upper()
    if method not in ("GET", "POST"):
        return problem("method must be GET or POST")
    url = body.get("url")
    with sandbox.lock:
        sandbox.callback_url = str(url) if url else None
        sandbox.callback_method = method
    return JSONResponse({"url": sandbox.callback_url, "method": method})


async def get_callbacks(sandbox: GetCourseSandbox, request: Request) -> Response:
    return JSONResponse(
        {"counts": sandbox.dispatcher.snapshot(), "deliveries": sandbox.dispatcher.deliveries()}
    )


async def wait_callbacks(sandbox: GetCourseSandbox, request: Request) -> Response:
    """Wait until no callback is in flight (or `timeout_s` passes); answers the counts."""
    try:
        body = await json_body(request)
        timeout_s = float(body.get("timeout_s", 10.0))
    except (BadRequest, TypeError, ValueError):
        return problem("timeout_s must be a number")
    deadline = time.monotonic() + timeout_s
    while sandbox.dispatcher.snapshot()["pending"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    counts = sandbox.dispatcher.snapshot()
    return JSONResponse({"idle": counts["pending"] == 0, "counts": counts})
