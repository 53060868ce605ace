"""Faults a test can switch on: dropped callbacks, failing or slow API answers, an outage.

Drops and errors are drawn from random generators seeded by `seed`, one per kind, in the order
events happen, so the same sequence of requests gives the same faults in every run.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

from starlette.responses import HTMLResponse, Response

ENDPOINT_ALIASES = {
    "import": ("/pl/api/users", "/pl/api/deals"),
    "export": ("/pl/api/account/*",),
}

_NGINX = "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>"


@dataclass
class FaultSettings:
    drop_callbacks_rate: float = 0.0
    error_rate: float = 0.0
    endpoint: str = "*"
    latency_ms: int = 0
    outage_until: float | None = None
    seed: int | None = None


class FaultError(ValueError):
    """The fault settings asked for are not valid."""


class Faults:
    def __init__(self) -> None:
        self.settings = FaultSettings()
        self._drops = random.Random(0)  # noqa: S311 - reproducible test faults, not secrets
        self._errors = random.Random(0)  # noqa: S311

    def configure(self, body: dict[str, Any]) -> FaultSettings:
        unknown = sorted(set(body) - set(asdict(FaultSettings())))
        if unknown:
            raise FaultError(f"unknown fault settings: {', '.join(unknown)}")
        merged = {**asdict(FaultSettings()), **body}
        try:
            settings = FaultSettings(
                drop_callbacks_rate=float(merged["drop_callbacks_rate"]),
                error_rate=float(merged["error_rate"]),
                endpoint=str(merged["endpoint"]),
                latency_ms=int(merged["latency_ms"]),
                outage_until=None
                if merged["outage_until"] is None
                else float(merged["outage_until"]),
                seed=None if merged["seed"] is None else int(merged["seed"]),
            )
        except (TypeError, ValueError) as exc:
            raise FaultError(f"bad fault settings: {exc}") from exc
        for name in ("drop_callbacks_rate", "error_rate"):
            if not 0.0 <= getattr(settings, name) <= 1.0:
                raise FaultError(f"{name} must be between 0 and 1")
        if settings.latency_ms < 0:
            raise FaultError("latency_ms must not be negative")
        self.settings = settings
        seed = settings.seed if settings.seed is not None else 0
        self._drops = random.Random(f"{seed}:drops")  # noqa: S311
        self._errors = random.Random(f"{seed}:errors")  # noqa: S311
        return settings

    def clear(self) -> None:
        self.configure({})

    def drop_callback(self) -> bool:
        rate = self.settings.drop_callbacks_rate
        return rate > 0 and self._drops.random() < rate

    def _applies(self, endpoint: str) -> bool:
        wanted = self.settings.endpoint
        patterns = ENDPOINT_ALIASES.get(wanted, (wanted,))
        return wanted == "*" or any(fnmatchcase(endpoint, pattern) for pattern in patterns)

    async def gate(self, endpoint: str) -> Response | None:
        """Delay, fail or refuse an API request as configured; `None` lets it through."""
        settings = self.settings
        if not self._applies(endpoint):
            return None
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        if settings.outage_until is not None and time.time() < settings.outage_until:
            return HTMLResponse(_NGINX.format("503 Service Temporarily Unavailable"), 503)
        if settings.error_rate > 0 and self._errors.random() < settings.error_rate:
            return HTMLResponse(_NGINX.format("502 Bad Gateway"), 502)
        return None
