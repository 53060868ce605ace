"""W1 end to end: GetCourse sandbox -> schoolsync run (real Redis, real processes) -> amoCRM sandbox.

Every test configures a school that points at the sandboxes `schoolsync run` serves, with a short
amoCRM timeout so that injected timeouts cost seconds, and reads the outcome from the sandboxes'
control APIs: what a school would see in its CRM.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e

ORDER_FIELD = 5001


def school_yaml(sandbox_port: int, *, export_every_s: int = 1800) -> str:
    base = f"http://127.0.0.1:{sandbox_port}"
    return f"""
name: Школа E2E
accounts:
  getcourse:
    account: sandbox
    base_url: {base}/getcourse
    key_env: sandbox_getcourse_key
    callback_secret_env: sandbox_getcourse_callback
    export_every_s: {export_every_s}
  amocrm:
    account: sandbox
    base_url: {base}/amocrm
    long_lived_token_env: sandbox_amocrm_token
    webhook_secret_env: sandbox_amocrm_webhook
    timeout_s: 2
mappings:
  amocrm:
    pipeline_id: 1000
    stages: {{new: 1002, in_work: 1003, payment_waiting: 1003, part_payed: 1003, payed: 142,
              cancelled: 143, "false": 143, pending: 1003, not_confirmed: 1002,
              waiting_for_return: 1003}}
    fields: {{order_number: {ORDER_FIELD}, product: 5002, payment_link: 5003}}
