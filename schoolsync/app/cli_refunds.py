"""``schoolsync refunds``: a client's refund asked for, confirmed and followed (W9).

``request`` posts the handbook's «Возвраты» message (the card masked to its last four digits;
the full number is neither stored nor logged); ``confirm`` asks for the refund job (YooKassa, or
a manual refund recorded; the course access closed; the outcome posted); ``list`` shows where
requests stand. The work is ``sync_jobs.services.refunds``.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from schoolsync.core.config import ConfigFileError
from schoolsync.core.errors import ConfigError, NotFoundError
from schoolsync.core.logging import configure_logging
from schoolsync.core.settings import Settings
from schoolsync.mappings.refunds import card_last4

refunds_app = typer.Typer(
    help="Refunds: ask for one, confirm it, see where they stand.", no_args_is_help=True
)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

School = Annotated[str | None, typer.Option(help="school id [default: the first]")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def _runtime() -> Any:
    from schoolsync.app.bootstrap import build_runtime

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        return build_runtime(settings)
    except ConfigFileError as exc:
        raise _fail(f"the config file has problems:\n{exc}") from None
    except ConfigError as exc:
        raise _fail(exc.message) from None


def _school(runtime: Any, school: str | None) -> str:
    chosen = runtime.config.school(school) if school else runtime.config.default_school
    if chosen is None:
        raise _fail(f"no school '{school}' in the config")
    return str(chosen.id)


def _who() -> str:
    return f"cli:{getpass.getuser()}"


@refunds_app.command("request")
def refunds_request(
    order: Annotated[str, typer.Option(help="the order number")],
    card: Annotated[
        str | None,
        typer.Option(help="the card to return the money to (only its last 4 digits are kept)"),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="why, or anything worth knowing")] = None,
    school: School = None,
) -> None:
    """Ask for a refund of an order's payments: one message to the refunds channel."""
    from schoolsync.sync_jobs.services.refunds import request_refund

    try:
        last4 = card_last4(card) if card else None
    except ValueError as exc:  # the message never repeats the number
        raise _fail(f"--card: {exc}") from None
    runtime = _runtime()
    try:
        made = request_refund(
            runtime.context,
            _school(runtime, school),
            order_number=order,
            card_last4=last4,
            comment=comment,
            who=_who(),
        )
    except (NotFoundError, ConfigError) as exc:
        raise _fail(exc.message) from None
    if made.created:
        console.print(
            f"refund request {made.id} for order {order} posted to the refunds channel; "
            f"confirm it with: schoolsync refunds confirm {made.id}",
            markup=False,
        )
    else:
        console.print(
            f"order {order} has an open refund request already: {made.id} ({made.state}); "
            "nothing posted again",
            markup=False,
        )


@refunds_app.command("confirm")
def refunds_confirm(
    request_id: Annotated[int, typer.Argument(help="the refund request")],
) -> None:
    """Confirm a refund (again: nothing happens).

    A worker then returns the money, closes the course access and posts the outcome."""
    from schoolsync.sync_jobs.services.refunds import confirm_refund

    runtime = _runtime()
    try:
        done = confirm_refund(runtime.context, request_id, who=_who())
    except NotFoundError as exc:
        raise _fail(exc.message) from None
    if done.confirmed:
        console.print(
            f"refund request {request_id} (order {done.order_number}) confirmed; a worker "
            "returns the money, closes the access and posts the outcome",
            markup=False,
        )
    else:
        console.print(
            f"refund request {request_id} (order {done.order_number}) was confirmed before "
            f"(it is {done.state}); nothing done",
            markup=False,
        )


@refunds_app.command("list")
def refunds_list(
    state: Annotated[
        str | None, typer.Option(help="requested, confirmed, done or failed [default: all]")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    school: School = None,
) -> None:
    """Refund requests, newest first."""
    from schoolsync.core.stores import refunds as store

    runtime = _runtime()
    with runtime.db.read() as conn:
        rows = store.requests(conn, _school(runtime, school), state=state, limit=limit)
    table = Table("id", "order", "state", "card", "requested", "by", "confirmed by", "error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["order_number"]),
            str(row["state"]),
            f"**** {row['card_last4']}" if row["card_last4"] else "",
            row["created_at"].strftime("%Y-%m-%d %H:%M"),
            str(row["requested_by"]),
            str(row["confirmed_by"] or ""),
            str(row["error"] or ""),
        )
    console.print(table)
