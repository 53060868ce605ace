"""``/_sandbox/*``: what tests and benchmarks use to set up, inspect and disturb the account.

No auth, no rate limit, not counted. Tokens are never shown; refresh tokens are named by
:func:`~schoolsync.sandbox.amocrm.oauth.fingerprint`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm import render
from schoolsync.sandbox.amocrm.config import UNSORTED_STATUS_TYPE
from schoolsync.sandbox.amocrm.context import Sandbox, base_url
from schoolsync.sandbox.amocrm.fields import is_int
from schoolsync.sandbox.amocrm.guards import FaultRule
from schoolsync.sandbox.amocrm.responses import plain_json, problem
from schoolsync.sandbox.amocrm.routes_entities import complex_create


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def state(sb: Sandbox, request: Request) -> Response:
    return plain_json(sb.snapshot())


async def all_leads(sb: Sandbox, request: Request) -> Response:
    """Every lead with its contacts and notes in full, for assertions."""
    base = base_url(request)
    with sb.store.lock:
        notes_by_lead: dict[int, list[dict[str, Any]]] = {}
        for note in sb.store.notes.values():
            if note["entity_type"] != "leads":
                continue
            notes_by_lead.setdefault(note["entity_id"], []).append(render.note(note, base))
        out = []
        for lead in sb.store.leads.values():
            item = render.lead(lead, base)
            item["_embedded"]["contacts"] = [
                render.contact(sb.store.contacts[cid], base) for cid in lead["contact_ids"]
            ]
            item["_embedded"]["notes"] = notes_by_lead.get(lead["id"], [])
            out.append(item)
    return plain_json(out)


async def all_contacts(sb: Sandbox, request: Request) -> Response:
    base = base_url(request)
    with sb.store.lock:
        return plain_json(
            [render.contact(c, base, with_leads=True) for c in sb.store.contacts.values()]
        )


async def oauth_code(sb: Sandbox, request: Request) -> Response:
    """An authorization code, as the redirect after "Allow" would carry it."""
    return plain_json(
        {
            "code": sb.tokens.issue_code(),
            "expires_in": sb.config.auth_code_ttl_s,
            "referer": f"{sb.config.subdomain}.amocrm.ru",
        }
    )


async def move_lead(sb: Sandbox, request: Request) -> Response:
    """A manager moves the lead: ``{"status_id": N, "pipeline_id": M?}``; fires the webhook."""
    body = await _body(request)
    status_id, pipeline_id = body.get("status_id"), body.get("pipeline_id")
    if not is_int(status_id) or (pipeline_id is not None and not is_int(pipeline_id)):
        return problem(400, "status_id (and pipeline_id, if given) must be integers")
    base = base_url(request)
    with sb.store.lock:
        lead = sb.store.leads.get(request.path_params["id"])
        if lead is None:
            return problem(404, "Not Found")
        if pipeline_id is None:
            found = sb.catalog.pipeline_of(status_id, lead["pipeline_id"])
            pipeline_id = found.id if found else None
        target = sb.catalog.status(pipeline_id, status_id) if pipeline_id is not None else None
        if target is None or target.type == UNSORTED_STATUS_TYPE:
            return problem(400, "No such stage to move the lead to")
        change = sb.store.move_lead(
            lead, pipeline_id=pipeline_id, status_id=status_id, now=sb.now(), user_id=sb.user_id
        )
        if change is not None:
            sb.lead_events(base, moved=[(lead, change)])
        return plain_json(render.lead(lead, base, with_contacts=True))


async def move_clock(sb: Sandbox, request: Request) -> Response:
    """``{"advance_s": N}``: the account's clock moves on (``updated_at`` of later changes);
    tests use it to keep changes in distinct seconds, as amoCRM's times are whole seconds."""
    body = await _body(request)
    advance = body.get("advance_s") if isinstance(body, dict) else None
    if not is_int(advance) or advance < 0:
        return problem(400, "advance_s must be a non-negative integer")
    with sb.store.lock:
        sb.clock_offset_s += advance
        return plain_json({"now": sb.now()})


async def seed_leads(sb: Sandbox, request: Request) -> Response:
    """``{"leads": [<complex items>], "webhooks": false}``: no 50 cap, no rate limit."""
    body = await _body(request)
    items = body.get("leads") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return problem(400, "give a non-empty list of leads in the shape of /leads/complex")
    result = complex_create(sb, base_url(request), items, webhooks=bool(body.get("webhooks")))
    return result if isinstance(result, Response) else plain_json(result)


async def set_fault(sb: Sandbox, request: Request) -> Response:
    try:
        rule = FaultRule.model_validate(await _body(request))
    except ValidationError as error:
        return problem(400, "invalid fault rule", errors=json.loads(error.json()))
    sb.faults.set(rule)
    return plain_json([r.model_dump() for r in sb.faults.rules()])


async def list_faults(sb: Sandbox, request: Request) -> Response:
    return plain_json([r.model_dump() for r in sb.faults.rules()])


async def clear_faults(sb: Sandbox, request: Request) -> Response:
    sb.faults.clear()
    return plain_json([])


async def reset(sb: Sandbox, request: Request) -> Response:
    """Empties the account, counters, faults and the rate limit; ``{"keep_tokens": false}``
    also forgets every token and code."""
    body = await _body(request)
    sb.reset(keep_tokens=bool(body.get("keep_tokens", True)))
    return plain_json(sb.snapshot())
