"""``schoolsync healthcheck web|worker|scheduler`` (Docker HEALTHCHECK) and the heartbeats the
worker and the scheduler keep for it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from schoolsync.app.cli import app as cli
from schoolsync.core.heartbeat import Heartbeat, age, heartbeat_path, touch, touch_every
from schoolsync.sync_jobs.scheduler import Scheduler
from tests.conftest import RedisServer, free_port, serving

ROLES = ["worker", "scheduler"]


@pytest.fixture
def env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    state = tmp_path / "state.db"
    sqlite3.connect(state).close()
    return {
        "SCHOOLSYNC_CONFIG": str(tmp_path / "missing.yaml"),
        "SCHOOLSYNC_DATA_DIR": str(tmp_path / "var"),
        "SCHOOLSYNC_DATABASE_URL": f"sqlite:///{state}",
        "SCHOOLSYNC_REDIS_URL": redis_server.url,
        "SCHOOLSYNC_SANDBOX": "false",
    }


def healthcheck(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["healthcheck", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # one line: what `docker inspect` shows
    return result.exit_code, lines[0]


def beat(env: dict[str, str], role: str, *, seconds_ago: float = 0) -> Path:
    path = heartbeat_path(Path(env["SCHOOLSYNC_DATA_DIR"]), role)
    touch(path)
    then = time.time() - seconds_ago
    os.utime(path, (then, then))
    return path


@pytest.mark.parametrize("role", ROLES)
def test_fresh_heartbeat_and_answering_stores_are_healthy(env: dict[str, str], role: str) -> None:
    beat(env, role, seconds_ago=5)
    code, line = healthcheck(env, role)
    assert code == 0, line
    assert line == f"ok: {role}: heartbeat 5 s old, database and redis answer"


@pytest.mark.parametrize("role", ROLES)
def test_stale_heartbeat_is_unhealthy_with_its_age(env: dict[str, str], role: str) -> None:
    beat(env, role, seconds_ago=120)
    code, line = healthcheck(env, role)
    assert code == 1
    assert line == f"unhealthy: {role}: heartbeat is 120 s old (limit 60 s)"


def test_max_age_can_be_given(env: dict[str, str]) -> None:
    beat(env, "worker", seconds_ago=120)
    assert healthcheck(env, "worker", "--max-age", "300")[0] == 0


def test_no_heartbeat_yet_is_unhealthy(env: dict[str, str]) -> None:
    code, line = healthcheck(env, "scheduler")
    assert code == 1
    assert "scheduler: no heartbeat yet" in line


@pytest.mark.parametrize("role", ROLES)
def test_unreachable_database_is_unhealthy_without_its_password(
    env: dict[str, str], role: str
) -> None:
    beat(env, role)
    env["SCHOOLSYNC_DATABASE_URL"] = (
        f"postgresql+psycopg://schoolsync:hunter2-secret@127.0.0.1:{free_port()}/schoolsync"
    )
    code, line = healthcheck(env, role)
    assert code == 1
    assert line == "unhealthy: database: unavailable (OperationalError)"


def test_unreachable_redis_is_unhealthy(env: dict[str, str]) -> None:
    beat(env, "worker")
    env["SCHOOLSYNC_REDIS_URL"] = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    code, line = healthcheck(env, "worker")
    assert code == 1
    assert line == "unhealthy: redis: unavailable (ConnectionError)"


def test_every_problem_is_on_the_one_line(env: dict[str, str]) -> None:
    env["SCHOOLSYNC_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env["SCHOOLSYNC_DATABASE_URL"] = f"sqlite:///{env['SCHOOLSYNC_DATA_DIR']}/none.db"
    code, line = healthcheck(env, "worker")
    assert code == 1
    assert line.startswith("unhealthy: worker: no heartbeat yet")
    assert "database: no SQLite file yet" in line
    assert "redis: unavailable (ConnectionError)" in line
    assert not Path(env["SCHOOLSYNC_DATA_DIR"], "none.db").exists()  # the check created nothing


def test_invalid_settings_name_the_field_not_the_value(env: dict[str, str]) -> None:
    env["SCHOOLSYNC_ADMIN_TOKENS__ANNA__TOKEN"] = "short-s3cret"
    code, line = healthcheck(env, "worker")
    assert code == 1
    assert "admin_tokens.anna.token" in line
    assert "short-s3cret" not in line


def readiness_app(status: int) -> FastAPI:
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = {"database": "ok", "migrations": "ok", "redis": "ok"}
        if status != 200:
            checks["redis"] = "unavailable: ConnectionError"
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

    return app


def test_web_is_healthy_when_readyz_answers_200(env: dict[str, str]) -> None:
    with serving(readiness_app(200)) as base:
        code, line = healthcheck(env, "web", "--port", base.rsplit(":", 1)[1])
    assert (code, line) == (0, "ok: web: /readyz answered 200")


def test_web_not_ready_says_which_check_failed(env: dict[str, str]) -> None:
    with serving(readiness_app(503)) as base:
        code, line = healthcheck(env, "web", "--port", base.rsplit(":", 1)[1])
    assert code == 1
    assert line == "unhealthy: web: /readyz answered 503 (redis unavailable: ConnectionError)"


def test_web_not_listening_is_unhealthy(env: dict[str, str]) -> None:
    env["SCHOOLSYNC_PORT"] = str(free_port())  # the port comes from the settings by default
    code, line = healthcheck(env, "web")
    assert code == 1
    assert line == "unhealthy: web: /readyz unreachable (ConnectionRefusedError)"


# --- the heartbeats -------------------------------------------------------------------------


def test_age_is_none_before_the_first_beat_then_seconds(tmp_path: Path) -> None:
    path = heartbeat_path(tmp_path, "worker")
    assert path == tmp_path / "health" / "worker"
    assert age(path) is None
    touch(path)
    seconds = age(path)
    assert seconds is not None and 0 <= seconds < 5
    assert age(path, now=path.stat().st_mtime + 42) == 42


def test_heartbeat_touches_at_most_every_so_often(tmp_path: Path) -> None:
    path = tmp_path / "health" / "scheduler"
    heartbeat = Heartbeat(path, every_s=3600)
    heartbeat.beat()
    os.utime(path, (1_000_000, 1_000_000))
    heartbeat.beat()  # called every loop: not due again for an hour
    assert path.stat().st_mtime == 1_000_000
    Heartbeat(path, every_s=0).beat()
    assert age(path) is not None and age(path) < 5  # type: ignore[operator]


def test_a_heartbeat_that_cannot_be_written_never_stops_the_role(tmp_path: Path) -> None:
    (tmp_path / "health").write_text("a file where the directory should be")
    heartbeat = Heartbeat(tmp_path / "health" / "worker", every_s=0)
    heartbeat.beat()
    heartbeat.beat()  # logged once, raised never


def test_touch_every_beats_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "health" / "worker"
    stop = threading.Event()
    thread = threading.Thread(target=touch_every, args=(path, 0.05, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.utime(path, (1_000_000, 1_000_000))
    while path.stat().st_mtime == 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_mtime > 1_000_000  # touched again
    stop.set()
    thread.join(2)
    assert not thread.is_alive()


class NoQueue:
    def send(self, refs: list[object]) -> None:
        assert refs == []


def test_scheduler_loop_beats_before_every_tick() -> None:
    stop = threading.Event()
    ticks: list[float] = []

    def on_tick() -> None:
        ticks.append(time.monotonic())
        if len(ticks) == 3:
            stop.set()

    scheduler = Scheduler(db=None, queue=NoQueue(), schedule=[])  # type: ignore[arg-type]
    scheduler.run_forever(stop, interval_s=0.01, on_tick=on_tick)
    assert len(ticks) == 3


def role_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "SCHOOLSYNC_LOG_FORMAT": "json"}


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"no heartbeat at {path}: {output[-2000:]}")
        time.sleep(0.05)


def test_the_worker_and_scheduler_roles_beat(env: dict[str, str], sqlite_db: object) -> None:
    env["SCHOOLSYNC_DATABASE_URL"] = str(sqlite_db.url)  # type: ignore[attr-defined]
    data_dir = Path(env["SCHOOLSYNC_DATA_DIR"])
    roles = {
        # what dramatiq does in each worker process: import the boot module
        "worker": [sys.executable, "-c", "import time, schoolsync.app.worker_boot; time.sleep(30)"],
        "scheduler": [sys.executable, "-m", "schoolsync", "scheduler"],
    }
    processes = {
        role: subprocess.Popen(
            argv, env=role_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for role, argv in roles.items()
    }
    try:
        for role, process in processes.items():
            wait_for(heartbeat_path(data_dir, role), process)
            assert healthcheck(env, role)[0] == 0
    finally:
        processes["worker"].kill()
        processes["scheduler"].send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(10)
    assert processes["scheduler"].returncode == 0  # it stops cleanly on SIGTERM
