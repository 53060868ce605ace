"""W14 end to end: 1,000 orders for a product the config does not know fail; the admin fixes
``schoolsync.yaml``, restarts the roles that read it, dry-runs (1,000 would create a lead),
replays them all in bulk; each order has exactly one lead in the amoCRM sandbox, every failure is
resolved, and a second bulk replay finds nothing to do.

The configuration is read when a process starts (web, worker); the CLI reads it each time. So
the test restarts the web and worker roles after the fix, as an admin would (``schoolsync run``
brings a role that stopped back up; the sandboxes keep their state).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_w1_intake import Sandboxes, school_yaml

pytestmark = pytest.mark.e2e

COUNT = 1000
TOKEN = "e2e-operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KNOWN = '    products: {"Пакет Эконом": {}, "Пакет Стандарт": {}}\n'
FIXED = '    products: {"Пакет Эконом": {}, "Пакет Стандарт": {}, "Пакет VIP": {name: VIP}}\n'


def count(service: Service, sql: str) -> int:
    return int(service.query(sql)[0]["n"])


def role(service: Service, name: str) -> psutil.Process | None:
    """The ``schoolsync run`` child process of one role (web, worker, scheduler, sandbox)."""
    assert service.process is not None
    for child in psutil.Process(service.process.pid).children():
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:  # gone, or a zombie its supervisor has not reaped yet
            continue
        if (name == "worker" and "dramatiq" in line) or f"schoolsync {name}" in line:
            return child
    return None


def restart(service: Service, *names: str) -> None:
    """Stop roles gracefully; ``schoolsync run`` starts them again (reading the config)."""
    before = {name: role(service, name) for name in names}
    for process in before.values():
        assert process is not None
        process.send_signal(signal.SIGTERM)

    def back() -> bool:
        for name, old in before.items():
            new = role(service, name)
            if new is None or old is None or new.pid == old.pid:
                return False
        return service._ready()

    service.wait_for(back, timeout=60, what="the roles to come back")


def test_a_thousand_failures_fixed_dry_run_replayed_once_and_not_again(
    service_factory: Callable[..., Service], tmp_path: Path
) -> None:
    from tests.conftest import free_port

    port = free_port()
    config = tmp_path / "schoolsync.yaml"
    config.write_text(school_yaml(port) + KNOWN, encoding="utf-8")
    service = service_factory(
        SCHOOLSYNC_SANDBOX="true",
        SCHOOLSYNC_SANDBOX_PORT=str(port),
        SCHOOLSYNC_ADMIN_TOKENS__OPS__TOKEN=TOKEN,
        SCHOOLSYNC_ADMIN_TOKENS__OPS__ROLE="operator",
    )
    sandboxes = Sandboxes(port)
    service.wait_for(lambda: _up(sandboxes), timeout=30, what="the sandboxes")

    service.wait_for(  # the export every start runs once has looked (before the orders)
        lambda: bool(
            service.query(
                "SELECT 1 FROM cursors WHERE name = :name", name="getcourse:sandbox:deals"
            )
        ),
        timeout=60,
        what="the first periodic export",
    )
    created = sandboxes.post("/getcourse/_sandbox/orders", {"count": COUNT, "product": "vip"})
    numbers = [o["number"] for o in created["orders"]]
    service.wait_for(
        lambda: count(service, "SELECT count(*) AS n FROM failures WHERE status = 'open'") == COUNT,
        timeout=120,
        what=f"{COUNT} failures",
    )
    assert sandboxes.leads() == []
    (group,) = service.http.get("/admin/api/failures/groups", headers=AUTH).json()
    assert group["count"] == COUNT and "product 'Пакет VIP' is unknown" in group["pattern"]

    # not fixed yet: the dry run says so, and names the cause once
    before = service.cli("failures", "replay", "--class", "UnmappableError", "--dry-run")
    assert before.returncode == 0, before.stdout + before.stderr
    assert f"{COUNT} failures: {COUNT} would fail the config check: product 'Пакет VIP'" in (
        before.stdout
    )

    config.write_text(school_yaml(port) + FIXED, encoding="utf-8")
    restart(service, "web", "worker")

    dry = service.http.post(
        "/admin/api/failures/bulk-replay",
        json={"error_class": "UnmappableError", "dry_run": True},
        headers=AUTH,
    ).json()
    assert dry["summary"] == f"{COUNT} failures: {COUNT} would create a lead"
    cli_dry = service.cli("failures", "replay", "--filter", "platform=getcourse", "--dry-run")
    assert f"{COUNT} failures: {COUNT} would create a lead" in cli_dry.stdout, cli_dry.stderr

    replay = service.cli(
        "failures", "replay", "--class", "UnmappableError", "--yes", "--wait", "90"
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"{COUNT} queued again, 0 skipped (no longer open) of {COUNT}" in replay.stdout

    service.wait_for(
        lambda: (
            count(service, "SELECT count(*) AS n FROM failures WHERE status = 'resolved'") == COUNT
        ),
        timeout=90,
        what=f"{COUNT} failures resolved",
    )
    service.wait_for(
        lambda: (
            count(service, "SELECT count(*) AS n FROM orders WHERE crm_state = 'synced'") == COUNT
        ),
        timeout=120,
        what=f"{COUNT} orders in the CRM",
    )
    found = sandboxes.lead_numbers()
    assert sorted(found) == sorted(numbers)
    assert set(found.values()) == {1}, "an order got a second lead"
    assert len(sandboxes.leads()) == COUNT

    second = service.http.post(
        "/admin/api/failures/bulk-replay",
        json={"error_class": "UnmappableError", "dry_run": False},
        headers=AUTH,
    )
    assert second.status_code == 202
    assert (second.json()["total"], second.json()["job_id"]) == (0, None)
    again = service.cli("failures", "replay", "--class", "UnmappableError", "--yes")
    assert "no open failure matches: nothing would run" in again.stdout
    assert count(service, "SELECT count(*) AS n FROM failures WHERE status <> 'resolved'") == 0
    assert len(sandboxes.leads()) == COUNT
    trail = service.query(
        "SELECT who, outcome, count(*) AS n FROM audit WHERE action = 'replay' GROUP BY who, outcome"
    )
    assert [(r["outcome"], r["n"]) for r in trail] == [("succeeded", COUNT)]
    assert str(trail[0]["who"]).startswith("cli:")


def _up(sandboxes: Sandboxes) -> bool:
    import httpx

    try:
        return sandboxes.http.get("/").status_code == 200
    except httpx.HTTPError:
        return False
