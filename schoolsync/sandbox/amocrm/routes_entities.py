"""``/api/v4/leads``, ``/api/v4/leads/complex`` and ``/api/v4/contacts``.

Handlers are plain functions of (sandbox, request). Each one checks the whole body and applies
it under the store lock, so a refused request changes nothing and no other request sees half of
one. Create answers carry ``request_id`` back (the item's own, or its index as a string).
"""

from __future__ import annotations

from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm import bodies, listing, render
from schoolsync.sandbox.amocrm.context import Sandbox, base_url
from schoolsync.sandbox.amocrm.plans import Checker, ContactPlan, LeadPlan, Mode
from schoolsync.sandbox.amocrm.responses import ValidationErrors, hal, problem
from schoolsync.sandbox.amocrm.store import Entity, StatusChange

Made = tuple[Entity, Entity | None, Entity | None]
T = TypeVar("T")


# leads ---------------------------------------------------------------------------------


async def list_leads(sb: Sandbox, request: Request) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    base, with_contacts = base_url(request), "contacts" in params.with_
    with sb.store.lock:
        found = listing.select(sb.store.leads.values(), params)
        return listing.page_response(
            request,
            "leads",
            found,
            params,
            lambda e: render.lead(e, base, with_contacts=with_contacts),
        )


async def get_lead(sb: Sandbox, request: Request) -> Response:
    with_ = request.query_params.get("with", "").split(",")
    with sb.store.lock:
        lead = sb.store.leads.get(request.path_params["id"])
        if lead is None:
            return problem(404, "Not Found")
        return hal(render.lead(lead, base_url(request), with_contacts="contacts" in with_))


async def add_leads(sb: Sandbox, request: Request) -> Response:
    items = await bodies.batch(request)
    base = base_url(request)
    with sb.store.lock:
        checker = Checker(sb.catalog, sb.store)
        plans = [checker.lead(raw, i, "add") for i, raw in enumerate(items)]
        if checker.errors:
            return checker.errors.response()
        made = create_leads(sb, _checked(plans))
        sb.lead_events(base, added=[lead for lead, _, _ in made])
        rows = [
            {
                "id": lead["id"],
                "request_id": plan.request_id,
                "_links": render.link(base, f"/api/v4/leads/{lead['id']}"),
            }
            for plan, (lead, _, _) in zip(_checked(plans), made, strict=True)
        ]
    return hal({"_links": render.link(base, "/api/v4/leads"), "_embedded": {"leads": rows}})


async def add_complex(sb: Sandbox, request: Request) -> Response:
    items = await bodies.batch(request, limit=bodies.COMPLEX_LIMIT)
    result = complex_create(sb, base_url(request), items)
    return result if isinstance(result, Response) else hal(result)


def complex_create(
    sb: Sandbox, base: str, items: list[Any], *, webhooks: bool = True
) -> Response | list[dict[str, Any]]:
    """Leads with at most one contact and one company each; the answer of ``/leads/complex``.

    Duplicate control is off, as it is unless an account enables it, so ``merged`` is false.
    """
    with sb.store.lock:
        checker = Checker(sb.catalog, sb.store)
        plans = [checker.lead(raw, i, "complex") for i, raw in enumerate(items)]
        if checker.errors:
            return checker.errors.response()
        made = create_leads(sb, _checked(plans))
        if webhooks:
            sb.lead_events(base, added=[lead for lead, _, _ in made])
        return [
            {
                "id": lead["id"],
                "contact_id": contact["id"] if contact else None,
                "company_id": company["id"] if company else None,
                "request_id": [plan.request_id],
                "merged": False,
            }
            for plan, (lead, contact, company) in zip(_checked(plans), made, strict=True)
        ]


def create_leads(sb: Sandbox, plans: list[LeadPlan]) -> list[Made]:
    store, now, user_id = sb.store, sb.now(), sb.user_id
    made: list[Made] = []
    for plan in plans:
        companies = []
        for company_plan in plan.companies:
            if company_plan.company_id is not None:
                companies.append((store.companies[company_plan.company_id], False))
            else:
                companies.append(
                    (store.create_company(company_plan, now=now, user_id=user_id), True)
                )
        contacts = []
        for contact_plan in plan.contacts:
            if contact_plan.link_only and contact_plan.contact_id is not None:
                contacts.append((store.contacts[contact_plan.contact_id], False))
            else:
                contacts.append(
                    (store.create_contact(contact_plan, now=now, user_id=user_id), True)
                )
        lead = store.create_lead(plan, now=now, user_id=user_id)
        for contact, _ in contacts:
            store.link_contact(lead, contact)
        for company, company_new in companies:
            store.link_company(company, lead=lead, contact=None)
            for contact, contact_new in contacts:
                if company_new and contact_new:
                    store.link_company(company, lead=None, contact=contact)
        made.append(
            (lead, contacts[0][0] if contacts else None, companies[0][0] if companies else None)
        )
    return made


