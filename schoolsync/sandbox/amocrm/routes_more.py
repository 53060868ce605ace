"""Notes, tasks, pipelines and statuses, users, custom fields, account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm import bodies, listing, render
from schoolsync.sandbox.amocrm.context import Sandbox, base_url, route_path
from schoolsync.sandbox.amocrm.plans import Checker
from schoolsync.sandbox.amocrm.responses import ValidationErrors, hal, problem
from schoolsync.sandbox.amocrm.store import Entity

# notes ---------------------------------------------------------------------------------


def _note_entity(request: Request) -> str:
    """``leads``, ``contacts`` or ``companies``, from ``/api/v4/<entity>/...notes``."""
    return route_path(request).split("/")[3]


def _entity_exists(sb: Sandbox, entity_type: str, entity_id: int) -> bool:
    table = {"leads": sb.store.leads, "contacts": sb.store.contacts}.get(
        entity_type, sb.store.companies
    )
    return entity_id in table


async def add_notes(sb: Sandbox, request: Request) -> Response:
    """``POST /api/v4/<entity>/notes`` (``entity_id`` in each item) or ``/<entity>/{id}/notes``."""
    items = await bodies.batch(request)
    entity_type = _note_entity(request)
    entity_id: int | None = request.path_params.get("id")
    base = base_url(request)
    with sb.store.lock:
        if entity_id is not None and not _entity_exists(sb, entity_type, entity_id):
            return problem(404, "Not Found")
        checker = Checker(sb.catalog, sb.store)
        plans = [checker.note(raw, i, entity_type, entity_id) for i, raw in enumerate(items)]
        if checker.errors:
            return checker.errors.response()
        rows = []
        for plan in plans:
            assert plan is not None  # no errors, so every item made a plan
            note = sb.store.create_note(plan, now=sb.now(), user_id=sb.user_id)
            rows.append(
                {
                    "id": note["id"],
                    "entity_id": note["entity_id"],
                    "request_id": plan.request_id,
                    "_links": render.link(base, f"/api/v4/{entity_type}/notes/{note['id']}"),
                }
            )
    return hal(
        {"_links": render.link(base, f"/api/v4/{entity_type}/notes"), "_embedded": {"notes": rows}}
    )


async def list_notes(sb: Sandbox, request: Request) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    entity_type = _note_entity(request)
    entity_id: int | None = request.path_params.get("id")
    note_types = set(params.strings.get("note_type", []))
    base = base_url(request)

    def wanted(note: Entity) -> bool:
        return (
            note["entity_type"] == entity_type
            and (entity_id is None or note["entity_id"] == entity_id)
            and (not note_types or note["note_type"] in note_types)
        )

    with sb.store.lock:
        if entity_id is not None and not _entity_exists(sb, entity_type, entity_id):
            return problem(404, "Not Found")
        found = listing.select(sb.store.notes.values(), params, wanted)
        return listing.page_response(
            request, "notes", found, params, lambda e: render.note(e, base)
        )


# tasks ---------------------------------------------------------------------------------


async def add_tasks(sb: Sandbox, request: Request) -> Response:
    items = await bodies.batch(request)
    base = base_url(request)
    with sb.store.lock:
        checker = Checker(sb.catalog, sb.store)
        plans = [checker.task(raw, i) for i, raw in enumerate(items)]
        if checker.errors:
            return checker.errors.response()
        rows = []
        for plan in plans:
            assert plan is not None  # no errors, so every item made a plan
            task = sb.store.create_task(plan, now=sb.now(), user_id=sb.user_id)
            rows.append(
                {
                    "id": task["id"],
                    "updated_at": task["updated_at"],
                    "request_id": plan.request_id,
                    "_links": render.link(base, f"/api/v4/tasks/{task['id']}"),
                }
            )
    return hal({"_links": render.link(base, "/api/v4/tasks"), "_embedded": {"tasks": rows}})


async def list_tasks(sb: Sandbox, request: Request) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    entity_types = set(params.strings.get("entity_type", []))
    completed = params.strings.get("is_completed")
    base = base_url(request)

    def wanted(task: Entity) -> bool:
        if entity_types and task["entity_type"] not in entity_types:
            return False
        return not completed or str(int(task["is_completed"])) in completed

    with sb.store.lock:
        found = listing.select(sb.store.tasks.values(), params, wanted)
        return listing.page_response(
            request, "tasks", found, params, lambda e: render.task(e, base)
        )


# account setup -------------------------------------------------------------------------


async def list_pipelines(sb: Sandbox, request: Request) -> Response:
    base, account_id = base_url(request), sb.config.account_id
    pipelines = [render.pipeline(p, base, account_id) for p in sb.catalog.pipelines.values()]
    return hal(
        {
            "_total_items": len(pipelines),
            "_links": render.link(base, "/api/v4/leads/pipelines"),
            "_embedded": {"pipelines": pipelines},
        }
    )


async def get_pipeline(sb: Sandbox, request: Request) -> Response:
    pipeline = sb.catalog.pipelines.get(request.path_params["id"])
    if pipeline is None:
        return problem(404, "Not Found")
    return hal(render.pipeline(pipeline, base_url(request), sb.config.account_id))


async def list_statuses(sb: Sandbox, request: Request) -> Response:
    pipeline = sb.catalog.pipelines.get(request.path_params["id"])
    if pipeline is None:
        return problem(404, "Not Found")
    base = base_url(request)
    statuses = render.pipeline(pipeline, base, sb.config.account_id)["_embedded"]["statuses"]
    return hal(
        {
            "_total_items": len(statuses),
            "_links": render.link(base, f"/api/v4/leads/pipelines/{pipeline.id}/statuses"),
            "_embedded": {"statuses": statuses},
        }
    )


async def list_users(sb: Sandbox, request: Request) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    users = list(sb.catalog.users.values())
    base = base_url(request)
    return listing.page_response(
        request,
        "users",
        users,
        params,
        lambda u: render.user(u, base),
        _total_items=len(users),
        _page_count=-(-len(users) // params.limit),
    )


async def get_user(sb: Sandbox, request: Request) -> Response:
    user = sb.catalog.users.get(request.path_params["id"])
    if user is None:
        return problem(404, "Not Found")
    return hal(render.user(user, base_url(request)))


async def lead_custom_fields(sb: Sandbox, request: Request) -> Response:
    return _custom_fields(sb, request, "leads")


async def contact_custom_fields(sb: Sandbox, request: Request) -> Response:
    return _custom_fields(sb, request, "contacts")


def _custom_fields(sb: Sandbox, request: Request, entity_type: str) -> Response:
    errors = ValidationErrors()
    params = listing.parse(request.query_params, errors)
    if errors:
        return errors.response()
    base = base_url(request)
    fields = (
        sb.catalog.lead_fields if entity_type == "leads" else sb.catalog.contact_fields
    ).fields
    return listing.page_response(
        request,
        "custom_fields",
        fields,
        params,
        lambda f: render.custom_field(f, entity_type, base, sb.config.account_id),
        _total_items=len(fields),
        _page_count=-(-len(fields) // params.limit),
    )


async def get_account(sb: Sandbox, request: Request) -> Response:
    config = sb.config
    return hal(render.account(sb.catalog, config.subdomain, config.account_id, base_url(request)))
