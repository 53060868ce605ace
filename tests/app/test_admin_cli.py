"""W14 on the command line: ``schoolsync failures list|groups|show|replay|resolve|ignore|
bulk-status|bulk-cancel`` and ``schoolsync inbox list|show|replay``, in process over a real
SQLite file and Redis; personal data and secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from schoolsync.app.bootstrap import Runtime, build_runtime
from schoolsync.app.cli import app as cli
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.db.tables import failures
from schoolsync.core.settings import Settings
from schoolsync.core.stores import inbox, jobs
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.sync_jobs.services.bulk_replay import run_bulk_replay
from tests.conftest import RedisServer

EMAIL = "maria.petrova@example.org"


@pytest.fixture
def env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    config = tmp_path / "schoolsync.yaml"
    config.write_text("name: Школа\n", encoding="utf-8")
    return {
        "SCHOOLSYNC_CONFIG": str(config),
        "SCHOOLSYNC_DATA_DIR": str(tmp_path),
        "SCHOOLSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "SCHOOLSYNC_REDIS_URL": redis_server.url,
        "SCHOOLSYNC_SANDBOX": "false",
        "SCHOOLSYNC_LOG_FORMAT": "console",
        "COLUMNS": "250",
    }


@pytest.fixture
def runtime(env: dict[str, str]) -> Runtime:
    settings = Settings(
        config=Path(env["SCHOOLSYNC_CONFIG"]),
        data_dir=Path(env["SCHOOLSYNC_DATA_DIR"]),
        database_url=env["SCHOOLSYNC_DATABASE_URL"],
        redis_url=env["SCHOOLSYNC_REDIS_URL"],
        sandbox=False,
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db)
    with runtime.db.write() as conn:
        for number, message in (
            ("1001", "order 1001: product 'Пакет VIP' is unknown"),
            ("1002", "order 1002: product 'Пакет VIP' is unknown"),
            ("1003", f"order 1003: manager '{EMAIL}' has no amoCRM user"),
        ):
            jobs.fail_as_job(
                conn,
                school="default",
                actor="resend_order_to_crm",
                args={
                    "school": "default",
                    "platform": "getcourse",
                    "account": "gc",
                    "number": number,
                },
                key=f"crm-order:{number}",
                error_class="UnmappableError",
                error=message,
            )
        inbox.insert(
            conn,
            InboxRecord(
                school="default",
                source="getcourse",
                dedup_key="gc:1",
                body=f"email={EMAIL}".encode(),
                query="secret=s3cr3t-value&id=1",
                status=inbox.REJECTED,
                reject_reason="wrong secret",
            ),
        )
    return runtime


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def statuses(runtime: Runtime) -> list[str]:
    with runtime.db.read() as conn:
        return list(conn.execute(sa.select(failures.c.status).order_by(failures.c.id)).scalars())


def test_list_filter_group_and_show_masked(env: dict[str, str], runtime: Runtime) -> None:
    code, out = run(env, "failures", "list")
    assert code == 0, out
    assert "amocrm" in out and "resend_order_to_crm" in out
    assert EMAIL not in out and "m***@example.org" in out
    assert run(env, "failures", "list", "--entity", "1002")[1].count("resend_order_to_crm") == 1
    assert "no open failures" in run(env, "failures", "list", "--class", "AuthError")[1]
    assert "no open failures" in run(env, "failures", "list", "--since", "2100-01-01")[1]
    code, out = run(env, "failures", "list", "--since", "yesterday")
    assert code == 1 and "not a time" in out

    code, out = run(env, "failures", "groups")
    assert code == 0 and "product 'Пакет VIP' is unknown" in out
    assert out.index("2 ") < out.index("1 ")  # the bigger group first

    code, out = run(env, "failures", "show", "3")
    assert code == 0, out
    assert "resend_order_to_crm" in out and '"number": "1003"' in out
    assert EMAIL not in out
    code, out = run(env, "failures", "show", "99")
    assert code == 1 and "failure 99 does not exist" in out


def test_resolve_ignore_replay_one_and_in_bulk(env: dict[str, str], runtime: Runtime) -> None:
    code, out = run(env, "failures", "resolve", "1", "--comment", "lead made by hand")
    assert code == 0 and "failure 1: resolved" in out
    code, out = run(env, "failures", "resolve", "1")
    assert code == 1 and "failure 1 is resolved, not open" in out
    assert run(env, "failures", "ignore", "2", "--comment", "test order")[0] == 0
    code, out = run(env, "failures", "show", "1")
    assert "resolve -> succeeded (lead made by hand)" in out and "cli:" in out

    code, out = run(env, "failures", "replay", "3", "--wait", "0")
    assert code == 0 and "failure 3: job 3 queued again" in out
    assert statuses(runtime) == ["resolved", "ignored", "replaying"]
    code, out = run(env, "failures", "replay", "3", "--actor", "x")
    assert code == 1 and "not both" in out


def test_bulk_replay_dry_run_progress_and_nothing_the_second_time(
    env: dict[str, str], runtime: Runtime
) -> None:
    code, out = run(env, "failures", "replay", "--filter", "class=UnmappableError", "--dry-run")
    assert code == 0, out
    assert "3 failures: 3 would do nothing: the school has no amoCRM account or mapping" in out
    assert statuses(runtime) == ["open"] * 3
    code, out = run(env, "failures", "replay", "--filter", "nonsense")
    assert code == 1 and "KEY=VALUE" in out

    code, out = run(env, "failures", "replay", "--class", "UnmappableError", "--yes", "--wait", "0")
    assert code == 0, out
    assert "bulk replay 1: 3 failures to queue again" in out
    run_bulk_replay(runtime.context, 1)  # what a worker does
    code, out = run(env, "failures", "bulk-status", "1")
    assert code == 0 and "done; 3 queued again, 0 skipped of 3" in out
    assert statuses(runtime) == ["replaying"] * 3
    assert "nothing to cancel" in run(env, "failures", "bulk-cancel", "1")[1]
    assert run(env, "failures", "bulk-status", "9")[0] == 1

    code, out = run(env, "failures", "replay", "--class", "UnmappableError", "--yes")
    assert code == 0 and "no open failure matches: nothing would run" in out


def test_inbox_list_show_and_replay(env: dict[str, str], runtime: Runtime) -> None:
    code, out = run(env, "inbox", "list", "--status", "rejected")
    assert code == 0 and "wrong secret" in out
    code, out = run(env, "inbox", "show", "1")
    assert code == 0, out
    assert "s3cr3t-value" not in out and EMAIL not in out and "secret=***" in out
    code, out = run(env, "inbox", "replay", "1", "--wait", "0")
    assert code == 1 and "was rejected (wrong secret)" in out
    assert run(env, "inbox", "show", "7")[0] == 1
