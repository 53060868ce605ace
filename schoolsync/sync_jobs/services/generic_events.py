"""Process a generic event: record its effect exactly once and mark the inbox row processed.

With ``test_hooks`` on (the test suite only), events of type ``test.sleep`` / ``test.crash`` /
``test.fail`` sleep, kill their worker, or fail permanently until a named file exists, and every
effect is also appended to ``<data_dir>/test-effects.log`` so that tests can count executions.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from schoolsync.connectors.generic.webhooks import parse
from schoolsync.core.errors import UnmappableError
from schoolsync.core.stores import effects, inbox
from schoolsync.mappings.generic import to_command
from schoolsync.sync_jobs.context import JobContext


def process_generic_event(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    assert row is not None
    event = parse(bytes(row["body"]))
    command = to_command(event, school=row["school"])
    if ctx.test_hooks:
        _test_behaviour(ctx, event.type, event.data)
    with ctx.db.write() as conn:
        if not effects.exists(conn, command.effect_key):
            if ctx.test_hooks:
                with (ctx.data_dir / "test-effects.log").open("a") as sink:
                    sink.write(f"{command.event_id}\n")
            effects.record(
                conn,
                school=command.school,
                key=command.effect_key,
                job_id=job_id,
                detail={"type": command.event_type, "event_id": command.event_id},
            )
        inbox.mark_processed(conn, inbox_id)


def _test_behaviour(ctx: JobContext, event_type: str, data: dict[str, object]) -> None:
    if event_type == "test.sleep":
        time.sleep(float(str(data.get("seconds", 1))))
    elif event_type == "test.crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif event_type == "test.fail":
        until = Path(str(data.get("until_file", "")))
        if not until.exists():
            raise UnmappableError(f"test.fail: {until.name} does not exist yet")
