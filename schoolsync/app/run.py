"""``schoolsync run``: web, worker and scheduler on one machine, plus a private Redis if none
is configured. Children that die are restarted; Ctrl-C stops them in order, Redis last."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from schoolsync.app.platforms import SANDBOX_SECRETS, sandbox_key_file
from schoolsync.app.redis_embedded import EmbeddedRedis
from schoolsync.connectors.getcourse.callbacks import callback_url
from schoolsync.core.config import AppConfig
from schoolsync.core.logging import get_logger
from schoolsync.core.settings import Settings

log = get_logger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(
        self, children: list[Child], env: dict[str, str], *, stop_timeout_s: float
    ) -> None:
        self.children = children
        self.env = env
        self.stop_timeout_s = stop_timeout_s
        self.stopping = threading.Event()

    def _spawn(self, child: Child) -> None:
        # own session: a Ctrl-C reaches only us, and we stop the children in order
        child.process = subprocess.Popen(child.argv, env=self.env, start_new_session=True)
        log.info("started", role=child.name, pid=child.process.pid)

    def run(self) -> int:
        for child in self.children:
            self._spawn(child)
        while not self.stopping.wait(0.5):
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is None or self.stopping.is_set():
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                delay = min(2 ** (len(child.restarts) - 1), 30)
                log.warning("role exited; restarting", role=child.name, code=code, in_seconds=delay)
                if self.stopping.wait(delay):
                    break
                self._spawn(child)
        return 0

    def stop(self) -> None:
        self.stopping.set()
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("role did not stop in time; killing", role=child.name)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            log.info("stopped", role=child.name)


def wants_sandbox(settings: Settings, config: AppConfig) -> bool:
    """The sandboxes run when asked, or by default when no school has a platform account."""
    if settings.sandbox is not None:
        return settings.sandbox
    return not any(
        school.block("accounts.getcourse") or school.block("accounts.amocrm")
        for school in config.schools
    )


def run_all(settings: Settings, config: AppConfig, *, host: str, port: int) -> int:
    embedded: EmbeddedRedis | None = None
    env = dict(os.environ)
    env["SCHOOLSYNC_DATA_DIR"] = str(settings.data_dir)
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir)
        env["SCHOOLSYNC_REDIS_URL"] = embedded.start()
    me = [sys.executable, "-m", "schoolsync"]
    children = [
        Child("web", [*me, "web", "--host", host, "--port", str(port)]),
        Child("worker", [*me, "worker"]),
        Child("scheduler", [*me, "scheduler"]),
    ]
    sandbox = wants_sandbox(settings, config)
    env["SCHOOLSYNC_SANDBOX"] = "true" if sandbox else "false"
    if sandbox:
        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a comparison)
        webhooks = f"http://{local}:{port}/webhooks"
        children.insert(
            0,
            Child(
                "sandbox",
                [
                    *me,
                    "sandbox",
                    "--port",
                    str(settings.sandbox_port),
                    "--getcourse-callback",
                    callback_url(
                        f"{webhooks}/getcourse", SANDBOX_SECRETS["sandbox_getcourse_callback"]
                    ),
                    "--amocrm-webhook",
                    f"{webhooks}/amocrm?secret={SANDBOX_SECRETS['sandbox_amocrm_webhook']}",
                    "--telegram-webhook",
                    f"{webhooks}/telegram",
                    "--sheets-key-file",
                    str(sandbox_key_file(settings.data_dir)),
                    "--yookassa-webhook",
                    f"{webhooks}/yookassa",
                    "--robokassa-result",
                    f"{webhooks}/robokassa",
                    "--paypal-webhook",
                    f"{webhooks}/paypal",
                ],
            ),
        )
    supervisor = Supervisor(
        children,
        env,
        stop_timeout_s=settings.worker.shutdown_timeout_ms / 1000 + 5,
    )

    def on_signal(_signum: int, _frame: object) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    base = f"http://{host}:{port}"
    print(
        f"\nschoolsync is starting (single host: SQLite + {'embedded ' if embedded else ''}Redis)\n"
        f"  webhooks   {base}/webhooks/<source>\n"
        f"  API docs   {base}/docs\n"
        f"  health     {base}/healthz   {base}/readyz   metrics {base}/metrics\n"
        f"  failures   schoolsync failures list\n"
        f"  data       {settings.data_dir.resolve()}\n"
        + (
            f"  sandboxes  http://127.0.0.1:{settings.sandbox_port}/ (getcourse, amocrm, telegram, "
            "sheets)\n"
            f"             "
            f"(try: curl -X POST http://127.0.0.1:{settings.sandbox_port}/getcourse/_sandbox/orders "
            """-d '{"count": 5}')\n"""
            if sandbox
            else ""
        )
        + "Press Ctrl-C to stop.\n",
        flush=True,
    )
    try:
        supervisor.run()
    finally:
        supervisor.stop()
        if embedded is not None:
            embedded.stop()
    return 0
