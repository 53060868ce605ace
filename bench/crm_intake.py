"""W1 throughput: orders from the GetCourse sandbox to leads in the amoCRM sandbox.

Runs `schoolsync run` (web + worker + scheduler + embedded Redis + sandboxes, as a user runs it)
in a temp dir, with amoCRM held to its real limit of 7 requests per second, and measures:

1. batched: N orders created in a burst -> leads (``/leads/complex``, up to 50 per request);
2. one request per order: the same path with ``batch_size: 1`` (a fresh service, fewer orders).

The ceiling at 7 requests/s is 7 x 50 = 350 leads/s. Printed: leads/s of both, the ratio of the
batched rate to the ceiling and to the one-request-per-order rate, and a check that every order
has exactly one lead and nothing failed.

    .venv/bin/python bench/crm_intake.py [--orders 3000] [--single-orders 140]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

ORDER_FIELD = 5001
CEILING = 7 * 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(sandbox_port: int, batch_size: int) -> str:
    base = f"http://127.0.0.1:{sandbox_port}"
    return f"""
accounts:
  getcourse:
    account: sandbox
    base_url: {base}/getcourse
    key_env: sandbox_getcourse_key
    callback_secret_env: sandbox_getcourse_callback
  amocrm:
    account: sandbox
    base_url: {base}/amocrm
    long_lived_token_env: sandbox_amocrm_token
    webhook_secret_env: sandbox_amocrm_webhook
    batch_size: {batch_size}
mappings:
  amocrm:
    pipeline_id: 1000
    stages: {{new: 1002, in_work: 1003, payment_waiting: 1003, part_payed: 1003, payed: 142,
              cancelled: 143, "false": 143, pending: 1003, not_confirmed: 1002,
              waiting_for_return: 1003}}
    fields: {{order_number: {ORDER_FIELD}, product: 5002, payment_link: 5003}}
