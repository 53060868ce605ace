"""The ``schoolsync`` command."""

from __future__ import annotations

import gc
import getpass
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from schoolsync.app.cli_admin import failures_app, inbox_app
from schoolsync.app.cli_health import health_app
from schoolsync.app.cli_reconcile import reconcile_app
from schoolsync.app.cli_refunds import refunds_app
from schoolsync.app.cli_reports import report_app
from schoolsync.core.config import ConfigFileError, load_config
from schoolsync.core.errors import ConfigError, RetryableError
from schoolsync.core.logging import configure_logging
from schoolsync.core.sentry import init_sentry
from schoolsync.core.settings import Settings

app = typer.Typer(
    help="schoolsync: sync GetCourse, amoCRM, payments, Sheets and Telegram for an online school.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(failures_app, name="failures")
app.add_typer(inbox_app, name="inbox")
amocrm_app = typer.Typer(help="Connect and inspect amoCRM accounts.", no_args_is_help=True)
app.add_typer(amocrm_app, name="amocrm")
telegram_app = typer.Typer(help="The Telegram bot: webhook, channels.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")
orders_app = typer.Typer(help="Orders: undo what the rules did.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
payments_app = typer.Typer(
    help="The payments ledger: import statements, add a payment.", no_args_is_help=True
)
app.add_typer(payments_app, name="payments")
app.add_typer(refunds_app, name="refunds")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(report_app, name="report")
app.add_typer(health_app, name="healthcheck")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Host = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]
Port = Annotated[int | None, typer.Option(help="port to listen on [default: 8000]")]


def _settings() -> Settings:
    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return settings


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _runtime(settings: Settings) -> Any:
    from schoolsync.app.bootstrap import build_runtime

    try:
        return build_runtime(settings)
    except ConfigFileError as exc:
        raise _fail(f"the config file has problems:\n{exc}") from None
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (safe to run any time)."""
    from schoolsync.core.db import Database
    from schoolsync.core.db.migrate import upgrade

    settings = _settings()
    db = Database(settings.effective_database_url)
    upgrade(db)
    console.print(f"database is up to date: {db.safe_url}")


@app.command("check-config")
def check_config(
    path: Annotated[
        Path | None, typer.Argument(help="file to check [default: $SCHOOLSYNC_CONFIG]")
    ] = None,
) -> None:
    """Validate the YAML config; print every problem with its line. Exit 1 if there is any."""
    target = path or Settings().config
    if path is None and not target.exists():
        console.print(
            f"no config file at {target}: running with one default school and no accounts"
        )
        return
    try:
        config = load_config(target, required=True, blocks=_blocks())
    except ConfigFileError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(1) from None
    names = ", ".join(s.id for s in config.schools)
    console.print(f"{target}: OK ({len(config.schools)} school(s): {names})")


@app.command()
def web(host: Host = None, port: Port = None) -> None:
    """Run the web role: webhooks, health, metrics, API docs."""
    import uvicorn

    from schoolsync.app.web.app import FastPath, create_app

    settings = _settings()
    init_sentry(settings, "web")
    runtime = _runtime(settings)
    asgi = FastPath(create_app(runtime))
    # Everything built so far lives as long as the process: keep it out of the cyclic collector,
    # whose full passes over it took 45-53 ms and were the p99 of webhook answers.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        asgi,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    processes: Annotated[int | None, typer.Option(help="worker processes [default: 2]")] = None,
    threads: Annotated[int | None, typer.Option(help="threads per process [default: 8]")] = None,
) -> None:
    """Run the worker role (Dramatiq processes that run the jobs)."""
    settings = _settings()
    _runtime(settings)  # fail here, readably, if the config or Redis URL is wrong
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "schoolsync.app.worker_boot",
        "--processes",
        str(processes or settings.worker.processes),
        "--threads",
        str(threads or settings.worker.threads),
        "--worker-shutdown-timeout",
        str(settings.worker.shutdown_timeout_ms),
        "--skip-logging",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - replace this process: signals go straight to dramatiq


@app.command()
def scheduler() -> None:
    """Run the scheduler role: enqueues periodic jobs once per slot, runs none itself."""
    from schoolsync.core.heartbeat import Heartbeat, heartbeat_path
    from schoolsync.sync_jobs.scheduler import Scheduler

    settings = _settings()
    init_sentry(settings, "scheduler")  # its failures (a store down at a tick) reach Sentry too
    runtime = _runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    beat = Heartbeat(heartbeat_path(settings.data_dir, "scheduler"))  # `healthcheck scheduler`
    Scheduler(runtime.db, runtime.queue, runtime.schedule).run_forever(stop, on_tick=beat.beat)


@app.command()
def run(host: Host = None, port: Port = None) -> None:
    """Run everything on this machine: migrations, Redis (unless configured), web, worker, scheduler."""
    from schoolsync.app.run import run_all
    from schoolsync.core.db import Database
    from schoolsync.core.db.migrate import upgrade

    settings = _settings()
    config = _check_config_or_exit(settings)
    upgrade(Database(settings.effective_database_url))
    try:
        code = run_all(settings, config, host=host or settings.host, port=port or settings.port)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


def _blocks() -> Any:
    from schoolsync.app.platforms import CONFIG_BLOCKS

    return CONFIG_BLOCKS


def _check_config_or_exit(settings: Settings) -> Any:
    try:
        return load_config(settings.config, blocks=_blocks())
    except ConfigFileError as exc:
        raise _fail(f"the config file has problems:\n{exc}") from None


@app.command()
def sandbox(
    host: Host = None,
    port: Annotated[
        int | None, typer.Option(help="port [default: $SCHOOLSYNC_SANDBOX_PORT]")
    ] = None,
    getcourse_callback: Annotated[
        str | None, typer.Option(help="the process callback URL template GetCourse calls")
    ] = None,
    amocrm_webhook: Annotated[
        str | None, typer.Option(help="where the amoCRM sandbox sends account webhooks")
    ] = None,
    telegram_webhook: Annotated[
        str | None,
        typer.Option(help="where the Telegram sandbox sends updates (as after setWebhook)"),
    ] = None,
    sheets_key_file: Annotated[
        Path | None,
        typer.Option(help="write the Sheets sandbox's service-account key file here"),
    ] = None,
    yookassa_webhook: Annotated[
        str | None, typer.Option(help="where the YooKassa sandbox sends notifications")
    ] = None,
    robokassa_result: Annotated[
        str | None, typer.Option(help="the ResultURL the Robokassa sandbox calls")
    ] = None,
    paypal_webhook: Annotated[
        str | None, typer.Option(help="where the PayPal sandbox sends webhook events")
    ] = None,
    getcourse_callback_attempts: Annotated[
        int, typer.Option(min=1, help="tries per GetCourse callback (non-2xx or no answer)")
    ] = 3,
    getcourse_callback_backoff: Annotated[
        float,
        typer.Option(min=0.0, help="seconds before the 2nd try, doubling after (at most 5)"),
    ] = 0.05,
) -> None:
    """Serve the GetCourse, amoCRM, Telegram, Google Sheets, YooKassa, Robokassa and PayPal
    sandboxes (fake platforms for trying schoolsync out)."""
    import uvicorn

    from schoolsync.app.platforms import SANDBOX_SECRETS
    from schoolsync.sandbox.amocrm import AmoSandboxConfig
    from schoolsync.sandbox.getcourse import GetCourseSandboxConfig
    from schoolsync.sandbox.paypal import PayPalSandboxConfig
    from schoolsync.sandbox.robokassa import RobokassaSandboxConfig
    from schoolsync.sandbox.server import create_app
    from schoolsync.sandbox.sheets import SheetsSandboxConfig
    from schoolsync.sandbox.telegram import TelegramSandboxConfig
    from schoolsync.sandbox.yookassa import YooKassaSandboxConfig

    settings = _settings()
    served = f"http://127.0.0.1:{port or settings.sandbox_port}"
    asgi = create_app(
        GetCourseSandboxConfig(
            key=SANDBOX_SECRETS["sandbox_getcourse_key"],
            callback_url=getcourse_callback,
            callback_attempts=getcourse_callback_attempts,
            callback_backoff_s=getcourse_callback_backoff,
        ),
        AmoSandboxConfig(
            long_lived_token=SANDBOX_SECRETS["sandbox_amocrm_token"], webhook_url=amocrm_webhook
        ),
        TelegramSandboxConfig(
            token=SANDBOX_SECRETS["sandbox_telegram_token"],
            webhook_url=telegram_webhook,
            webhook_secret=SANDBOX_SECRETS["sandbox_telegram_webhook"],
        ),
        SheetsSandboxConfig(
            key_file_path=str(sheets_key_file) if sheets_key_file else None,
            token_uri=f"{served}/sheets/token",
        ),
        yookassa=YooKassaSandboxConfig(webhook_url=yookassa_webhook),
        robokassa=RobokassaSandboxConfig(result_url=robokassa_result),
        paypal=PayPalSandboxConfig(webhook_url=paypal_webhook),
    )
    uvicorn.run(
        asgi,
        host=host or settings.host,
        port=port or settings.sandbox_port,
        log_config=None,
        access_log=False,
    )


@amocrm_app.command("connect")
def amocrm_connect(
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
    code: Annotated[
        str | None, typer.Option(help="the authorization code (asked for when not given)")
    ] = None,
) -> None:
    """Connect an OAuth amoCRM integration: print the authorize URL, exchange the code, store
    the token pair."""
    import secrets as token_generator

    from schoolsync.connectors.amocrm.oauth import OAuthTokens, authorize_url

    settings = _settings()
    runtime = _runtime(settings)
    chosen = runtime.config.school(school) if school else runtime.config.default_school
    if chosen is None:
        raise _fail(f"no school '{school}' in {settings.config}")
    setup = runtime.context.platforms.of(chosen.id).amocrm
    if setup is None:
        raise _fail(f"school '{chosen.id}' has no accounts.amocrm block in {settings.config}")
    tokens = setup.tokens
    if not isinstance(tokens, OAuthTokens):
        raise _fail(f"school '{chosen.id}' uses a long-lived token; there is nothing to connect")
    block = chosen.block("accounts.amocrm")
    if not code:
        url = authorize_url(block["client_id"], token_generator.token_urlsafe(16))
        console.print("1. Open this address, signed in to amoCRM as an administrator:")
        console.print(f"   {url}", markup=False)
        console.print("2. Allow access; copy the `code` parameter of the address you land on.")
        code = typer.prompt("code")
    try:
        pair = tokens.connect(code.strip())
    except Exception as exc:  # a clear line, never a traceback with the code in it
        raise _fail(f"amoCRM refused the code: {exc}") from None
    console.print(
        f"connected: school '{chosen.id}', account '{setup.account}'; the token is valid until "
        f"{pair.expires_at:%Y-%m-%d %H:%M} UTC and is refreshed automatically"
    )


def _telegram(school: str | None) -> tuple[Any, Any, Any]:
    """(settings, runtime, chosen school) for a school with a Telegram bot."""
    settings = _settings()
    runtime = _runtime(settings)
    chosen = runtime.config.school(school) if school else runtime.config.default_school
    if chosen is None:
        raise _fail(f"no school '{school}' in {settings.config}")
    if runtime.context.platforms.of(chosen.id).telegram is None:
        raise _fail(
            f"school '{chosen.id}' has no Telegram bot: add accounts.telegram to "
            f"{settings.config} and set its token (token_env)"
        )
    return settings, runtime, chosen


@telegram_app.command("set-webhook")
def telegram_set_webhook(
    url: Annotated[str, typer.Argument(help="public base URL of this service, https://host")],
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Have Telegram send the bot's updates to <url>/webhooks/telegram with the secret header."""
    from schoolsync.app.platforms import SecretLookup
    from schoolsync.connectors.telegram.config import TelegramAccount

    settings, runtime, chosen = _telegram(school)
    account = TelegramAccount.model_validate(chosen.block("accounts.telegram"))
    secret = SecretLookup(settings, sandbox=runtime.sandbox)(
        account.webhook_secret_env, "accounts.telegram.webhook_secret_env"
    )
    if not secret:
        raise _fail(
            "accounts.telegram.webhook_secret_env names no secret that is set: the webhook "
            "must carry one (any 1-256 characters of A-Z a-z 0-9 _ -)"
        )
    target = url.rstrip("/") + "/webhooks/telegram"
    setup = runtime.context.platforms.of(chosen.id).telegram
    try:
        setup.client.set_webhook(target, secret)
        me = setup.client.get_me()
    except Exception as exc:
        raise _fail(f"Telegram refused: {exc}") from None
    console.print(f"@{me.username}: updates go to {target}", markup=False)


@telegram_app.command("test")
def telegram_test(
    channel: Annotated[str, typer.Argument(help="a channel key from schoolsync.yaml, e.g. sales")],
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Queue a short test message to a channel (a worker delivers it)."""
    import uuid

    from schoolsync.core.errors import ConfigError
    from schoolsync.mappings.notifications import channel_target, render
    from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

    _, runtime, chosen = _telegram(school)
    try:
        channel_target(chosen, channel)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    notice = Notice(
        key=f"channel-test:{channel}:{uuid.uuid4().hex[:8]}",
        kind="channel_test",
        html=render("channel_test", channel=channel),
        channel=channel,
    )
    with runtime.db.write() as conn:
        refs = queue_notices(conn, chosen, [notice])
    runtime.queue.send(refs)
    console.print(f"queued a test message to '{channel}' ({notice.key})", markup=False)


def _school_of(runtime: Any, school: str | None) -> Any:
    chosen = runtime.config.school(school) if school else runtime.config.default_school
    if chosen is None:
        raise _fail(f"no school '{school}' in the config")
    return chosen


@orders_app.command("undo-duplicate")
def orders_undo_duplicate(
    number: Annotated[str, typer.Argument(help="the order marked «Ложный» as a duplicate")],
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Put a duplicate pair back as it was (GetCourse, the CRM, a line in the sales channel)."""
    from schoolsync.core.errors import SchoolsyncError
    from schoolsync.sync_jobs.services.duplicates import undo_duplicate

    settings = _settings()
    runtime = _runtime(settings)
    chosen = _school_of(runtime, school)
    try:
        undo_duplicate(runtime.context, chosen.id, number, who=f"cli:{getpass.getuser()}")
    except SchoolsyncError as exc:
        raise _fail(exc.message) from None
    console.print(f"order {number} and its pair are back as they were", markup=False)


@payments_app.command("import")
def payments_import(
    file: Annotated[Path, typer.Argument(help="a bank statement: 1C exchange file or CSV")],
    fmt: Annotated[
        str, typer.Option("--format", help="1c, csv, or auto (by the file's first line)")
    ] = "auto",
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Import a bank statement's incoming payments (importing it again adds nothing)."""
    from rich.progress import Progress

    from schoolsync.connectors.bankstatements import parse_statement
    from schoolsync.connectors.bankstatements.csvfile import parse_csv
    from schoolsync.connectors.bankstatements.onec import parse_1c
    from schoolsync.core.errors import MalformedInputError
    from schoolsync.sync_jobs.services.manual_payments import import_statement

    if not file.is_file():
        raise _fail(f"{file}: no such file")
    parsers = {"auto": parse_statement, "1c": parse_1c, "csv": parse_csv}
    if fmt not in parsers:
        raise _fail(f"--format {fmt!r}: use 1c, csv or auto")
    parse = parsers[fmt]
    settings = _settings()
    runtime = _runtime(settings)
    chosen = _school_of(runtime, school)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task(f"{file.name}: recording payments", total=None)
            summary = import_statement(
                runtime.context,
                chosen.id,
                file,
                parse,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except MalformedInputError as exc:
        raise _fail(f"{file}: {exc.message}") from None
    console.print(
        f"{file.name}: {summary.read} incoming payments read: {summary.new} new, "
        f"{summary.known} already known; {summary.skipped} outgoing lines skipped; "
        f"{len(summary.problems)} lines not readable",
        markup=False,
    )
    for problem in summary.problems[:50]:
        console.print(f"  line {problem.line_number}: {problem.message}", markup=False)


@payments_app.command("add")
def payments_add(
    amount: Annotated[str, typer.Option(help="amount, e.g. 2500 or 1500.50")],
    payer: Annotated[str, typer.Option(help="who paid, as on the receipt: Демин Саша")],
    method: Annotated[str, typer.Option(help="card_transfer or bank_transfer")] = "card_transfer",
    currency: Annotated[str, typer.Option(help="currency code")] = "RUB",
    order: Annotated[str | None, typer.Option(help="the order number, if known")] = None,
    email: Annotated[str | None, typer.Option(help="the payer's email, if known")] = None,
    phone: Annotated[str | None, typer.Option(help="the payer's phone, if known")] = None,
    comment: Annotated[str | None, typer.Option(help="anything worth keeping")] = None,
    key: Annotated[
        str | None, typer.Option(help="your id for it: the same key twice is one payment")
    ] = None,
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Record a payment a person received (a card or bank transfer) and match it to its order."""
    import uuid
    from decimal import Decimal, InvalidOperation

    from schoolsync.sync_jobs.services.manual_payments import add_manual

    if method not in ("card_transfer", "bank_transfer"):
        raise _fail("--method must be card_transfer or bank_transfer")
    from schoolsync.core.domain import Money

    try:
        value = Decimal(amount.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise _fail(f"--amount {amount!r} is not a number like 2500 or 1500.50") from None
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise _fail(f"--currency {currency!r}: a three-letter code such as RUB")
    try:
        if not value.is_finite() or value <= 0:
            raise ValueError
        Money(amount=value, currency=code).minor  # noqa: B018 - checks the decimals
    except ValueError:
        raise _fail(f"--amount {amount!r}: a positive amount of whole kopecks (cents)") from None
    if key is not None and len(key) > 100:
        raise _fail("--key: at most 100 characters")
    settings = _settings()
    runtime = _runtime(settings)
    chosen = _school_of(runtime, school)
    payment_id = add_manual(
        runtime.context,
        chosen.id,
        key=f"cli:{key or uuid.uuid4().hex}",
        amount=value,
        currency=code,
        payer=payer,
        method=method,
        order=order,
        email=email,
        phone=phone,
        comment=comment,
        entered_by=f"cli:{getpass.getuser()}",
    )
    console.print(f"payment {payment_id} recorded; a worker matches it and posts the finance line")


@reconcile_app.command("run")
def reconcile_run(
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Pair every recent payment with its order now (as the hourly run does) and act on what
    is certain; print what was found."""
    from schoolsync.sync_jobs.services.reconcile import run_reconciliation

    runtime = _runtime(_settings())
    chosen = _school_of(runtime, school)
    summary = run_reconciliation(runtime.context, chosen.id)
    if summary.busy:
        raise _fail("a reconciliation run is under way (the hourly one?); try again in a minute")
    table = Table("verdict", "count")
    for kind, count in summary.verdicts.items():
        table.add_row(kind, str(count))
    console.print(table)
    console.print(
        f"{summary.payments} payments, {summary.orders} orders: {summary.acted} acted on, "
        f"{summary.waiting} waiting for a person (schoolsync reconcile queue)",
        markup=False,
    )


@reconcile_app.command("queue")
def reconcile_queue(
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """What waits for a person: each finding with its payments, candidate orders and why."""
    from schoolsync.core.stores import payments as ledger
    from schoolsync.core.stores import reconcile as findings

    runtime = _runtime(_settings())
    chosen = _school_of(runtime, school)
    with runtime.context.db.read() as conn:
        rows = findings.listing(conn, chosen.id)
        amounts = {
            p: ledger.amount_of(row).display()
            for item in rows
            for p in item["payment_ids"]
            if (row := ledger.get(conn, int(p))) is not None
        }
    if not rows:
        console.print("nothing waits for a person")
        return
    table = Table("id", "verdict", "payments", "orders / candidates", "why")
    for item in rows:
        table.add_row(
            str(item["id"]),
            str(item["kind"]),
            ", ".join(f"{p} ({amounts.get(p, '?')})" for p in item["payment_ids"]),
            ", ".join(item["order_ids"] or item["candidates"]),
            str(item["explanation"]),
        )
    console.print(table)
    console.print(
        "settle one: schoolsync reconcile resolve ID --order N  |  --not-ours", markup=False
    )


@reconcile_app.command("resolve")
def reconcile_resolve(
    item: Annotated[int, typer.Argument(help="the finding's id (schoolsync reconcile queue)")],
    order: Annotated[str | None, typer.Option(help="the order its payment(s) pay")] = None,
    not_ours: Annotated[
        bool, typer.Option("--not-ours", help="the payment is not the school's: leave it out")
    ] = False,
    comment: Annotated[str, typer.Option(help="why, for the record")] = "",
    school: Annotated[str | None, typer.Option(help="school id [default: the first]")] = None,
) -> None:
    """Settle a finding: the payment(s) pay ORDER (matched and settled), or are not ours."""
    from schoolsync.core.errors import SchoolsyncError
    from schoolsync.sync_jobs.services.reconcile import resolve

    if (order is None) == (not not_ours):
        raise _fail("give either --order N or --not-ours")
    runtime = _runtime(_settings())
    chosen = _school_of(runtime, school)
    try:
        said = resolve(
            runtime.context,
            chosen.id,
            item,
            order_number=order,
            not_ours=not_ours,
            who=f"cli:{getpass.getuser()}",
            comment=comment,
        )
    except SchoolsyncError as exc:
        raise _fail(exc.message) from None
    console.print(said, markup=False)


@app.command()
def backfill(
    since: Annotated[str, typer.Option(help="first day to fetch, YYYY-MM-DD")],
    school: Annotated[str | None, typer.Option(help="school id [default: every school]")] = None,
) -> None:
    """Fetch GetCourse orders created since a day and send them through the CRM intake."""
    from datetime import date

    from rich.progress import Progress

    from schoolsync.sync_jobs.services.export_sync import export_sync

    try:
        first_day = date.fromisoformat(since)
    except ValueError:
        raise _fail(f"--since {since!r} is not a date like 2026-11-01") from None
    settings = _settings()
    runtime = _runtime(settings)
    platforms = runtime.context.platforms
    chosen = [school] if school else [s.id for s in runtime.config.schools]
    chosen = [s for s in chosen if platforms.of(s).getcourse is not None]
    if not chosen:
        raise _fail("no school with a GetCourse account (accounts.getcourse) to backfill")
    with Progress(console=console) as progress:
        for school_id in chosen:
            task = progress.add_task(f"{school_id}: waiting for the export", total=None)

            def report(stage: str, done: int, total: int, task: Any = task) -> None:
                if stage == "rows":
                    progress.update(task, description="storing orders", completed=done, total=total)

            try:
                result = export_sync(runtime.context, school_id, since=first_day, progress=report)
            except RetryableError as exc:
                wait = f" in about {exc.retry_after:.0f} s" if exc.retry_after else " later"
                raise _fail(f"{school_id}: {exc.message}; try again{wait}") from None
            progress.update(task, completed=result.rows, total=max(result.rows, 1))
            console.print(
                f"{school_id}: {result.rows} rows, {result.orders} orders, {result.changed} new or "
                f"changed (queued for the CRM), {len(result.problems)} skipped"
            )
            for problem in result.problems[:20]:
                console.print(f"  skipped {problem}", markup=False)


def main() -> None:
    app()
