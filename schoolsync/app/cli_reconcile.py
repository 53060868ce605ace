"""``schoolsync reconcile``: the reconciliation engine from the command line.

``file`` is the offline mode for a school's accountant (and for tests): two CSV files in, one
out, no database, no configuration needed. Reading, parsing and writing are here; matching is
``schoolsync.reconciliation`` (pure).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from schoolsync.reconciliation.engine import reconcile
from schoolsync.reconciliation.models import VerdictKind
from schoolsync.reconciliation.offline import (
    BadFile,
    Parsed,
    Problem,
    parse_orders,
    parse_payments,
    write_result,
)
from schoolsync.reconciliation.rules import ReconcileRules

PROGRESS_FROM_BYTES = 1 << 20  # a bar for inputs from 1 MiB on (about 5,000 rows)
PROBLEMS_SHOWN = 50

reconcile_app = typer.Typer(
    help="Match payments to orders: verdicts, ambiguities, doubles.", no_args_is_help=True
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@reconcile_app.callback()
def reconcile_group() -> None:
    """Match payments to orders: verdicts, ambiguities, doubles."""


@reconcile_app.command("file")
def reconcile_file(
    orders: Annotated[Path, typer.Option(help="orders CSV", exists=True, dir_okay=False)],
    payments: Annotated[Path, typer.Option(help="payments CSV", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="where to write the result CSV", dir_okay=False)],
    now: Annotated[
        str | None, typer.Option(help="reconcile as of this ISO 8601 time [default: now]")
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="timezone of times written without an offset")
    ] = "Europe/Moscow",
    rules: Annotated[
        Path | None,
        typer.Option(
            help="YAML with the rules (a school config, or its rules.reconciliation block)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Reconcile payments.csv against orders.csv into out.csv (one row per payment, plus
    orders marked paid with no money). Bad rows are reported with their line and skipped."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"unknown timezone {timezone!r}") from None
    as_of = _as_of(now, tz)
    settings = _rules(rules)
    large = orders.stat().st_size + payments.stat().st_size >= PROGRESS_FROM_BYTES
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not large,
    )
    with progress:
        parsed_orders = _read(orders, progress, lambda lines: parse_orders(lines, tz=tz))
        parsed_payments = _read(payments, progress, lambda lines: parse_payments(lines, tz=tz))
    _report(orders, parsed_orders.problems)
    _report(payments, parsed_payments.problems)
    with err_console.status("reconciling", spinner="dots"):
        result = reconcile(parsed_orders.rows, parsed_payments.rows, settings, as_of)
    with out.open("w", encoding="utf-8", newline="") as sink:
        rows = write_result(result, sink)
    _summary(result.counts(), rows, out)


def _as_of(text: str | None, tz: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _fail("--now is not an ISO 8601 time") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _rules(path: Path | None) -> ReconcileRules:
    if path is None:
        return ReconcileRules()
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise _fail(f"{path.name} is not readable YAML") from None
    for key in ("rules", "reconciliation"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    try:
        return ReconcileRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'rules'}: {error['msg']}"
            for error in exc.errors()
        )
        raise _fail(f"{path.name}: {problems}") from None


def _read(path: Path, progress: Progress, parse: Any) -> Parsed[Any]:
    task = progress.add_task(f"reading {path.name}", total=path.stat().st_size)
    unreadable: list[Problem] = []
    with path.open("rb") as raw:
        try:
            parsed: Parsed[Any] = parse(_lines(raw, progress, task, unreadable))
        except BadFile as exc:
            raise _fail(f"{path.name}: {exc}") from None
        except csv.Error:
            raise _fail(f"{path.name}: not a CSV file") from None
    parsed.problems.extend(unreadable)
    parsed.problems.sort(key=lambda problem: problem.line)
    return parsed


def _lines(raw: Any, progress: Progress, task: Any, unreadable: list[Problem]) -> Iterator[str]:
    """Text lines of a binary file, the bar advanced by bytes; a line that is not UTF-8 text
    (or holds a NUL, which stops Python's csv reader) is given to the parser as an empty line,
    so skipped, and reported."""
    for number, chunk in enumerate(raw, start=1):
        progress.advance(task, len(chunk))
        try:
            text = chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            unreadable.append(Problem(number, "not UTF-8 text"))
            text = "\n"
        if "\x00" in text:
            unreadable.append(Problem(number, "a NUL character"))
            text = "\n"
        yield text


def _report(path: Path, problems: list[Problem]) -> None:
    for problem in problems[:PROBLEMS_SHOWN]:
        err_console.print(
            f"[yellow]{escape(path.name)} line {problem.line}:[/yellow] {problem.reason}; skipped",
            highlight=False,
        )
    if len(problems) > PROBLEMS_SHOWN:
        more = len(problems) - PROBLEMS_SHOWN
        err_console.print(f"{escape(path.name)}: {more} more bad rows skipped", highlight=False)


def _summary(counts: dict[VerdictKind, int], rows: int, out: Path) -> None:
    table = Table(title=f"{rows} rows written to {out.name}")
    table.add_column("verdict")
    table.add_column("count", justify="right")
    for kind in VerdictKind:
        if counts.get(kind):
            table.add_row(kind.value, str(counts[kind]))
    out_console.print(table)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(1)
