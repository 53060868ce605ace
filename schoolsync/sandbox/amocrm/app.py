"""The ASGI app: the route table of the fake account.

Routes are relative, so the app works at the root or mounted under a prefix
(``Mount("/amocrm", app=create_app())``); links in answers include the prefix.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from schoolsync.sandbox.amocrm import control
from schoolsync.sandbox.amocrm import routes_entities as entities
from schoolsync.sandbox.amocrm import routes_more as more
from schoolsync.sandbox.amocrm.config import AmoSandboxConfig
from schoolsync.sandbox.amocrm.context import Handler, Sandbox
from schoolsync.sandbox.amocrm.oauth import token_endpoint
from schoolsync.sandbox.amocrm.responses import problem

API: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v4/leads", entities.list_leads),
    ("POST", "/api/v4/leads", entities.add_leads),
    ("PATCH", "/api/v4/leads", entities.update_leads),
    ("POST", "/api/v4/leads/complex", entities.add_complex),
    ("GET", "/api/v4/leads/notes", more.list_notes),
    ("POST", "/api/v4/leads/notes", more.add_notes),
    ("GET", "/api/v4/leads/pipelines", more.list_pipelines),
    ("GET", "/api/v4/leads/pipelines/{id:int}", more.get_pipeline),
    ("GET", "/api/v4/leads/pipelines/{id:int}/statuses", more.list_statuses),
    ("GET", "/api/v4/leads/custom_fields", more.lead_custom_fields),
    ("GET", "/api/v4/leads/{id:int}", entities.get_lead),
    ("PATCH", "/api/v4/leads/{id:int}", entities.update_lead),
    ("GET", "/api/v4/leads/{id:int}/notes", more.list_notes),
    ("POST", "/api/v4/leads/{id:int}/notes", more.add_notes),
    ("GET", "/api/v4/contacts", entities.list_contacts),
    ("POST", "/api/v4/contacts", entities.add_contacts),
    ("PATCH", "/api/v4/contacts", entities.update_contacts),
    ("GET", "/api/v4/contacts/custom_fields", more.contact_custom_fields),
    ("GET", "/api/v4/contacts/notes", more.list_notes),
    ("POST", "/api/v4/contacts/notes", more.add_notes),
    ("GET", "/api/v4/contacts/{id:int}", entities.get_contact),
    ("PATCH", "/api/v4/contacts/{id:int}", entities.update_contact),
    ("GET", "/api/v4/contacts/{id:int}/notes", more.list_notes),
    ("POST", "/api/v4/contacts/{id:int}/notes", more.add_notes),
    ("GET", "/api/v4/companies/notes", more.list_notes),
    ("POST", "/api/v4/companies/notes", more.add_notes),
    ("GET", "/api/v4/companies/{id:int}/notes", more.list_notes),
    ("POST", "/api/v4/companies/{id:int}/notes", more.add_notes),
    ("GET", "/api/v4/tasks", more.list_tasks),
    ("POST", "/api/v4/tasks", more.add_tasks),
    ("GET", "/api/v4/users", more.list_users),
    ("GET", "/api/v4/users/{id:int}", more.get_user),
    ("GET", "/api/v4/account", more.get_account),
]

CONTROL: list[tuple[str, str, Handler]] = [
    ("GET", "/_sandbox/state", control.state),
    ("GET", "/_sandbox/leads", control.all_leads),
    ("POST", "/_sandbox/leads", control.seed_leads),
    ("POST", "/_sandbox/leads/{id:int}/status", control.move_lead),
    ("GET", "/_sandbox/contacts", control.all_contacts),
    ("POST", "/_sandbox/oauth/code", control.oauth_code),
    ("GET", "/_sandbox/faults", control.list_faults),
    ("POST", "/_sandbox/faults", control.set_fault),
    ("DELETE", "/_sandbox/faults", control.clear_faults),
    ("POST", "/_sandbox/reset", control.reset),
    ("POST", "/_sandbox/clock", control.move_clock),
]


def create_app(config: AmoSandboxConfig | None = None) -> Starlette:
    """A fresh account with its own state; ``app.state.sandbox`` is the :class:`Sandbox`."""
    sandbox = Sandbox(config or AmoSandboxConfig())
    routes: list[BaseRoute] = [_oauth_route(sandbox)]
    routes += [_api_route(sandbox, method, path, handler) for method, path, handler in API]
    routes += [_control_route(sandbox, method, path, handler) for method, path, handler in CONTROL]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.sandbox = sandbox
    return app


def _oauth_route(sandbox: Sandbox) -> Route:
    async def endpoint(request: Request) -> Response:
        return await sandbox.guarded(
            request,
            "/oauth2/access_token",
            lambda sb, req: token_endpoint(req, sb.tokens),
            api=False,
        )

    return Route("/oauth2/access_token", endpoint, methods=["POST"])


def _api_route(sandbox: Sandbox, method: str, path: str, handler: Handler) -> Route:
    template = re.sub(r":\w+}", "}", path)

    async def endpoint(request: Request) -> Response:
        return await sandbox.guarded(request, template, handler)

    return Route(path, endpoint, methods=[method])


def _control_route(sandbox: Sandbox, method: str, path: str, handler: Handler) -> Route:
    async def endpoint(request: Request) -> Response:
        return await handler(sandbox, request)

    return Route(path, endpoint, methods=[method])


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem(404, f"Cannot {request.method} {request.url}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    headers = exc.headers if isinstance(exc, HTTPException) else None
    response = problem(405, "Method Not Allowed")
    if headers:
        response.headers.update(headers)
    return response
