"""Durable webhook ingest against a bare ASGI endpoint, measured in the same run.

What is measured: requests per second and latency (p50, p99) of ``POST /webhooks/generic`` on
the real web role (verify the HMAC, commit an inbox row and a job row to SQLite, enqueue the job
to Redis, answer 200; nothing is answered before it is stored and enqueued), and of a bare ASGI
app that only reads the body and answers 200. Both run under uvicorn with one process (uvloop,
httptools) and are loaded by the same generator with the same settings: wrk, 1 thread,
32 connections, 10 s, every request a distinct event (~300 bytes) with its own signature.

Why a ratio: absolute numbers move with the machine and with whatever else it runs (here wrk,
uvicorn and Redis share the same cores). The baseline is measured in the same run on the same
machine, so durable/bare says what durability costs on this machine, today.
Goal: ratio >= 0.5 with SQLite and durable p99 <= 50 ms.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 32] [--loader auto]

wrk's Lua has no HMAC, so the signed bodies are generated here beforehand and the wrk script
cycles through them; there are enough that no id repeats in the durable run (checked). Without
wrk an asyncio httpx loader with the same concurrency measures the same figures (it is much
slower than wrk, so the bare figure is then the loader's limit, not the server's).

After the durable run it checks that every 2xx answer has its inbox row (sqlite3) and its Redis
message (redis-py), and it prints the CPU seconds used by the server, Redis and the loader, to
show who had the two cores.

Exit status: 0 when both runs happened, whatever the figures; 1 when something failed to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import redis

SECRET = b"bench-secret"
PATH = "/webhooks/generic"
QUEUE_KEY = "schoolsync:default"  # <namespace>:<queue> of the Dramatiq Redis broker
BIN = Path(sys.executable).parent
GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
BODIES_PER_SECOND = 40_000  # pre-signed bodies per second of load; far above the durable rate

BARE_APP = """\
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

# The signed bodies are one file of fixed-size records, "<64 hex signature><body>", which each
# wrk thread reads one record per request, from the start again at the end. Holding 400,000
# bodies in Lua memory instead costs LuaJIT's collector pauses that wrk books as latency.
# errors.status is wrk's count of answers with a status >= 400 (the endpoint has no 1xx or 3xx).
WRK_SCRIPT = """\
local file, record_size
function init(args)
  file = assert(io.open(args[1], "rb"))
  record_size = 64 + tonumber(args[2])
end
function request()
  local record = file:read(record_size)
  if record == nil then
    file:seek("set", 0)
    record = file:read(record_size)
  end
  return wrk.format("POST", nil,
    {["Content-Type"] = "application/json", ["X-Signature"] = record:sub(1, 64)},
    record:sub(65))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


class StartupError(RuntimeError):
    """A server or the load generator could not be started."""


@dataclass(frozen=True)
class LoadResult:
    requests: int  # answers received inside the window, whatever their status
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int  # connect, read, write errors and timeouts: no answer at all

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


@dataclass(frozen=True)
class Durability:
    received_rows: int
    rejected_rows: int
    enqueued: int


@dataclass
class Processes:
    """Every subprocess started, stopped in reverse order."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


# --- the signed events ---------------------------------------------------------------------