"""


class Sandboxes:
    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def leads(self) -> list[dict[str, Any]]:
        return list(self.get("/amocrm/_sandbox/leads"))

    def lead_numbers(self) -> Counter[str]:
        numbers: Counter[str] = Counter()
        for lead in self.leads():
            for field in lead.get("custom_fields_values") or []:
                if field.get("field_id") == ORDER_FIELD:
                    numbers[str(field["values"][0]["value"])] += 1
        return numbers


@pytest.fixture
def w1(
    service_factory: Callable[..., Service], tmp_path: Path
) -> Callable[..., tuple[Service, Sandboxes]]:
    def start(**overrides: str) -> tuple[Service, Sandboxes]:
        port = free_port()
        export_every_s = int(overrides.pop("export_every_s", "1800"))
        (tmp_path / "schoolsync.yaml").write_text(
            school_yaml(port, export_every_s=export_every_s), encoding="utf-8"
        )
        service = service_factory(
            SCHOOLSYNC_SANDBOX="true", SCHOOLSYNC_SANDBOX_PORT=str(port), **overrides
        )
        sandboxes = Sandboxes(port)
        service.wait_for(_up(sandboxes), timeout=30, what="the sandboxes")
        return service, sandboxes

    return start


def _up(sandboxes: Sandboxes) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return sandboxes.http.get("/").status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _failures(service: Service) -> list[Any]:
    return service.query("SELECT actor, error_class, error_message FROM failures")


def _orders_synced(service: Service, count: int) -> Callable[[], bool]:
    def check() -> bool:
        rows = service.query("SELECT count(*) AS n FROM orders WHERE crm_state = 'synced'")
        return int(rows[0]["n"]) >= count

    return check


def _assert_one_lead_each(sandboxes: Sandboxes, numbers: list[str]) -> None:
    found = sandboxes.lead_numbers()
    missing = [n for n in numbers if found[n] == 0]
    twice = {n: c for n, c in found.items() if c > 1}
    assert not missing, f"{len(missing)} orders have no lead, e.g. {missing[:5]}"
    assert not twice, f"orders with more than one lead: {dict(list(twice.items())[:5])}"
    assert len(sandboxes.leads()) == len(numbers)


def test_a_burst_of_2000_orders_becomes_2000_leads_once(w1: Callable[..., Any]) -> None:
    service, sandboxes = w1()
    created = sandboxes.post("/getcourse/_sandbox/orders", {"count": 2000, "seed": 7})
    numbers = [o["number"] for o in created["orders"]]
    took = service.wait_for(_orders_synced(service, 2000), timeout=240, what="2,000 synced orders")

    _assert_one_lead_each(sandboxes, numbers)
    amo = sandboxes.get("/amocrm/_sandbox/state")
    assert amo["contacts"] == len({o["email"] for o in created["orders"]})
    # every lead has its contact, with the customer's email
    assert all(len(lead["_embedded"]["contacts"]) == 1 for lead in sandboxes.leads())
    assert _failures(service) == []
    assert amo["responses_403"] == 0
    print(f"2,000 orders -> leads in {took:.1f} s; 429s answered: {amo['responses_429']}")


def test_the_same_end_state_with_5xx_and_timeouts_on_amocrm(w1: Callable[..., Any]) -> None:
    service, sandboxes = w1()
    sandboxes.post(
        "/amocrm/_sandbox/faults",
        {
            "endpoint": "*",
            "error_rate": 0.10,
            "status": 500,
            "timeout_rate": 0.05,
            "timeout_s": 4,
            "apply_on_timeout": True,
            "seed": 3,
        },
    )
    # 1,000 orders under faults (the burst test above covers 2,000 without): the same end
    # state, and the assertion below makes sure faults were injected
    created = sandboxes.post("/getcourse/_sandbox/orders", {"count": 1000, "seed": 8})
    numbers = [o["number"] for o in created["orders"]]
    service.wait_for(_orders_synced(service, 1000), timeout=400, what="1,000 synced orders")

    _assert_one_lead_each(sandboxes, numbers)
    assert _failures(service) == []
    amo = sandboxes.get("/amocrm/_sandbox/state")
    assert amo["faults_injected"] > 0, "the faults were not injected: the test proves nothing"


def test_orders_whose_callback_was_dropped_are_found_by_the_export_sync(
    w1: Callable[..., Any],
) -> None:
    service, sandboxes = w1(export_every_s="5")
    sandboxes.post("/getcourse/_sandbox/faults", {"drop_callbacks_rate": 0.2, "seed": 11})
    created = sandboxes.post("/getcourse/_sandbox/orders", {"count": 300, "seed": 9})
    numbers = [o["number"] for o in created["orders"]]
    dropped = sandboxes.get("/getcourse/_sandbox/state")["callbacks"]["dropped"]
    assert dropped > 30, "callbacks were not dropped: the test proves nothing"

    service.wait_for(_orders_synced(service, 300), timeout=180, what="300 synced orders")
    _assert_one_lead_each(sandboxes, numbers)
    callbacks = service.query("SELECT count(*) AS n FROM inbox WHERE source = 'getcourse'")
    assert int(callbacks[0]["n"]) == 300 - dropped
    assert _failures(service) == []


def test_an_order_delivered_three_times_and_replayed_has_one_lead(
    w1: Callable[..., Any],
) -> None:
    service, sandboxes = w1()
    (order,) = sandboxes.post("/getcourse/_sandbox/orders", {"count": 1, "seed": 5})["orders"]
    service.wait_for(_orders_synced(service, 1), timeout=60, what="the order in the CRM")
    (delivery,) = sandboxes.get("/getcourse/_sandbox/callbacks")["deliveries"]
    for _ in range(2):  # GetCourse calls again (a process re-run, a network retry)
        assert httpx.request(delivery["method"], delivery["url"], timeout=10).status_code == 200
    inbox_rows = service.query("SELECT id FROM inbox WHERE source = 'getcourse'")
    assert len(inbox_rows) == 1

    replay = service.cli("inbox", "replay", str(inbox_rows[0]["id"]))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "outcome: succeeded" in replay.stdout

    # a later change updates the same lead
    sandboxes.post(f"/getcourse/_sandbox/orders/{order['number']}/status", {"status": "in_work"})
    service.wait_for(
        lambda: any(lead["status_id"] == 1003 for lead in sandboxes.leads()),
        timeout=60,
        what="the lead to move to В работе",
    )
    assert sandboxes.lead_numbers() == Counter({order["number"]: 1})
    # amoCRM's webhooks about that lead came back, verified by their URL secret, and were stored
    service.wait_for(
        lambda: bool(
            service.query("SELECT id FROM inbox WHERE source = 'amocrm' AND status = 'processed'")
        ),
        timeout=30,
        what="amoCRM's webhook, processed",
    )
    assert (
        service.query("SELECT id FROM inbox WHERE source = 'amocrm' AND status = 'rejected'") == []
    )
    assert _failures(service) == []


def test_an_unknown_getcourse_status_is_a_failure_naming_it_and_the_config_key(
    w1: Callable[..., Any],
) -> None:
    service, sandboxes = w1()
    response = service.http.post(
        "/webhooks/getcourse",
        params={
            "secret": "sandbox-callback-secret",
            "id": "777",
            "number": "90001",
            "status": "archived_by_robot",
            "email": "parent@example.org",
        },
    )
    assert response.status_code == 200, response.text
    service.wait_for(lambda: bool(_failures(service)), timeout=60, what="a failures row")
    (failure,) = _failures(service)
    assert failure["error_class"] == "UnmappableError"
    assert "archived_by_robot" in failure["error_message"]
    assert "mappings.getcourse.statuses" in failure["error_message"]
    assert sandboxes.leads() == []


def test_backfill_fetches_orders_whose_callbacks_never_came(w1: Callable[..., Any]) -> None:
    service, sandboxes = w1()
    service.wait_for(  # the export every start runs once has looked already
        lambda: bool(
            service.query(
                "SELECT 1 FROM cursors WHERE name = :name", name="getcourse:sandbox:deals"
            )
        ),
        timeout=60,
        what="the first periodic export",
    )
    sandboxes.post("/getcourse/_sandbox/faults", {"drop_callbacks_rate": 1.0, "seed": 1})
    created = sandboxes.post("/getcourse/_sandbox/orders", {"count": 40, "seed": 4})
    numbers = [o["number"] for o in created["orders"]]
    assert service.query("SELECT id FROM inbox WHERE source = 'getcourse'") == []

    today = datetime.now(ZoneInfo("Europe/Moscow")).date().isoformat()
    result = service.cli("backfill", "--since", today)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "40 rows, 40 orders, 40 new or changed" in result.stdout

    service.wait_for(_orders_synced(service, 40), timeout=60, what="40 synced orders")
    _assert_one_lead_each(sandboxes, numbers)
    assert _failures(service) == []


def test_a_stage_change_in_amocrm_reaches_getcourse_once_and_does_not_come_back(
    w1: Callable[..., Any],
) -> None:
    """W4 with real processes: the manager's move arrives as amoCRM's webhook, GetCourse is
    told once, and GetCourse's callback of that write does not move the lead again."""
    service, sandboxes = w1()
    number = sandboxes.post("/getcourse/_sandbox/orders", {"count": 1})["orders"][0]["number"]
    service.wait_for(_orders_synced(service, 1), timeout=60, what="the order in the CRM")
    (lead,) = [x["id"] for x in sandboxes.leads()]

    def patches() -> int:
        requests = sandboxes.get("/amocrm/_sandbox/state")["requests"]
        return sum(n for key, n in requests.items() if key.startswith("PATCH"))

    def callbacks_stored() -> int:
        rows = service.query(
            "SELECT count(*) AS n FROM inbox WHERE source = 'getcourse' AND status = 'processed'"
        )
        return int(rows[0]["n"])

    imports_before = sandboxes.get("/getcourse/_sandbox/state")["imports"].get("ok", 0)
    patches_before, callbacks_before = patches(), callbacks_stored()

    sandboxes.post(f"/amocrm/_sandbox/leads/{lead}/status", {"status_id": 1003})
    service.wait_for(
        lambda: sandboxes.get(f"/getcourse/_sandbox/orders/{number}")["status"] == "in_work",
        timeout=60,
        what="the order taken into work in GetCourse",
    )
    service.wait_for(
        lambda: callbacks_stored() > callbacks_before,
        timeout=60,
        what="GetCourse's callback of that change handled",
    )
    service.wait_for(
        lambda: (
            not service.query("SELECT id FROM jobs WHERE status NOT IN ('done', 'failed', 'dead')")
        ),
        timeout=60,
        what="the queue to settle",
    )

    assert sandboxes.get("/getcourse/_sandbox/state")["imports"]["ok"] - imports_before == 1
    assert patches() == patches_before  # the lead was not written again
    assert next(x for x in sandboxes.leads() if x["id"] == lead)["status_id"] == 1003
    assert service.query("SELECT status, status_origin FROM orders")[0]["status"] == "in_work"
    assert _failures(service) == []
