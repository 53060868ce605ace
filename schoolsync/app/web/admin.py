"""``/admin/api/*``: what admins and other systems send in by hand (grows with issue 8).

Every route needs ``Authorization: Bearer <token>`` of an operator (``admin_auth``: the named
``SCHOOLSYNC_ADMIN_TOKENS`` or the single ``SCHOOLSYNC_ADMIN_TOKEN``, compared in constant time;
a viewer gets 403); without a configured token the admin API answers 404. The admin console's
routes (failures, replays, inbox, reconciliation queue, audit) are in ``admin_console``. Input is stored in the inbox before the
answer, like a webhook, and processed by a job. Refund requests and confirmations (W9) are
answered with their outcome instead (the request id, or why there is nothing to refund); what
follows a confirmation is a job.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schoolsync.app.platforms import build_platforms
from schoolsync.app.web.admin_auth import authenticator, require_operator
from schoolsync.app.web.admin_console import bearer, console_router
from schoolsync.app.web.ingest import InboxWriter
from schoolsync.core.config import AppConfig
from schoolsync.core.domain import Money
from schoolsync.core.errors import ConfigError, NotFoundError, StoreUnavailableError
from schoolsync.core.settings import Settings
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.mappings.refunds import card_last4
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.services.refunds import confirm_refund, request_refund


class FeedbackIn(BaseModel):
    """A piece of feedback: what was said, about whom, and (optionally) its score."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        max_length=120,
        description="your id for it: the same id sent twice is stored once",
    )
    school: str | None = None
    text: str = Field(min_length=1, max_length=20_000)
    subject: str | None = Field(default=None, max_length=200, description="client or child")
    score: int | None = Field(default=None, ge=0, le=10)
    scale: Literal[5, 10] = 10
    author: str | None = Field(default=None, max_length=200)
    author_kind: Literal["teacher", "client", "employee"] = "employee"
    addressed_to: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=200)
    contact_id: str | None = Field(
        default=None, pattern=r"^\d{1,18}$", description="amoCRM contact id"
    )

    @model_validator(mode="after")
    def _score_on_scale(self) -> FeedbackIn:
        if self.score is not None and self.scale == 5 and not 1 <= self.score <= 5:
            raise ValueError("a score on the 5-point scale is 1 to 5")
        return self