def signed_body(n: int) -> tuple[str, bytes]:
    """Event number ``n`` (a distinct id) and its ``X-Signature``; 291 bytes for any ``n`` below
    10**9, so that the wrk script can read the bodies as fixed-size records."""
    body = json.dumps(
        {
            "id": f"bench-{n:09d}",
            "type": "bench",
            "data": {
                "order": 1_000_000_000 + n,
                "product": "Курс «Python для школ», пакет Эконом",
                "amount": "991.00",
                "currency": "RUB",
                "email": f"client{n:09d}@example.com",
                "phone": "+79230000000",
                "utm": {"source": "telegram", "campaign": "spring-launch"},
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest(), body


def write_bodies(path: Path, count: int) -> int:
    """``count`` records of signature + body, all the same size; returns the body size."""
    size = len(signed_body(0)[1])
    with path.open("wb") as out:
        for n in range(count):
            signature, body = signed_body(n)
            if len(body) != size:
                raise ValueError(f"body {n} is {len(body)} bytes, not {size}")
            out.write(signature.encode() + body)
    return size


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(procs: Processes, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(work)]
    proc = procs.add(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise StartupError(f"redis-server did not start on port {port}")


def stop_redis(port: int) -> None:
    """``SHUTDOWN NOSAVE``; ``Processes.stop_all`` terminates it anyway if that fails."""
    with contextlib.suppress(redis.RedisError):
        redis.Redis(port=port).shutdown(nosave=True)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 30) -> None:
    """Wait for ``url`` to answer 200; fail early if the server process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartupError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise StartupError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def start_bare(procs: Processes, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The baseline: a raw ASGI callable under uvicorn, one process, uvloop + httptools."""
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    argv = [str(BIN / "python"), "-m", "uvicorn", "bare_app:app", "--app-dir", str(work)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--log-level", "warning", "--no-access-log"]
    proc = procs.add(subprocess.Popen(argv))
    wait_healthy(proc, f"http://127.0.0.1:{port}/")
    return proc, port


def schoolsync_env(work: Path, redis_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SCHOOLSYNC_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SCHOOLSYNC_GENERIC_SECRET": SECRET.decode(),
        "SCHOOLSYNC_DATA_DIR": str(work),
        "SCHOOLSYNC_CONFIG": str(work / "none.yaml"),
        "SCHOOLSYNC_LOG_LEVEL": "WARNING",
        "SCHOOLSYNC_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
    }


def start_web(procs: Processes, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """``schoolsync migrate``, then ``schoolsync web``; the web role picks uvloop + httptools."""
    migrate = subprocess.run(
        [str(BIN / "schoolsync"), "migrate"], env=env, capture_output=True, text=True
    )
    if migrate.returncode != 0:
        raise StartupError(f"schoolsync migrate failed:\n{migrate.stdout}{migrate.stderr}")
    port = free_port()
    argv = [str(BIN / "schoolsync"), "web", "--host", "127.0.0.1", "--port", str(port)]
    proc = procs.add(subprocess.Popen(argv, env=env))
    wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
    return proc, port


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User + system CPU time used so far by ``proc`` (all its threads)."""
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def own_cpu_seconds(who: int) -> float:
    """CPU time of this process (``RUSAGE_SELF``) or of its reaped children (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# --- load generators ----------------------------------------------------------------------


def run_wrk(
    port: int, script: Path, script_args: tuple[str, ...], *, seconds: int, connections: int
) -> LoadResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    argv += [f"http://127.0.0.1:{port}{PATH}", "--", *script_args]
    run = subprocess.run(argv, capture_output=True, text=True)
    line = next((row for row in run.stdout.splitlines() if row.startswith("RESULT ")), None)
    if run.returncode != 0 or line is None:
        raise StartupError(f"wrk failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    requests, duration_us, p50_us, p99_us, non_2xx, socket_errors = map(int, line.split()[1:])
    return LoadResult(
        requests, duration_us / 1e6, p50_us / 1e3, p99_us / 1e3, non_2xx, socket_errors
    )


@dataclass
class _Tally:
    latencies_s: list[float] = field(default_factory=list)
    non_2xx: int = 0
    socket_errors: int = 0


async def _httpx_connection(
    base_url: str, numbers: Iterator[int], tally: _Tally, deadline: float
) -> None:
    """One keep-alive connection sending requests back to back until ``deadline``.

    A client per connection: one pool shared by 32 busy tasks costs more than the requests."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        while time.perf_counter() < deadline:
            signature, body = signed_body(next(numbers))
            headers = {"content-type": "application/json", "x-signature": signature}
            sent = time.perf_counter()
            try:
                answer = await client.post(PATH, content=body, headers=headers)
            except httpx.HTTPError:
                tally.socket_errors += 1
                continue
            tally.latencies_s.append(time.perf_counter() - sent)
            tally.non_2xx += not 200 <= answer.status_code < 300


async def _httpx_load(port: int, *, seconds: int, connections: int) -> LoadResult:
    numbers, tally, base_url = itertools.count(), _Tally(), f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _httpx_connection(base_url, numbers, tally, started + seconds)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    done = sorted(tally.latencies_s) or [0.0]
    p50, p99 = (done[min(len(done) - 1, int(len(done) * q))] * 1e3 for q in (0.50, 0.99))
    return LoadResult(len(tally.latencies_s), elapsed, p50, p99, tally.non_2xx, tally.socket_errors)


def run_httpx(port: int, *, seconds: int, connections: int) -> LoadResult:
    return asyncio.run(_httpx_load(port, seconds=seconds, connections=connections))


@dataclass(frozen=True)
class Loader:
    name: str
    seconds: int
    connections: int
    script: Path | None = None  # the wrk script; None: httpx
    script_args: tuple[str, ...] = ()  # the signed bodies' file and the size of one body
    distinct_ids: int | None = None  # None: unbounded (httpx signs each request as it goes)

    def run(self, port: int) -> tuple[LoadResult, float]:
        """The load and the CPU seconds the load generator itself used."""
        if self.script is None:
            before = own_cpu_seconds(resource.RUSAGE_SELF)
            result = run_httpx(port, seconds=self.seconds, connections=self.connections)
            return result, own_cpu_seconds(resource.RUSAGE_SELF) - before
        before = own_cpu_seconds(resource.RUSAGE_CHILDREN)
        result = run_wrk(
            port, self.script, self.script_args, seconds=self.seconds, connections=self.connections
        )
        return result, own_cpu_seconds(resource.RUSAGE_CHILDREN) - before


def make_loader(choice: str, work: Path, *, seconds: int, connections: int) -> Loader:
    if choice == "httpx" or (choice == "auto" and shutil.which("wrk") is None):
        return Loader("httpx (asyncio, this process)", seconds, connections)
    if shutil.which("wrk") is None:
        raise StartupError("--loader wrk, but wrk is not on PATH")
    script, bodies = work / "ingest.lua", work / "bodies.bin"
    count = max(100_000, seconds * BODIES_PER_SECOND)
    script.write_text(WRK_SCRIPT)
    body_size = write_bodies(bodies, count)
    return Loader(
        "wrk, 1 thread", seconds, connections, script, (str(bodies), str(body_size)), count
    )


@dataclass(frozen=True)
class Run:
    """One endpoint under load, and who used the CPU meanwhile (seconds)."""

    load: LoadResult
    server_cpu_s: float
    redis_cpu_s: float
    loader_cpu_s: float


def run_load(
    loader: Loader, port: int, server: subprocess.Popen[bytes], redis_proc: subprocess.Popen[bytes]
) -> Run:
    server_before, redis_before = cpu_seconds(server), cpu_seconds(redis_proc)
    load, loader_cpu = loader.run(port)
    return Run(
        load,
        cpu_seconds(server) - server_before,
        cpu_seconds(redis_proc) - redis_before,
        loader_cpu,
    )


# --- the run ------------------------------------------------------------------------------


def durability(db: Path, redis_port: int) -> Durability:
    with sqlite3.connect(db) as conn:
        counts = dict(conn.execute("select status, count(*) from inbox group by status").fetchall())
    enqueued = int(redis.Redis(port=redis_port).llen(QUEUE_KEY))
    return Durability(counts.pop("received", 0), sum(counts.values()), enqueued)


def print_figures(loader: Loader, bare: Run, durable: Run) -> float:
    """The table and the ratio durable/bare of req/s (returned)."""
    print(f"load: {loader.name}, {loader.connections} connections, {loader.seconds} s, loopback")
    print(
        f"{'endpoint':<32}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'no answer':>10}"
        f"  CPU s: server / redis / loader"
    )
    for name, run in (("bare ASGI (read body, 200)", bare), ("durable (SQLite + Redis)", durable)):
        r = run.load
        print(
            f"{name:<32}{r.rps:>8.0f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.non_2xx:>8}"
            f"{r.socket_errors:>10}  {run.server_cpu_s:.1f} / {run.redis_cpu_s:.1f} / "
            f"{run.loader_cpu_s:.1f} in {r.seconds:.1f} s"
        )
    ratio = durable.load.rps / bare.load.rps if bare.load.rps else 0.0
    print(f"ratio durable/bare req/s: {ratio:.3f}")
    if loader.script is None:
        print("note: the httpx loader, not the server, limits the bare figure; the ratio flatters")
    return ratio


def print_durability(
    check: Durability, durable: LoadResult, *, connections: int, distinct_ids: int | None
) -> None:
    """Every 2xx must have its row and its Redis message. A few rows more than 2xx answers are
    requests still in flight when the loader stopped counting: at most one per connection."""
    extra = check.received_rows - durable.ok
    print(
        f"inbox rows (received) {check.received_rows}, 2xx answers {durable.ok}, "
        f"Redis {QUEUE_KEY} length {check.enqueued}, rejected rows {check.rejected_rows}"
    )
    if extra == 0:
        print("check inbox rows == 2xx answers: equal")
    elif 0 < extra <= connections:
        print(
            f"check inbox rows == 2xx answers: {extra} rows more, answered after the loader "
            f"stopped counting (at most {connections}, one per connection): ok"
        )
    else:
        print(f"!!! CHECK FAILED: inbox rows - 2xx answers = {extra}, expected 0..{connections}")
    same = check.enqueued == check.received_rows
    print(f"check Redis messages == inbox rows: {'equal' if same else '!!! MISMATCH'}")
    if durable.non_2xx or durable.socket_errors or check.rejected_rows:
        print(
            f"!!! DURABLE RUN HAD FAILURES: {durable.non_2xx} non-2xx answers, "
            f"{durable.socket_errors} requests without an answer, {check.rejected_rows} rejected"
        )
    if (
        distinct_ids is not None
        and durable.requests + durable.socket_errors + connections > distinct_ids
    ):
        print(f"!!! ids repeated: {distinct_ids} distinct events for {durable.requests} requests")


def print_goal(ratio: float, durable: LoadResult, *, loader_bound: bool) -> None:
    met = ratio >= GOAL_RATIO and durable.p99_ms <= GOAL_P99_MS
    print(f"goal: ratio >= {GOAL_RATIO} and durable p99 <= {GOAL_P99_MS:.0f} ms")
    verdict = "met" if met else "NOT MET"
    if loader_bound:
        verdict += " (not a verdict: the loader, not the server, set the baseline)"
    print(
        f"goal {verdict}: ratio {ratio:.3f} (goal {GOAL_RATIO}), "
        f"p99 {durable.p99_ms:.1f} ms (goal {GOAL_P99_MS:.0f} ms)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="load per endpoint [10]")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections [32]")
    parser.add_argument(
        "--loader",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator; auto = wrk if on PATH, else httpx [auto]",
    )
    return parser.parse_args()


def measure(args: argparse.Namespace, procs: Processes, work: Path) -> None:
    """Both runs, the checks and the report; raises ``StartupError``."""
    if shutil.which("redis-server") is None:
        raise StartupError("redis-server is not on PATH (apt-get install redis-server)")
    redis_proc, redis_port = start_redis(procs, work)
    try:
        loader = make_loader(args.loader, work, seconds=args.seconds, connections=args.connections)
        bare_proc, bare_port = start_bare(procs, work)
        bare = run_load(loader, bare_port, bare_proc, redis_proc)
        procs.stop(bare_proc)

        web, web_port = start_web(procs, schoolsync_env(work, redis_port))
        durable = run_load(loader, web_port, web, redis_proc)
        procs.stop(web)  # requests in flight are answered (and stored) before rows are counted
        check = durability(work / "bench.db", redis_port)
    finally:
        stop_redis(redis_port)

    ratio = print_figures(loader, bare, durable)
    print_durability(
        check, durable.load, connections=args.connections, distinct_ids=loader.distinct_ids
    )
    print_goal(ratio, durable.load, loader_bound=loader.script is None)


def main() -> int:
    args = parse_args()
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="schoolsync-bench-") as tmp:
        try:
            measure(args, procs, Path(tmp))
        except StartupError as exc:
            print(f"bench/ingest.py: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
