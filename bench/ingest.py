"""Durable webhook ingest against a bare ASGI endpoint, measured in the same run.

What is measured: requests per second and latency (p50, p99) of ``POST /webhooks/generic`` on
the real web role (verify HMAC -> commit an inbox row and a job row to SQLite -> enqueue to
Redis -> 200), and of a bare ASGI app that only reads the body and answers 200, both under
uvicorn with one process, loaded by the same generator (wrk, 1 thread) with the same settings.
The ratio durable/bare is the figure to compare across machines; absolute numbers move with the
machine and with whatever else it runs. Goal: ratio >= 0.5 with SQLite and durable p99 <= 50 ms.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

SECRET = b"bench-secret"
BIN = Path(sys.executable).parent
BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"accepted"}'})
"""
WRK_SCRIPT = """
local bodies, sigs, i = {}, {}, 0
init = function(args)
  for line in io.lines(args[1]) do
    local sig, body = line:match("^(%x+) (.*)$")
    sigs[#sigs + 1] = sig
    bodies[#bodies + 1] = body
  end
end
request = function()
  i = i + 1
  local k = ((i - 1) % #bodies) + 1
  return wrk.format("POST", "/webhooks/generic",
    {["X-Signature"] = sigs[k], ["Content-Type"] = "application/json"}, bodies[k])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def write_bodies(path: Path, count: int) -> None:
    with path.open("w") as out:
        for n in range(count):
            body = json.dumps(
                {
                    "id": f"bench-{n}",
                    "type": "order.created",
                    "data": {
                        "order": 100000 + n,
                        "product": "Пакет Эконом",
                        "amount": "991.00",
                        "email": f"client{n}@example.com",
                        "phone": "+79230000000",
                    },
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
            out.write(f"{hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()} {body}\n")


def load(port: int, bodies: Path, script: Path, *, seconds: int, connections: int) -> Result:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(bodies),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, non_2xx = (int(x) for x in line.split()[1:])
    return Result(requests, duration_us / 1e6, p50_us / 1000, p99_us / 1000, non_2xx)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        print("needs wrk and redis-server (apt-get install wrk redis-server)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="schoolsync-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    redis_port = free_port()
    try:
        procs.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(work),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        bodies, script = work / "bodies.txt", work / "load.lua"
        write_bodies(bodies, max(60_000, args.seconds * 8_000))
        script.write_text(WRK_SCRIPT)
        (work / "bare_app.py").write_text(BARE_APP)

        bare_port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "uvicorn"),
                    "bare_app:app",
                    "--app-dir",
                    str(work),
                    "--port",
                    str(bare_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ]
            )
        )
        wait_http(f"http://127.0.0.1:{bare_port}/")
        bare = load(bare_port, bodies, script, seconds=args.seconds, connections=args.connections)

        env = {
            **os.environ,
            "SCHOOLSYNC_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SCHOOLSYNC_GENERIC_SECRET": SECRET.decode(),
            "SCHOOLSYNC_DATA_DIR": str(work),
            "SCHOOLSYNC_CONFIG": str(work / "none.yaml"),
            "SCHOOLSYNC_LOG_LEVEL": "WARNING",
            "SCHOOLSYNC_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
        }
        subprocess.run(
            [str(BIN / "schoolsync"), "migrate"], env=env, check=True, capture_output=True
        )
        durable_port = free_port()
        procs.append(
            subprocess.Popen([str(BIN / "schoolsync"), "web", "--port", str(durable_port)], env=env)
        )
        wait_http(f"http://127.0.0.1:{durable_port}/healthz")
        durable = load(
            durable_port, bodies, script, seconds=args.seconds, connections=args.connections
        )

        with sqlite3.connect(work / "bench.db") as conn:
            stored = conn.execute("select count(*) from inbox").fetchone()[0]
        enqueued = redis.Redis(port=redis_port).llen("schoolsync:default")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)

    print(f"load: wrk, 1 thread, {args.connections} connections, {args.seconds} s, loopback")
    print(f"{'endpoint':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, r in (
        ("bare ASGI (read body, 200)", bare),
        ("durable ingest (SQLite + Redis)", durable),
    ):
        print(f"{name:<34}{r.rps:>9.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.non_2xx:>9}")
    ratio = durable.rps / bare.rps
    print(f"ratio durable/bare: {ratio:.2f}")
    ok = durable.requests - durable.non_2xx
    print(
        f"stored rows {stored}, enqueued messages {enqueued}, 2xx answers {ok}"
        f" -> {'consistent' if stored >= ok and enqueued == stored else 'MISMATCH'}"
    )
    if durable.non_2xx:
        print(f"WARNING: {durable.non_2xx} durable requests were not answered 2xx")
    met = ratio >= 0.5 and durable.p99_ms <= 50
    print(f"goal: ratio >= 0.5 and durable p99 <= 50 ms: {'met' if met else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