class PaymentIn(BaseModel):
    """A payment a person received by card or bank transfer (W6)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1, max_length=120, description="your id for it: the same id twice is one payment"
    )
    school: str | None = None
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    payer: str = Field(min_length=1, max_length=200, description="as on the receipt")
    method: Literal["card_transfer", "bank_transfer"] = "card_transfer"
    order: str | None = Field(default=None, max_length=60, description="the order number")
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _whole_minor_units(self) -> PaymentIn:
        try:
            Money(amount=self.amount, currency=self.currency).minor  # noqa: B018
        except ValueError:
            raise ValueError(f"{self.currency} amounts have no fraction of that size") from None
        return self


class RefundIn(BaseModel):
    """A client's refund (W9): the handbook's «Возвраты» request."""

    model_config = ConfigDict(extra="forbid")

    school: str | None = None
    order: str = Field(min_length=1, max_length=60, description="the order number")
    card: str | None = Field(
        default=None,
        description="the card to return the money to; only its last 4 digits are kept",
    )
    comment: str | None = Field(default=None, max_length=2000)


class RefundRequested(BaseModel):
    id: int = Field(description="the refund request")
    order: str
    status: Literal["requested", "exists"] = Field(
        description="exists: the order's open request, given back (nothing posted again)"
    )
    state: str


class RefundConfirmed(BaseModel):
    id: int
    order: str
    status: Literal["confirmed", "already_confirmed"] = Field(
        description="already_confirmed: nothing happened (it was confirmed before)"
    )
    state: str = Field(description="the request's state before this confirmation")


class Stored(BaseModel):
    status: Literal["accepted", "duplicate"]
    id: int | None = Field(description="the inbox row (None for a duplicate)")


def admin_router(
    settings: Settings,
    config: AppConfig,
    writer: InboxWriter,
    feedback_source: str,
    payments_source: str,
    *,
    context: JobContext | None = None,
) -> APIRouter:
    """``context`` is the jobs' context (refunds, replays, dry runs, the reconciliation
    queue); by default one over the writer's database and queue, with the platforms of
    ``config`` (a dry run maps orders with the school's mappings; nothing connects until used).
    """
    router = APIRouter(prefix="/admin/api", tags=["admin"])
    ctx = context or JobContext(
        config=config,
        db=writer.db,
        queue=writer.job_queue,
        jobs=settings.jobs,
        data_dir=settings.data_dir,
        platforms=build_platforms(
            settings,
            config,
            writer.db,
            writer.job_queue.broker.client,
            sandbox=bool(settings.sandbox),
        ),
    )

    authenticate = authenticator(settings)
    router.include_router(console_router(settings, ctx, prefix=""))

    def operator(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
        require_operator(authenticate(header))

    @router.post(
        "/feedback",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(operator)],
        response_model=Stored,
    )
    async def post_feedback(item: FeedbackIn) -> Stored:
        """Feedback from another system or a person: stored, then linked to the client's CRM
        card, posted to the feedback channel and routed (W10)."""
        school = item.school or config.default_school.id
        if config.school(school) is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown school {school!r}")
        draft = item.model_dump(
            include={
                "text", "subject", "score", "scale", "author", "author_kind",
                "addressed_to", "phone", "email",
            }
        )  # fmt: skip
        draft["source"] = "api"
        body = json.dumps({"draft": draft, "contact_id": item.contact_id}, ensure_ascii=False)
        record = InboxRecord(
            school=school,
            source=feedback_source,
            dedup_key=f"api:{item.id}" if item.id else f"api:{uuid.uuid4().hex}",
            body=body.encode(),
        )
        try:
            stored = await asyncio.wrap_future(writer.submit(record))
        except Exception as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later"
            ) from exc
        if stored.inbox_id is None:
            return Stored(status="duplicate", id=None)
        return Stored(status="accepted", id=stored.inbox_id)

    @router.post(
        "/payments",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(operator)],
        response_model=Stored,
    )
    async def post_payment(item: PaymentIn) -> Stored:
        """A card or bank transfer a person received: stored, then matched to its order, the
        order marked paid in GetCourse, the lead moved to won, and the finance line posted."""
        school = item.school or config.default_school.id
        if config.school(school) is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown school {school!r}")
        body = item.model_dump_json(exclude={"school"})
        return await _store(school, payments_source, f"api:{item.id}", body.encode())

    @router.post(
        "/refunds",
        status_code=status.HTTP_201_CREATED,
        dependencies=[Depends(operator)],
        response_model=RefundRequested,
        responses={404: {"description": "the order has no paid payment in the ledger"}},
    )
    def post_refund(item: RefundIn, response: Response) -> RefundRequested:
        """A refund request for the order's paid payments: posted to the refunds channel in
        the handbook's format (the card masked to its last 4 digits). Confirm it with
        ``POST /admin/api/refunds/{id}/confirm``."""
        school = item.school or config.default_school.id
        if config.school(school) is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown school {school!r}")
        try:
            last4 = card_last4(item.card) if item.card else None
        except ValueError as exc:  # the message never repeats the number
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
        try:
            made = request_refund(
                ctx,
                school,
                order_number=item.order,
                card_last4=last4,
                comment=item.comment,
                who="api",
            )
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
        except ConfigError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
        except StoreUnavailableError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later"
            ) from exc
        if not made.created:
            response.status_code = status.HTTP_200_OK
        return RefundRequested(
            id=made.id,
            order=made.order_number,
            status="requested" if made.created else "exists",
            state=made.state,
        )

    @router.post(
        "/refunds/{request_id}/confirm",
        dependencies=[Depends(operator)],
        response_model=RefundConfirmed,
        responses={404: {"description": "no such refund request"}},
    )
    def post_refund_confirm(request_id: int) -> RefundConfirmed:
        """Confirm a refund request: the money goes back (YooKassa, or recorded as a manual
        refund), the course access is closed and the outcome posted, by a job. A second
        confirmation does nothing."""
        try:
            done = confirm_refund(ctx, request_id, who="api")
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
        except StoreUnavailableError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later"
            ) from exc
        return RefundConfirmed(
            id=done.id,
            order=done.order_number,
            status="confirmed" if done.confirmed else "already_confirmed",
            state=done.state,
        )

    async def _store(school: str, source: str, key: str, body: bytes) -> Stored:
        record = InboxRecord(school=school, source=source, dedup_key=key, body=body)
        try:
            stored = await asyncio.wrap_future(writer.submit(record))
        except Exception as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later"
            ) from exc
        if stored.inbox_id is None:
            return Stored(status="duplicate", id=None)
        return Stored(status="accepted", id=stored.inbox_id)

    return router