async def update_leads(sb: Sandbox, request: Request) -> Response:
    return _update_leads(sb, request, await bodies.batch(request), one=False)


async def update_lead(sb: Sandbox, request: Request) -> Response:
    item = await bodies.single(request)
    lead_id = request.path_params["id"]
    with sb.store.lock:
        if lead_id not in sb.store.leads:
            return problem(404, "Not Found")
    return _update_leads(sb, request, [{**item, "id": lead_id}], one=True)


def _update_leads(sb: Sandbox, request: Request, items: list[Any], *, one: bool) -> Response:
    base = base_url(request)
    with sb.store.lock:
        checker = Checker(sb.catalog, sb.store)
        plans = _checked([checker.lead(raw, i, "update") for i, raw in enumerate(items)])
        if checker.errors:
            return checker.errors.response()
        moved: list[tuple[Entity, StatusChange]] = []
        rows = []
        for plan in plans:
            assert plan.lead_id is not None  # checked: update plans carry an existing id
            lead = sb.store.leads[plan.lead_id]
            change = sb.store.update_lead(lead, plan, now=sb.now(), user_id=sb.user_id)
            if change is not None:
                moved.append((lead, change))
            rows.append(
                {
                    "id": lead["id"],
                    "updated_at": lead["updated_at"],
                    "request_id": plan.request_id,
                    "_links": render.link(base, f"/api/v4/leads/{lead['id']}"),
                }
            )
        sb.lead_events(base, moved=moved)
    if one:
        row = rows[0]
        return hal({"id": row["id"], "updated_at": row["updated_at"], "_links": row["_links"]})
    return hal({"_links": render.link(base, "/api/v4/leads"), "_embedded": {"leads": rows}})


# contacts ------------------------------------------------------------------------------


async def list_contacts(sb: Sandbox, request: Request) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    base, with_leads = base_url(request), "leads" in params.with_
    with sb.store.lock:
        found = listing.select(sb.store.contacts.values(), params)
        return listing.page_response(
            request,
            "contacts",
            found,
            params,
            lambda e: render.contact(e, base, with_leads=with_leads),
        )


async def get_contact(sb: Sandbox, request: Request) -> Response:
    with_ = request.query_params.get("with", "").split(",")
    with sb.store.lock:
        contact = sb.store.contacts.get(request.path_params["id"])
        if contact is None:
            return problem(404, "Not Found")
        return hal(render.contact(contact, base_url(request), with_leads="leads" in with_))


async def add_contacts(sb: Sandbox, request: Request) -> Response:
    return _write_contacts(sb, request, await bodies.batch(request), "add", one=False)


async def update_contacts(sb: Sandbox, request: Request) -> Response:
    return _write_contacts(sb, request, await bodies.batch(request), "update", one=False)


async def update_contact(sb: Sandbox, request: Request) -> Response:
    item = await bodies.single(request)
    contact_id = request.path_params["id"]
    with sb.store.lock:
        if contact_id not in sb.store.contacts:
            return problem(404, "Not Found")
    return _write_contacts(sb, request, [{**item, "id": contact_id}], "update", one=True)


def _write_contacts(
    sb: Sandbox, request: Request, items: list[Any], mode: Mode, *, one: bool
) -> Response:
    base = base_url(request)
    with sb.store.lock:
        checker = Checker(sb.catalog, sb.store)
        plans: list[ContactPlan] = _checked(
            [checker.contact(raw, i, mode) for i, raw in enumerate(items)]
        )
        if checker.errors:
            return checker.errors.response()
        rows = []
        for plan in plans:
            if plan.contact_id is None:
                contact = sb.store.create_contact(plan, now=sb.now(), user_id=sb.user_id)
            else:
                contact = sb.store.contacts[plan.contact_id]
                sb.store.update_contact(contact, plan, now=sb.now(), user_id=sb.user_id)
            row: dict[str, Any] = {"id": contact["id"]}
            if mode == "update":
                row.update(name=contact["name"], updated_at=contact["updated_at"])
            row.update(
                request_id=plan.request_id,
                _links=render.link(base, f"/api/v4/contacts/{contact['id']}"),
            )
            rows.append(row)
    if one:
        return hal({k: v for k, v in rows[0].items() if k != "request_id"})
    return hal({"_links": render.link(base, "/api/v4/contacts"), "_embedded": {"contacts": rows}})


def _checked(plans: list[T | None]) -> list[T]:
    return [plan for plan in plans if plan is not None]
