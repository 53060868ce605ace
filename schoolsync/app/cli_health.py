"""``schoolsync healthcheck web|worker|scheduler``: exit 0 when the role in this container is
healthy, 1 otherwise, with one line saying why (what ``docker inspect`` shows).

- web: ``GET http://127.0.0.1:<port>/readyz`` answers 200 (database, migrations and Redis fine);
- worker, scheduler: the role's heartbeat file (``<data_dir>/health/<role>``, touched every
  10 s) is younger than 60 s, and the database and Redis answer.

Reasons name the part that failed and the error's class, never a URL, password or token.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from schoolsync.core.heartbeat import MAX_AGE_S, age, heartbeat_path
from schoolsync.core.settings import Settings

health_app = typer.Typer(
    help="Exit 0 if this container's role is healthy, 1 with the reason (for Docker HEALTHCHECK).",
    no_args_is_help=True,
)

TIMEOUT_S = 5.0
"""Each check gives up after this long (a database that does not answer is not healthy)."""

MaxAge = Annotated[float, typer.Option(help="seconds after which the heartbeat counts as stale")]


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # the field names only: a rejected value may be a token
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()}))
        _report([f"settings: invalid SCHOOLSYNC_* value for {fields}"])


def _report(problems: list[str], ok: str = "") -> NoReturn:
    if problems:
        typer.echo("unhealthy: " + "; ".join(problems))
        raise typer.Exit(1)
    typer.echo(f"ok: {ok}")
    raise typer.Exit(0)


def _within(check: Callable[[], None], what: str) -> str | None:
    """Run ``check`` in a daemon thread; a problem line, or None when it passed in time."""
    outcome: list[str | None] = []

    def run() -> None:
        try:
            check()
            outcome.append(None)
        except Exception as exc:
            outcome.append(f"{what}: unavailable ({type(exc).__name__})")

    thread = threading.Thread(target=run, name=f"healthcheck-{what}", daemon=True)
    thread.start()
    thread.join(TIMEOUT_S)
    if not outcome:
        return f"{what}: no answer within {TIMEOUT_S:.0f} s"
    return outcome[0]


def _database_problem(settings: Settings) -> str | None:
    from sqlalchemy.engine import make_url

    from schoolsync.core.db import Database

    url = make_url(settings.effective_database_url)
    local = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if local and not Path(str(url.database)).exists():  # connecting would create an empty file
        return "database: no SQLite file yet (run `schoolsync migrate`)"

    def ping() -> None:
        db = Database(settings.effective_database_url)
        try:
            db.ping()
        finally:
            db.dispose()

    return _within(ping, "database")


def _redis_problem(settings: Settings) -> str | None:
    import redis

    from schoolsync.app.redis_embedded import embedded_url_file

    # as bootstrap.redis_url, without importing every service (a health check runs every 30 s)
    url = settings.redis_url
    if not url and embedded_url_file(settings.data_dir).exists():
        url = embedded_url_file(settings.data_dir).read_text().strip()
    if not url:
        return "redis: SCHOOLSYNC_REDIS_URL is not set"

    def ping() -> None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()

    return _within(ping, "redis")


def _background_role(role: str, max_age_s: float) -> None:
    settings = _settings()
    problems: list[str] = []
    seconds = age(heartbeat_path(settings.data_dir, role))
    if seconds is None:
        problems.append(f"{role}: no heartbeat yet (is the {role} running?)")
    elif seconds > max_age_s:
        problems.append(f"{role}: heartbeat is {seconds:.0f} s old (limit {max_age_s:.0f} s)")
    for problem in (_database_problem(settings), _redis_problem(settings)):
        if problem:
            problems.append(problem)
    beat = f"heartbeat {seconds:.0f} s old" if seconds is not None else ""
    _report(problems, ok=f"{role}: {beat}, database and redis answer")


@health_app.command("worker")
def worker(max_age: MaxAge = MAX_AGE_S) -> None:
    """A worker process beat in the last minute; the database and Redis answer."""
    _background_role("worker", max_age)


@health_app.command("scheduler")
def scheduler(max_age: MaxAge = MAX_AGE_S) -> None:
    """The scheduler's loop beat in the last minute; the database and Redis answer."""
    _background_role("scheduler", max_age)


@health_app.command("web")
def web(
    port: Annotated[
        int | None, typer.Option(help="the web role's port [default: $SCHOOLSYNC_PORT or 8000]")
    ] = None,
) -> None:
    """GET http://127.0.0.1:PORT/readyz answers 200 (database, migrations, Redis)."""
    url = f"http://127.0.0.1:{port or _settings().port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        _report([f"web: /readyz answered {exc.code}{_not_ready(exc)}"])
    except urllib.error.URLError as exc:  # connection refused, unknown host
        _report([f"web: /readyz unreachable ({type(exc.reason).__name__})"])
    except OSError as exc:  # a timeout, a connection reset
        _report([f"web: /readyz unreachable ({type(exc).__name__})"])
    if status != 200:
        _report([f"web: /readyz answered {status}"])
    _report([], ok="web: /readyz answered 200")


def _not_ready(exc: urllib.error.HTTPError) -> str:
    """The checks that failed, from /readyz's JSON body (``{"checks": {"redis": "..."}}``)."""
    try:
        checks = json.loads(exc.read(4096)).get("checks", {})
    except (ValueError, OSError, AttributeError):
        return ""
    failed = [f"{name} {value}" for name, value in checks.items() if value != "ok"]
    return f" ({', '.join(failed)})" if failed else ""
