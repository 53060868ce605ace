"""``schoolsync report``: the W12 daily and weekly reports for any past period.

The same work as the scheduled job (``sync_jobs.services.reports.run_report``): the sheet row is
written (updated if there), the digest goes to the channel once per period, the weekly chart
once per week. A rerun is safe.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console

from schoolsync.core.config import ConfigFileError
from schoolsync.core.errors import ConfigError, SchoolsyncError
from schoolsync.core.logging import configure_logging
from schoolsync.core.settings import Settings

report_app = typer.Typer(
    help="Reports (W12): a day's or an ISO week's numbers to the sheet and the channel.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

School = Annotated[str | None, typer.Option(help="school id [default: the first]")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
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


def _run(kind: str, value: str, school: str | None) -> None:
    from schoolsync.mappings.reports import day_period, week_period
    from schoolsync.sync_jobs.services.reports import run_report

    runtime = _runtime()
    chosen = runtime.config.school(school) if school else runtime.config.default_school
    if chosen is None:
        raise _fail(f"no school '{school}' in the config")
    try:
        if kind == "daily":
            period = day_period(date.fromisoformat(value), chosen.tz)
        else:
            period = week_period(value, chosen.tz)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        outcome = run_report(runtime.context, chosen.id, period)
    except SchoolsyncError as exc:
        raise _fail(exc.message) from None
    console.print(outcome.digest, markup=False, highlight=False)
    where = f"sheet row {outcome.sheet_row}" if outcome.sheet_row else "no sheet configured"
    digest = "digest queued" if outcome.digest_queued else "digest already sent or no channel"
    photo = ", chart sent" if outcome.photo_sent else ""
    console.print(f"{period.key}: {where}; {digest}{photo}", markup=False, highlight=False)


@report_app.command("daily")
def report_daily(
    day: Annotated[str, typer.Option("--date", help="the day, YYYY-MM-DD (school time)")],
    school: School = None,
) -> None:
    """One day's report: yesterday's numbers as the morning job writes them."""
    _run("daily", day, school)


@report_app.command("weekly")
def report_weekly(
    week: Annotated[str, typer.Option(help="the ISO week, like 2026-W47")],
    school: School = None,
) -> None:
    """One ISO week's report, with its chart."""
    _run("weekly", week, school)
