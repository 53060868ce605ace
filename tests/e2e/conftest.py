"""Harness: the whole service (`schoolsync run`) as a subprocess on a temp dir, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import sqlalchemy as sa

from schoolsync.connectors.generic.webhooks import sign
from schoolsync.core.db import Database
from tests.conftest import free_port, need

SECRET = b"e2e-secret"


class Service:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "service.log"
        self.db = Database(f"sqlite:///{directory / 'var' / 'schoolsync.db'}")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    @property
    def effects_log(self) -> Path:
        return self.directory / "var" / "test-effects.log"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "schoolsync", "run", "--port", str(self.port)],
                cwd=self.directory,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(self._ready, timeout=60, what="the service to become ready")

    def _ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200 and bool(self.worker_processes())
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    child.kill()
                self.process.kill()
        self.http.close()
        self.db.dispose()

    def worker_processes(self) -> list[psutil.Process]:
        assert self.process is not None
        return [
            p
            for p in psutil.Process(self.process.pid).children(recursive=True)
            if "dramatiq" in " ".join(p.cmdline())
        ]

    def post(self, event: dict[str, Any], *, secret: bytes = SECRET) -> httpx.Response:
        body = json.dumps(event).encode()
        return self.http.post(
            "/webhooks/generic", content=body, headers={"X-Signature": sign(secret, body)}
        )

    def effects(self) -> Counter[str]:
        if not self.effects_log.exists():
            return Counter()
        return Counter(self.effects_log.read_text().split())

    def query(self, sql: str, **params: Any) -> list[sa.RowMapping]:
        with self.db.read() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "schoolsync", *args],
            cwd=self.directory,
            env={**self.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def wait_for(self, condition: Callable[[], bool], *, timeout: float, what: str) -> float:
        """Poll ``condition``; return the seconds it took, or fail naming ``what``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if condition():
                return time.monotonic() - started
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(
                    f"the service exited while waiting for {what}:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        pytest.fail(
            f"timed out after {timeout}s waiting for {what}:\n{self.log.read_text()[-3000:]}"
        )


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    import shutil

    need(shutil.which("redis-server") is not None, "redis-server")
    started: list[Service] = []

    def make(**overrides: str) -> Service:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLSYNC_")}
        env.update(
            SCHOOLSYNC_GENERIC_SECRET=SECRET.decode(),
            SCHOOLSYNC_TEST_HOOKS="true",
            SCHOOLSYNC_LOG_FORMAT="json",
            SCHOOLSYNC_CONFIG=str(tmp_path / "schoolsync.yaml"),
            SCHOOLSYNC_JOBS__RELAY_EVERY_S="2",
            SCHOOLSYNC_JOBS__ENQUEUE_GRACE_S="1",
            SCHOOLSYNC_WORKER__PROCESSES="2",
            SCHOOLSYNC_WORKER__THREADS="8",
            SCHOOLSYNC_SANDBOX="false",
        )
        env.update(overrides)
        service = Service(tmp_path, env)
        started.append(service)
        service.start()
        return service

    yield make
    for service in started:
        service.stop()
