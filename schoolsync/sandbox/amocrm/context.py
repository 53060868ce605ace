"""One sandbox account: its setup, data, tokens, limits, faults, webhooks and counters, and the
guard every API request passes through (count, block, rate limit, fault, bearer, handler)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm.bodies import BodyError
from schoolsync.sandbox.amocrm.catalog import Catalog
from schoolsync.sandbox.amocrm.config import AmoSandboxConfig
from schoolsync.sandbox.amocrm.guards import Faults, RateGate
from schoolsync.sandbox.amocrm.oauth import TokenBook
from schoolsync.sandbox.amocrm.responses import html_error, problem, server_error
from schoolsync.sandbox.amocrm.store import Entity, StatusChange, Store
from schoolsync.sandbox.amocrm.webhooks import WebhookSender, encode, lead_item

Handler = Callable[["Sandbox", Request], Awaitable[Response]]

_RATE_DETAIL = "You have sent too many requests in a given amount of time. Please try again later."


class Sandbox:
    def __init__(self, config: AmoSandboxConfig) -> None:
        self.config = config
        self.catalog = Catalog(config)
        self.store = Store(self.catalog, config)
        self.tokens = TokenBook(config, self.catalog.api_user.id)
        self.gate = RateGate(config.rate_per_s, config.block_after_429s, config.block_for_s)
        self.faults = Faults()
        self.webhooks = (
            WebhookSender(
                config.webhook_url,
                timeout_s=config.webhook_timeout_s,
                retries=config.webhook_retries,
                retry_delay_s=config.webhook_retry_delay_s,
            )
            if config.webhook_url
            else None
        )
        self._count_lock = threading.Lock()
        self.clock_offset_s = 0
        self.reset_counters()

    @property
    def user_id(self) -> int:
        return self.catalog.api_user.id

    def now(self) -> int:
        """The account's clock (unix seconds): the real one, moved on by ``/_sandbox/clock``."""
        return int(time.time()) + self.clock_offset_s

    def reset_counters(self) -> None:
        with self._count_lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.faults_injected = 0

    def reset(self, *, keep_tokens: bool) -> None:
        self.store.reset()
        self.faults.clear()
        self.gate.reset()
        self.reset_counters()
        if not keep_tokens:
            self.tokens.reset()
        if self.webhooks is not None:
            self.webhooks.reset_counts()

    def _count(
        self, key: str | None = None, status: int | None = None, fault: bool = False
    ) -> None:
        with self._count_lock:
            if key is not None:
                self.requests[key] += 1
            if status is not None:
                self.statuses[status] += 1
            if fault:
                self.faults_injected += 1

    # the guard ---------------------------------------------------------------------------

    async def guarded(
        self, request: Request, template: str, handler: Handler, *, api: bool = True
    ) -> Response:
        self._count(key=f"{request.method} {template}")
        if api:
            verdict, wait_s = self.gate.admit()
            if verdict == "blocked":
                self._count(status=403)
                return html_error(403)
            if verdict == "limited":
                self._count(status=429)
                if self.config.rate_limit_body == "html":
                    return html_error(429)
                return problem(429, _RATE_DETAIL, retry_after=wait_s)
        plan = self.faults.plan(request.method, route_path(request), template)
        if plan.latency_s:
            await anyio.sleep(plan.latency_s)
        if plan.kind == "error":
            self._count(status=plan.status, fault=True)
            if plan.status >= 500:
                return server_error(plan.status)
            return problem(plan.status, "Injected fault")
        if plan.kind == "timeout" and not plan.apply:
            self._count(status=504, fault=True)
            await anyio.sleep(plan.timeout_s)
            return html_error(504)
        if api and not self._authorized(request):
            self._count(status=401)
            return problem(401, "Неверный логин или пароль")
        try:
            response = await handler(self, request)
        except BodyError as error:
            response = error.response
        self._count(status=response.status_code)
        if plan.kind == "timeout":
            self._count(fault=True)
            await anyio.sleep(plan.timeout_s)
        return response

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme == "Bearer" and bool(token) and self.tokens.access_ok(token.strip())

    # webhooks ----------------------------------------------------------------------------

    def lead_events(
        self,
        base: str,
        *,
        added: list[Entity] | None = None,
        moved: list[tuple[Entity, StatusChange]] | None = None,
    ) -> None:
        """Queues ``leads[add]`` / ``leads[status]`` webhooks (call with the store locked)."""
        if self.webhooks is None:
            return
        common: dict[str, Any] = {
            "subdomain": self.config.subdomain,
            "account_id": self.config.account_id,
            "base": base,
        }
        if added:
            self.webhooks.send(encode("add", [lead_item(lead) for lead in added], **common))
        if moved:
            items = [lead_item(lead, change) for lead, change in moved]
            self.webhooks.send(encode("status", items, **common))

    def snapshot(self) -> dict[str, Any]:
        with self._count_lock:
            state: dict[str, Any] = {
                "requests": dict(self.requests),
                "responses": {str(k): v for k, v in sorted(self.statuses.items())},
                "responses_401": self.statuses[401],
                "responses_403": self.statuses[403],
                "responses_429": self.statuses[429],
                "faults_injected": self.faults_injected,
            }
        with self.store.lock:
            store = self.store
            state.update(
                leads=len(store.leads),
                contacts=len(store.contacts),
                companies=len(store.companies),
                notes=len(store.notes),
                tasks=len(store.tasks),
            )
        state.update(self.tokens.snapshot())
        hooks = self.webhooks
        state.update(
            webhooks_sent=hooks.sent if hooks else 0,
            webhooks_failed=hooks.failed if hooks else 0,
            webhooks_pending=hooks.pending if hooks else 0,
            webhook_attempts_failed=hooks.failed_attempts if hooks else 0,
        )
        blocked = self.gate.blocked_until - time.monotonic()
        state["blocked_for_s"] = round(blocked, 3) if blocked > 0 else 0.0
        return state


def route_path(request: Request) -> str:
    """The path below the sandbox's mount point (``/api/v4/leads``)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def base_url(request: Request) -> str:
    """Where the sandbox is mounted: links in answers point back into it."""
    url = request.url
    root: str = request.scope.get("root_path", "")
    return f"{url.scheme}://{url.netloc}{root}".rstrip("/")
