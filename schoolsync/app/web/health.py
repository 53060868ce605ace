"""``/healthz`` (the process answers), ``/readyz`` (database, migrations and Redis are fine)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from schoolsync.core.db import Database
from schoolsync.core.db.migrate import is_current
from schoolsync.sync_jobs.broker import LedgerBroker


def health_router(db: Database, broker: LedgerBroker) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            db.ping()
            checks["database"] = "ok"
            checks["migrations"] = "ok" if is_current(db) else "pending: run `schoolsync migrate`"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            broker.client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return router