"""


HOLD_KEY = "schoolsync:lock:crm-push:default:0"  # the push lock of the (only) school's lane


def run_once(
    orders: int,
    batch_size: int,
    extra_env: dict[str, str] | None = None,
    *,
    hold_push: bool = False,
) -> dict[str, Any]:
    """One service, one burst. ``hold_push``: the push waits (its lock is held from outside)
    until every order is stored, then drains them all: the push alone, at amoCRM's limit."""
    with tempfile.TemporaryDirectory(prefix="bench-crm-") as tmp:
        directory = Path(tmp)
        port, sandbox_port = free_port(), free_port()
        (directory / "schoolsync.yaml").write_text(config(sandbox_port, batch_size), "utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLSYNC_")}
        env.update(
            SCHOOLSYNC_CONFIG=str(directory / "schoolsync.yaml"),
            SCHOOLSYNC_SANDBOX="true",
            SCHOOLSYNC_SANDBOX_PORT=str(sandbox_port),
            SCHOOLSYNC_LOG_LEVEL="WARNING",
            SCHOOLSYNC_LOG_FORMAT="json",
        )
        env.update(extra_env or {})
        log = (directory / "service.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-m", "schoolsync", "run", "--port", str(port)],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        web = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        sandbox = httpx.Client(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=60)
        try:
            _wait(lambda: _ok(web, "/readyz") and _ok(sandbox, "/"), 60, "the service")
            time.sleep(2)  # let the first scheduler round (relay, export sync) pass
            db = directory / "var" / "schoolsync.db"
            holder = None
            if hold_push:
                url = (directory / "var" / "redis" / "url").read_text().strip()
                holder = redis.Redis.from_url(url)
                holder.set(HOLD_KEY, "bench-hold", px=600_000)
            started = time.monotonic()
            sandbox.post("/getcourse/_sandbox/orders", json={"count": orders, "seed": 1})
            created = time.monotonic() - started
            ingested_at = None
            timeline: list[tuple[float, int, int]] = []
            while True:
                stored, synced = _counts(db)
                now = time.monotonic() - started
                if not timeline or now - timeline[-1][0] >= 1.0:
                    timeline.append((now, stored, synced))
                if ingested_at is None and stored >= orders:
                    ingested_at = now
                    if holder is not None:  # let the push go, and give it a reason to start
                        holder.delete(HOLD_KEY)
                        sandbox.post("/getcourse/_sandbox/orders", json={"count": 1, "seed": 2})
                        orders += 1
                if synced >= orders:
                    break
                if now > 900:
                    raise SystemExit(f"gave up: {synced}/{orders} synced after 900 s")
                time.sleep(0.05)
            took = time.monotonic() - started
            leads = sandbox.get("/amocrm/_sandbox/leads").json()
            state = sandbox.get("/amocrm/_sandbox/state").json()
            failures = _scalar(db, "SELECT count(*) FROM failures")
        finally:
            service.send_signal(signal.SIGINT)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
            web.close()
            sandbox.close()
            log.close()
    numbers: Counter[str] = Counter()
    for lead in leads:
        for item in lead.get("custom_fields_values") or []:
            if item.get("field_id") == ORDER_FIELD:
                numbers[str(item["values"][0]["value"])] += 1
    drain = took - (ingested_at or 0.0)
    return {
        "orders": orders,
        "seconds": drain if hold_push else took,
        "create_s": created,
        "ingest_s": ingested_at or took,
        "leads_per_s": orders / (drain if hold_push else took),
        "leads": len(leads),
        "distinct": len(numbers),
        "duplicates": sum(c - 1 for c in numbers.values() if c > 1),
        "failures": failures,
        "requests": sum(state["requests"].values()),
        "429": state["responses_429"],
        "403": state["responses_403"],
        "timeline": timeline,
    }


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def _scalar(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            stored = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            synced = conn.execute(
                "SELECT count(*) FROM orders WHERE crm_state = 'synced'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # not migrated yet
        return 0, 0
    return int(stored), int(synced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--single-orders", type=int, default=140)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the service (e.g. worker size)"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)

    end_to_end = run_once(args.orders, batch_size=50, extra_env=extra)
    drained = run_once(args.orders, batch_size=50, extra_env=extra, hold_push=True)
    single = run_once(args.single_orders, batch_size=1, extra_env=extra)
    print(f"amoCRM sandbox limit: 7 requests/s; ceiling {CEILING} leads/s")
    print(
        f"{'path':<36}{'orders':>7}{'seconds':>9}{'leads/s':>9}{'requests':>9}"
        f"{'429':>5}{'403':>5}{'dup':>5}{'fail':>5}"
    )
    runs = (
        ("end to end (callbacks -> leads)", end_to_end),
        ("push alone, orders already stored", drained),
        ("one request per order", single),
    )
    for name, r in runs:
        print(
            f"{name:<36}{r['orders']:>7}{r['seconds']:>9.1f}{r['leads_per_s']:>9.1f}"
            f"{r['requests']:>9}{r['429']:>5}{r['403']:>5}{r['duplicates']:>5}{r['failures']:>5}"
        )
    print(
        f"end to end: orders created in {end_to_end['create_s']:.2f} s, all stored after "
        f"{end_to_end['ingest_s']:.1f} s, all in amoCRM after {end_to_end['seconds']:.1f} s"
    )
    print(
        "end-to-end timeline (s: stored/synced): "
        + "  ".join(f"{t:.0f}: {a}/{b}" for t, a, b in end_to_end["timeline"])
    )
    for name, r in runs[:2]:
        print(f"ratio to the ceiling, {name}: {r['leads_per_s'] / CEILING:.2f}   (goal >= 0.8)")
    print(
        "ratio push alone / one request per order: "
        f"{drained['leads_per_s'] / single['leads_per_s']:.1f}"
    )
    ok = all(r["leads"] == r["orders"] == r["distinct"] and r["failures"] == 0 for _, r in runs)
    print("every order has exactly one lead, no failures:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
