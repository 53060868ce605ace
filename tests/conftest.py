"""Shared fixtures: a real redis-server and a real PostgreSQL, skipped locally when absent but
failing under CI=true (as dramatiq's own test suite does for its brokers)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn

from schoolsync.core.db import Database
from schoolsync.core.db.migrate import upgrade

# pytest-xdist's workers start with COLUMNS=80 LINES=24, and rich fixes a console's width from
# them when the CLI module is imported: the CLI tests' tables would be cut to 80 columns there
for _fixed in ("COLUMNS", "LINES"):
    os.environ.pop(_fixed, None)

_QUIETED = ("uvicorn.access", "httpx", "alembic")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs the CLI in process configures logging (root handlers, quieter httpx);
    put it back so that the next test's caplog sees what it would alone."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, what: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is required under CI=true")
        pytest.skip(f"{what} is not available here")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server with AOF, that tests can stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(redis.ConnectionError):  # SHUTDOWN drops its connection
                redis.Redis.from_url(self.url).shutdown()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    need(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade(db)
    yield db
    db.dispose()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def postgres_available() -> bool:
    return _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) that tests can stop and start again on
    the same port with its data, run as an unprivileged user when root (``fsync=off``).

    pytest's temp dirs are private to root and initdb refuses root, so the cluster lives in a
    directory of its own (``/tmp/schoolsync-pg-*``) owned by that user; ``destroy`` removes it.
    """

    def __init__(self, *, options: str = "") -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) are not available")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.options = options
        self.base = Path(tempfile.mkdtemp(prefix="schoolsync-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "pg.log"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.base, user)
            self.prefix = ["runuser", "-u", user, "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://schoolsync@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not self.data.exists():
            subprocess.run(
                [
                    *self.prefix,
                    self.initdb,
                    *("-D", str(self.data), "-U", "schoolsync", "--auth=trust", "-E", "UTF8"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.prefix,
                self.pg_ctl,
                *("-D", str(self.data), "-l", str(self.log), "-w", "start"),
                *("-o", f"{options} {self.options}".strip()),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (smart, fast or immediate); nothing if it is not running."""
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self, *, down_s: float = 0.0, mode: str = "fast") -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        """Stop at once and remove the cluster's directory."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (see ``PostgresServer``).

    ``SCHOOLSYNC_TEST_POSTGRES_URL`` points at an existing server instead.
    """
    given = os.environ.get("SCHOOLSYNC_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    need(postgres_available(), "PostgreSQL binaries (initdb, pg_ctl)")
    server = PostgresServer()
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The state store on SQLite and on a real PostgreSQL (fresh schema per test)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        import sqlalchemy as sa

        url = request.getfixturevalue("postgres_url")
        name = f"t{os.getpid()}_{time.monotonic_ns()}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        db = Database(url.rsplit("/", 1)[0] + f"/{name}")
    upgrade(db)
    yield db
    db.dispose()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a background thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
