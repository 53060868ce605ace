"""``POST /webhooks/{source}``: verify on raw bytes, store, enqueue, then answer.

A plain Starlette route on the hot path (FastAPI's per-request validation costs more than the
database and Redis together); the admin API keeps FastAPI.

Answers: 200 stored (or duplicate of a stored event), 400 malformed (stored as rejected),
401 forged (stored as rejected), 404 unknown or switched-off source, 413 body too large,
503 the database is unavailable, so the sender retries.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode
from uuid import uuid4

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.app.web.ingest import InboxWriter
from schoolsync.connectors.inbound import AcceptedEvent, RawRequest, WebhookSource
from schoolsync.core.config import AppConfig
from schoolsync.core.errors import (
    ForbiddenSourceError,
    MalformedInputError,
    PermanentError,
    RetryableError,
    VerificationError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores.inbox import REJECTED, InboxRecord

log = get_logger(__name__)
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization"}
# credentials a source checks in a header: seen by its verification, never stored (PayPal's
# PAYPAL-TRANSMISSION-* are a signature, not a secret, and are kept for an operator)
_SECRET_HEADERS = frozenset({"x-telegram-bot-api-secret-token"})


def stored_headers(headers: dict[str, str]) -> dict[str, str]:
    """The request headers as stored in the inbox: without the ones that carry a secret."""
    return {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}


class WebhookEndpoint:
    def __init__(
        self,
        *,
        sources: dict[str, WebhookSource],
        writer: InboxWriter,
        config: AppConfig,
        max_body_bytes: int,
        counter: Counter,
    ) -> None:
        self.sources = sources
        self.writer = writer
        self.config = config
        self.max_body_bytes = max_body_bytes
        self.counter = counter

    async def handle(self, request: Request) -> Response:
        name = request.path_params["source"]
        source = self.sources.get(name)
        if source is None:
            return JSONResponse({"error": f"unknown webhook source {name!r}"}, status_code=404)
        if request.method == "GET" and not getattr(source, "allow_get", False):
            return JSONResponse({"error": "use POST"}, status_code=405)
        body = await self._read_body(request)
        if body is None:
            self.counter.labels(name, "too_large").inc()
            return JSONResponse(
                {"error": f"body larger than {self.max_body_bytes} bytes"}, status_code=413
            )
        raw = RawRequest(
            body=body,
            headers={k: v for k, v in request.headers.items() if k not in _DROPPED_HEADERS},
            query=request.url.query,
            remote_addr=request.client.host if request.client else None,
        )
        try:
            prepare = getattr(source, "prepare", None)
            if prepare is not None:  # network work of a verification (fetching a certificate)
                try:
                    await asyncio.to_thread(prepare, raw)
                except (RetryableError, PermanentError) as exc:
                    if isinstance(exc, MalformedInputError):
                        raise
                    # the platform could not answer, or our credentials for it are wrong:
                    # the sender retries later
                    log.error("webhook not verifiable now", source=name, error=str(exc))
                    return JSONResponse(
                        {"error": "cannot verify now, retry later"}, status_code=503
                    )
            accepted = source.accept(raw)
            school = self._school(accepted, request)
        except ForbiddenSourceError as exc:
            return await self._reject(name, raw, "source", str(exc), 403)
        except VerificationError as exc:
            forged = getattr(source, "forged_status", 401)
            return await self._reject(name, raw, "signature", str(exc), forged)
        except MalformedInputError as exc:
            return await self._reject(name, raw, "malformed", str(exc), 400)
        record = InboxRecord(
            school=school,
            source=name,
            dedup_key=accepted.dedup_key,
            body=raw.body,
            headers=stored_headers(raw.headers),
            query=without_secrets(raw.query),
            remote_addr=raw.remote_addr,
        )
        try:
            stored = await asyncio.wrap_future(self.writer.submit(record))
        except Exception as exc:  # the sender retries; this line carries the request id
            self.counter.labels(name, "unavailable").inc()
            log.warning("webhook not stored, answered 503", source=name, error=type(exc).__name__)
            return JSONResponse({"error": "storage unavailable, retry later"}, status_code=503)
        outcome = "accepted" if stored.inbox_id is not None else "duplicate"
        self.counter.labels(name, outcome).inc()
        answer = getattr(source, "success_body", None)
        if answer is not None:  # the reply the platform expects, once the event is stored
            return Response(answer(raw), media_type="text/plain")
        return JSONResponse({"status": outcome, "id": stored.inbox_id})

    def _school(self, accepted: AcceptedEvent, request: Request) -> str:
        school = (
            accepted.school or request.query_params.get("school") or self.config.default_school.id
        )
        if self.config.school(school) is None:
            raise MalformedInputError(f"unknown school {school!r}")
        return school

    async def _read_body(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _reject(
        self, name: str, raw: RawRequest, reason: str, detail: str, status: int
    ) -> JSONResponse:
        self.counter.labels(name, f"rejected_{reason}").inc()
        log.warning(
            "webhook rejected", source=name, reason=reason, detail=detail, remote=raw.remote_addr
        )
        record = InboxRecord(
            school=self.config.default_school.id,
            source=name,
            dedup_key=f"rejected:{uuid4().hex}",
            body=raw.body,
            headers=stored_headers(raw.headers),
            query=without_secrets(raw.query),
            remote_addr=raw.remote_addr,
            status=REJECTED,
            reject_reason=f"{reason}: {detail}",
        )
        try:
            await asyncio.wrap_future(self.writer.submit(record))
        except Exception as exc:  # the answer stays the same; the sender learns nothing more
            log.error("could not keep rejected webhook", source=name, error=str(exc))
        return JSONResponse({"error": detail}, status_code=status)


_SECRET_PARAMS = frozenset({"secret", "key", "token"})


def without_secrets(query: str) -> str:
    """The query string as stored: URL secrets (``?secret=``, whatever the case of the name:
    ``Secret=``, ``TOKEN=``) are checked, never kept."""
    lowered = query.lower()
    # a name may also be percent-encoded (``s%65cret=``): then parse to be sure
    if "%" not in query and not any(f"{name}=" in lowered for name in _SECRET_PARAMS):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
        return query
    return urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs])
